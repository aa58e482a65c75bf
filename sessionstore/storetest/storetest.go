// Package storetest checks that a session store behaves as the login
// package needs, in the spirit of testing/fstest: run its behaviour table
// against your own sessionstore.Store from a test.
//
//	func TestMyStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) sessionstore.Store { return openEmptyStore(t) }, storetest.Options{})
//	}
package storetest

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/gologin/gologin/sessionstore"
)

// Options tune Run.
type Options struct {
	// ShortenRevocation, if set, makes s revoke deleted tokens for only d
	// instead of sessionstore.RevokedFor, so that Run can see tombstones
	// expire; without it, that case is skipped.
	ShortenRevocation func(s sessionstore.Store, d time.Duration)
}

// Run runs the behaviour table of sessionstore.Store, each case as a
// subtest on a new, empty store from open, which should close it when the
// test ends.
func Run(t *testing.T, open func(t *testing.T) sessionstore.Store, opts Options) {
	shorten := func(t *testing.T, s sessionstore.Store, d time.Duration) {
		t.Helper()
		if opts.ShortenRevocation == nil {
			t.Skip("no Options.ShortenRevocation: tombstones cannot be seen to expire")
		}
		opts.ShortenRevocation(s, d)
	}
	ctx := context.Background()
	later := time.Now().Add(time.Hour)
	behaviours := []struct {
		name string
		run  func(t *testing.T, s sessionstore.Store)
	}{
		{"commit then find returns the bytes", func(t *testing.T, s sessionstore.Store) {
			b := Record(t, "sid-1", "user-1", later)
			Commit(t, s, "tok", b)
			MustFind(t, s, "tok", b)
			// The scs.Store methods see the same record.
			got, ok, err := s.Find("tok")
			if err != nil || !ok || !bytes.Equal(got, b) {
				t.Fatalf("Find = found %v, err %v; want the committed bytes", ok, err)
			}
		}},
		{"find of an unknown token is not found", func(t *testing.T, s sessionstore.Store) {
			Commit(t, s, "tok", Record(t, "sid-1", "user-1", later))
			MustNotFind(t, s, "other-token")
			MustNotFind(t, s, "")
		}},
		{"expired record is not found", func(t *testing.T, s sessionstore.Store) {
			if err := s.CommitCtx(ctx, "tok", Record(t, "sid-1", "user-1", later), time.Now().Add(-time.Minute)); err != nil {
				t.Fatal(err)
			}
			MustNotFind(t, s, "tok")
		}},
		{"commit twice overwrites data and index", func(t *testing.T, s sessionstore.Store) {
			Commit(t, s, "tok", Record(t, "sid-old", "user-old", later))
			b := Record(t, "sid-new", "user-new", later)
			Commit(t, s, "tok", b)
			MustFind(t, s, "tok", b)

			n, err := s.DeleteBySubject(ctx, "user-old")
			WantDeleted(t, "DeleteBySubject(old sub)", n, err, 0)
			n, err = s.DeleteBySID(ctx, "sid-old")
			WantDeleted(t, "DeleteBySID(old sid)", n, err, 0)
			MustFind(t, s, "tok", b)

			n, err = s.DeleteBySubject(ctx, "user-new")
			WantDeleted(t, "DeleteBySubject(new sub)", n, err, 1)
			MustNotFind(t, s, "tok")
		}},
		{"recommit with a later expiry revives an expired token", func(t *testing.T, s sessionstore.Store) {
			b := Record(t, "sid-1", "user-1", later)
			if err := s.CommitCtx(ctx, "tok", b, time.Now().Add(-time.Minute)); err != nil {
				t.Fatal(err)
			}
			Commit(t, s, "tok", b)
			MustFind(t, s, "tok", b)
		}},
		{"delete removes", func(t *testing.T, s sessionstore.Store) {
			Commit(t, s, "tok", Record(t, "sid-1", "user-1", later))
			keep := Record(t, "sid-2", "user-2", later)
			Commit(t, s, "keep", keep)
			if err := s.DeleteCtx(ctx, "tok"); err != nil {
				t.Fatalf("DeleteCtx: %v", err)
			}
			MustNotFind(t, s, "tok")
			MustFind(t, s, "keep", keep)
			// The deleted session is out of the indexes too.
			n, err := s.DeleteBySID(ctx, "sid-1")
			WantDeleted(t, "DeleteBySID after Delete", n, err, 0)
			if err := s.DeleteCtx(ctx, "never-existed"); err != nil {
				t.Fatalf("DeleteCtx(unknown) = %v, want nil", err)
			}
		}},
		{"DeleteBySID and DeleteBySubject delete exactly the sessions of their sid or sub", func(t *testing.T, s sessionstore.Store) {
			for _, by := range indexes {
				p := by.name + "-" // tokens, sids and subs of this pass alone
				recs := map[string][]byte{
					p + "x1":   by.rec(t, p+"x", p+"1", later),
					p + "x2":   by.rec(t, p+"x", p+"2", later),
					p + "y1":   by.rec(t, p+"y", p+"1", later),
					p + "none": by.rec(t, "", p+"1", later),
				}
				for tok, b := range recs {
					Commit(t, s, tok, b)
				}
				n, err := by.del(ctx, s, p+"x")
				WantDeleted(t, by.name, n, err, 2)
				MustNotFind(t, s, p+"x1")
				MustNotFind(t, s, p+"x2")
				MustFind(t, s, p+"y1", recs[p+"y1"])
				MustFind(t, s, p+"none", recs[p+"none"])
				n, err = by.del(ctx, s, p+"x")
				WantDeleted(t, by.name+" again", n, err, 0)
				n, err = by.del(ctx, s, p+"unknown")
				WantDeleted(t, by.name+" of an unknown key", n, err, 0)
			}
		}},
		{"empty sid and sub delete nothing", func(t *testing.T, s sessionstore.Store) {
			recs := map[string][]byte{
				"anon":    Record(t, "", "", later),
				"nosid":   Record(t, "", "user-1", later),
				"nosub":   Record(t, "sid-a", "", later),
				"foreign": []byte("not written by sessionstore.Codec"),
			}
			for tok, b := range recs {
				Commit(t, s, tok, b)
			}
			n, err := s.DeleteBySID(ctx, "")
			WantDeleted(t, `DeleteBySID("")`, n, err, 0)
			n, err = s.DeleteBySubject(ctx, "")
			WantDeleted(t, `DeleteBySubject("")`, n, err, 0)
			for tok, b := range recs {
				MustFind(t, s, tok, b)
			}
		}},
		{"records from other codecs are kept unindexed", func(t *testing.T, s sessionstore.Store) {
			gob, err := scs.GobCodec{}.Encode(later, map[string]any{sessionstore.SIDKey: "sid-a", sessionstore.SubjectKey: "user-1"})
			if err != nil {
				t.Fatal(err)
			}
			Commit(t, s, "gob", gob)
			MustFind(t, s, "gob", gob)
			n, err := s.DeleteBySubject(ctx, "user-1")
			WantDeleted(t, "DeleteBySubject on an unindexed record", n, err, 0)
			MustFind(t, s, "gob", gob)
		}},
		{"a token committed again after expiring leaves its old sid and sub", func(t *testing.T, s sessionstore.Store) {
			if err := s.CommitCtx(ctx, "tok", Record(t, "sid-old", "user-old", later), time.Now().Add(100*time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			// Longer sessions keep the old sid's and sub's indexes alive.
			Commit(t, s, "other-sid", Record(t, "sid-old", "user-other", later))
			Commit(t, s, "other-sub", Record(t, "sid-other", "user-old", later))
			waitExpired(t, s, "tok")
			// Nothing touched the expired session's index entries since.
			b := Record(t, "sid-new", "user-new", later)
			Commit(t, s, "tok", b)
			n, err := s.DeleteBySID(ctx, "sid-old")
			WantDeleted(t, "DeleteBySID(old sid)", n, err, 1)
			n, err = s.DeleteBySubject(ctx, "user-old")
			WantDeleted(t, "DeleteBySubject(old sub)", n, err, 1)
			MustFind(t, s, "tok", b)
			n, err = s.DeleteBySID(ctx, "sid-new")
			WantDeleted(t, "DeleteBySID(new sid)", n, err, 1)
		}},
		{"an index outlives the sessions that expire before others", func(t *testing.T, s sessionstore.Store) {
			if err := s.CommitCtx(ctx, "early", Record(t, "sid-a", "user-1", later), time.Now().Add(100*time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			Commit(t, s, "late", Record(t, "sid-a", "user-1", later))
			waitExpired(t, s, "early")
			// Whether the expired session counts differs by store (memory
			// and SQLite delete and count it until purged), so only the
			// live one is checked.
			if n, err := s.DeleteBySID(ctx, "sid-a"); err != nil || n < 1 {
				t.Fatalf("DeleteBySID(sid-a) = %d, %v; want the live session deleted", n, err)
			}
			MustNotFind(t, s, "late")
			// Both tokens are revoked, the expired one too: a request that
			// loaded it just before it expired must not write it back.
			for _, tok := range []string{"early", "late"} {
				if err := s.CommitCtx(ctx, tok, Record(t, "sid-a", "user-1", later), later); err != nil {
					t.Fatalf("CommitCtx(%q): %v", tok, err)
				}
				MustNotFind(t, s, tok)
			}
		}},
		{"a second Lock on the same name waits until the first unlocks", func(t *testing.T, s sessionstore.Store) {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			unlock, err := s.Lock(ctx, "job", time.Minute)
			if err != nil {
				t.Fatalf("Lock: %v", err)
			}
			var released atomic.Bool
			second := make(chan error, 1)
			go func() {
				unlock, err := s.Lock(ctx, "job", time.Minute)
				if err == nil {
					if !released.Load() {
						err = errors.New("second Lock returned while the first held the lock")
					}
					unlock()
				}
				second <- err
			}()
			// Other names are not held.
			other, err := s.Lock(ctx, "other-job", time.Minute)
			if err != nil {
				t.Fatalf("Lock on another name: %v", err)
			}
			other()
			// Give the waiter time to take the lock wrongly. A slow machine
			// only weakens this check; it cannot make it fail.
			select {
			case err := <-second:
				t.Fatalf("second Lock returned before the first unlocked: %v", err)
			case <-time.After(100 * time.Millisecond):
			}
			released.Store(true)
			unlock()
			if err := <-second; err != nil {
				t.Fatalf("second Lock: %v", err)
			}
		}},
		{"a lock lapses after its ttl", func(t *testing.T, s sessionstore.Store) {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			unlockFirst, err := s.Lock(ctx, "job", 50*time.Millisecond)
			if err != nil {
				t.Fatalf("Lock: %v", err)
			}
			// Never unlocked: the next Lock gets it once the ttl has passed.
			unlock, err := s.Lock(ctx, "job", time.Minute)
			if err != nil {
				t.Fatalf("Lock after the first lapsed: %v", err)
			}
			// The lapsed holder's unlock must not release the new holder.
			unlockFirst()
			short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancelShort()
			if _, err := s.Lock(short, "job", time.Minute); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Lock while the new holder holds it = %v, want context.DeadlineExceeded", err)
			}
			unlock()
			unlock, err = s.Lock(ctx, "job", time.Minute)
			if err != nil {
				t.Fatalf("Lock after unlock: %v", err)
			}
			unlock()
		}},
		{"Lock on a held name returns the context's error when it ends", func(t *testing.T, s sessionstore.Store) {
			unlock, err := s.Lock(ctx, "job", time.Minute)
			if err != nil {
				t.Fatalf("Lock: %v", err)
			}
			defer unlock()

			cancelled, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() {
				_, err := s.Lock(cancelled, "job", time.Minute)
				done <- err
			}()
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("Lock with a cancelled context = %v, want context.Canceled", err)
			}

			timed, cancelTimed := context.WithTimeout(ctx, 20*time.Millisecond)
			defer cancelTimed()
			if _, err := s.Lock(timed, "job", time.Minute); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Lock past its deadline = %v, want context.DeadlineExceeded", err)
			}
		}},
		{"of concurrent TryLocks of one name, exactly one takes it", func(t *testing.T, s sessionstore.Store) {
			const n = 20
			var wg sync.WaitGroup
			results := make(chan error, n)
			unlocks := make(chan func(), n)
			for range n {
				wg.Go(func() {
					unlock, err := s.TryLock(ctx, "jti", time.Minute)
					results <- err
					if err == nil {
						unlocks <- unlock
					}
				})
			}
			wg.Wait()
			close(results)
			taken, refused := 0, 0
			for err := range results {
				switch {
				case err == nil:
					taken++
				case errors.Is(err, sessionstore.ErrLocked):
					refused++
				default:
					t.Fatalf("TryLock: %v", err)
				}
			}
			if taken != 1 || refused != n-1 {
				t.Fatalf("%d concurrent TryLocks: %d took the lock, %d got sessionstore.ErrLocked; want 1 and %d", n, taken, refused, n-1)
			}
			(<-unlocks)()
			unlock, err := s.TryLock(ctx, "jti", time.Minute)
			if err != nil {
				t.Fatalf("TryLock after unlock: %v", err)
			}
			unlock()
		}},
		{"Count counts only unexpired sessions", func(t *testing.T, s sessionstore.Store) {
			count := func() int {
				t.Helper()
				n, err := s.Count(ctx)
				if err != nil {
					t.Fatalf("Count: %v", err)
				}
				return n
			}
			if n := count(); n != 0 {
				t.Fatalf("Count of an empty store = %d, want 0", n)
			}
			Commit(t, s, "a", Record(t, "sid-a", "user-1", later))
			Commit(t, s, "b", Record(t, "sid-b", "user-1", later))
			Commit(t, s, "c", Record(t, "sid-c", "user-2", later))
			if err := s.CommitCtx(ctx, "gone", Record(t, "sid-d", "user-3", later), time.Now().Add(-time.Minute)); err != nil {
				t.Fatal(err)
			}
			Commit(t, s, "a", Record(t, "sid-a", "user-1", later)) // recommitting does not add
			if n := count(); n != 3 {
				t.Fatalf("Count = %d, want 3 (an expired session does not count)", n)
			}
			if err := s.DeleteCtx(ctx, "c"); err != nil {
				t.Fatal(err)
			}
			if n := count(); n != 2 {
				t.Fatalf("Count after Delete = %d, want 2", n)
			}
			n, err := s.DeleteBySID(ctx, "sid-a")
			WantDeleted(t, "DeleteBySID(sid-a)", n, err, 1)
			if n := count(); n != 1 {
				t.Fatalf("Count after DeleteBySID = %d, want 1", n)
			}
			// A session stops counting when it expires, with no call.
			if err := s.CommitCtx(ctx, "short", Record(t, "", "", later), time.Now().Add(100*time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for count() != 1 {
				if time.Now().After(deadline) {
					t.Fatalf("Count = %d 5s after a 100ms session was committed, want 1", count())
				}
				time.Sleep(20 * time.Millisecond)
			}
		}},
		{"a commit after DeleteCtx does not bring the session back", func(t *testing.T, s sessionstore.Store) {
			b := Record(t, "sid-1", "user-1", later)
			Commit(t, s, "tok", b)
			keep := Record(t, "sid-2", "user-2", later)
			Commit(t, s, "keep", keep)
			if err := s.DeleteCtx(ctx, "tok"); err != nil {
				t.Fatalf("DeleteCtx: %v", err)
			}
			// A request that loaded the session before the delete writes
			// its copy back: the store accepts the call and keeps nothing.
			if err := s.CommitCtx(ctx, "tok", b, later); err != nil {
				t.Fatalf("CommitCtx of a deleted token = %v, want nil", err)
			}
			MustNotFind(t, s, "tok")
			if err := s.CommitCtx(ctx, "tok", Record(t, "sid-1", "user-1", later), later); err != nil {
				t.Fatalf("CommitCtx of a deleted token again = %v, want nil", err)
			}
			MustNotFind(t, s, "tok")
			// Nor does the refused commit index the token.
			n, err := s.DeleteBySID(ctx, "sid-1")
			WantDeleted(t, "DeleteBySID after a refused commit", n, err, 0)
			if n, err := s.Count(ctx); err != nil || n != 1 {
				t.Fatalf("Count = %d, %v; want 1 (the tombstone is not a session)", n, err)
			}
			// Other tokens commit as before.
			MustFind(t, s, "keep", keep)
			keep = Record(t, "sid-2", "user-2", later.Add(time.Minute))
			Commit(t, s, "keep", keep)
			MustFind(t, s, "keep", keep)
			// Deleting a token the store never held revokes it too.
			if err := s.DeleteCtx(ctx, "never-existed"); err != nil {
				t.Fatalf("DeleteCtx(unknown): %v", err)
			}
			if err := s.CommitCtx(ctx, "never-existed", b, later); err != nil {
				t.Fatalf("CommitCtx after DeleteCtx(unknown) = %v, want nil", err)
			}
			MustNotFind(t, s, "never-existed")
		}},
		{"a commit after DeleteBySID or DeleteBySubject does not bring their sessions back", func(t *testing.T, s sessionstore.Store) {
			for _, by := range indexes {
				p := by.name + "-" // tokens, sids and subs of this pass alone
				recs := map[string][]byte{p + "x1": by.rec(t, p+"x", p+"1", later), p + "x2": by.rec(t, p+"x", p+"2", later), p + "y1": by.rec(t, p+"y", p+"1", later)}
				for tok, b := range recs {
					Commit(t, s, tok, b)
				}
				n, err := by.del(ctx, s, p+"x")
				WantDeleted(t, by.name, n, err, 2)
				for _, tok := range []string{p + "x1", p + "x2"} {
					if err := s.CommitCtx(ctx, tok, recs[tok], later); err != nil {
						t.Fatalf("CommitCtx(%q) after %s = %v, want nil", tok, by.name, err)
					}
					MustNotFind(t, s, tok)
				}
				n, err = by.del(ctx, s, p+"x")
				WantDeleted(t, by.name+" after the refused commits", n, err, 0)
				// The other key's session, and new sessions of the same
				// key, commit as before: tokens are revoked, not sids or subs.
				y1 := by.rec(t, p+"y", p+"9", later)
				Commit(t, s, p+"y1", y1)
				MustFind(t, s, p+"y1", y1)
				x3 := by.rec(t, p+"x", p+"3", later)
				Commit(t, s, p+"x3", x3)
				MustFind(t, s, p+"x3", x3)
			}
			if n, err := s.Count(ctx); err != nil || n != 4 {
				t.Fatalf("Count = %d, %v; want 4, two of each pass", n, err)
			}
		}},
		{"a tombstone blocks only its own token", func(t *testing.T, s sessionstore.Store) {
			b := Record(t, "sid-1", "user-1", later)
			Commit(t, s, "tok", b)
			if err := s.DeleteCtx(ctx, "tok"); err != nil {
				t.Fatal(err)
			}
			// Tokens that share a prefix or suffix with the revoked one.
			for _, tok := range []string{"tok2", "to", "xtok", "TOK", "tok "} {
				Commit(t, s, tok, b)
				MustFind(t, s, tok, b)
			}
			MustNotFind(t, s, "tok")
		}},
		{"an expired tombstone no longer blocks", func(t *testing.T, s sessionstore.Store) {
			shorten(t, s, 50*time.Millisecond)
			b := Record(t, "sid-1", "user-1", later)
			for _, tok := range []string{"deleted", "by-sid", "by-sub"} {
				Commit(t, s, tok, Record(t, "sid-"+tok, "user-"+tok, later))
			}
			if err := s.DeleteCtx(ctx, "deleted"); err != nil {
				t.Fatal(err)
			}
			n, err := s.DeleteBySID(ctx, "sid-by-sid")
			WantDeleted(t, "DeleteBySID", n, err, 1)
			n, err = s.DeleteBySubject(ctx, "user-by-sub")
			WantDeleted(t, "DeleteBySubject", n, err, 1)
			// Whether a commit in the first 50ms is refused depends on
			// the machine's speed, so only the end state is checked.
			for _, tok := range []string{"deleted", "by-sid", "by-sub"} {
				deadline := time.Now().Add(5 * time.Second)
				for {
					Commit(t, s, tok, b)
					if _, ok, err := s.FindCtx(ctx, tok); err != nil {
						t.Fatalf("FindCtx(%q): %v", tok, err)
					} else if ok {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("commits of %q still refused 5s after a 50ms tombstone", tok)
					}
					time.Sleep(10 * time.Millisecond)
				}
				MustFind(t, s, tok, b)
			}
		}},
		{"commits racing a delete never bring a session back", func(t *testing.T, s sessionstore.Store) {
			// Requests of a user's sessions write them back over and over
			// while the user signs out everywhere: whatever the order,
			// once both are done no session may remain.
			const sessions = 8
			b := Record(t, "sid-1", "user-1", later)
			for i := range sessions {
				Commit(t, s, "race-"+string(rune('a'+i)), b)
			}
			var (
				wg      sync.WaitGroup
				started sync.WaitGroup
				deleted atomic.Bool
				errs    = make(chan error, sessions)
			)
			started.Add(sessions)
			for i := range sessions {
				token := "race-" + string(rune('a'+i))
				wg.Go(func() {
					first := true
					// A few more commits after the delete returned, too.
					for extra := 3; extra > 0; {
						if err := s.CommitCtx(ctx, token, b, later); err != nil {
							errs <- err
							break
						}
						if first {
							started.Done()
							first = false
						}
						if deleted.Load() {
							extra--
						}
					}
					if first {
						started.Done()
					}
				})
			}
			started.Wait()
			n, err := s.DeleteBySubject(ctx, "user-1")
			deleted.Store(true)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("CommitCtx: %v", err)
			}
			WantDeleted(t, "DeleteBySubject(user-1)", n, err, sessions)
			for i := range sessions {
				MustNotFind(t, s, "race-"+string(rune('a'+i)))
			}
			if n, err := s.Count(ctx); err != nil || n != 0 {
				t.Fatalf("Count = %d, %v; want 0", n, err)
			}
		}},
		{"a request in flight when its session is deleted does not bring it back", func(t *testing.T, s sessionstore.Store) {
			deletes := []struct {
				name string
				del  func(t *testing.T, app *scsApp, cookies []*http.Cookie)
			}{
				// Logout in another tab: scs's Destroy calls DeleteCtx.
				{"logout", func(t *testing.T, app *scsApp, cookies []*http.Cookie) {
					app.do(t, "/logout", cookies)
				}},
				{"DeleteBySID", func(t *testing.T, app *scsApp, _ []*http.Cookie) {
					n, err := s.DeleteBySID(ctx, app.sid)
					WantDeleted(t, "DeleteBySID", n, err, 1)
				}},
				{"DeleteBySubject", func(t *testing.T, app *scsApp, _ []*http.Cookie) {
					n, err := s.DeleteBySubject(ctx, app.sub)
					WantDeleted(t, "DeleteBySubject", n, err, 1)
				}},
			}
			for _, d := range deletes {
				t.Run(d.name, func(t *testing.T) {
					app := newSCSApp(t, s, "sid-"+d.name, "user-"+d.name)
					cookies := app.do(t, "/login", nil).Result().Cookies()
					if got := app.do(t, "/whoami", cookies).Body.String(); got != app.sub {
						t.Fatalf("whoami after login = %q, want %q", got, app.sub)
					}
					// A slow request loads the session, the session is
					// deleted meanwhile, and then the request changes it.
					slow := make(chan *httptest.ResponseRecorder, 1)
					go func() { slow <- app.serve("/slow", cookies) }()
					<-app.loaded
					d.del(t, app, cookies)
					close(app.release)
					if rec := <-slow; rec.Code != http.StatusOK {
						t.Fatalf("slow request: status %d: %s", rec.Code, rec.Body)
					}
					if got := app.do(t, "/whoami", cookies).Body.String(); got != "" {
						t.Fatalf("whoami after the slow request = %q, want an empty session", got)
					}
				})
			}
		}},
		{"ping", func(t *testing.T, s sessionstore.Store) {
			if err := s.Ping(ctx); err != nil {
				t.Fatalf("Ping: %v", err)
			}
		}},
		{"Count leaves out auxiliary records, which are indexed like sessions", func(t *testing.T, s sessionstore.Store) {
			b := Record(t, "sid-1", "user-1", later)
			Commit(t, s, "tok", b)
			Commit(t, s, sessionstore.AuxPrefix+"tokens:tok", b)
			if n, err := s.Count(ctx); err != nil || n != 1 {
				t.Fatalf("Count = %d, %v; want 1 (the session, not its auxiliary record)", n, err)
			}
			n, err := s.DeleteBySID(ctx, "sid-1")
			WantDeleted(t, "DeleteBySID of a session and its auxiliary record", n, err, 1)
			MustNotFind(t, s, "tok")
			MustNotFind(t, s, sessionstore.AuxPrefix+"tokens:tok")
		}},
		{"Close twice", func(t *testing.T, s sessionstore.Store) {
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			s.Close() // must not panic
		}},
	}
	for _, b := range behaviours {
		t.Run(b.name, func(t *testing.T) {
			b.run(t, open(t))
		})
	}
}

// indexes are the two ways a store deletes sessions by what they hold.
var indexes = []struct {
	name string
	del  func(ctx context.Context, s sessionstore.Store, key string) (int, error)
	// rec is a session whose sid or sub, as del deletes by, is key, with
	// other as its sub or sid.
	rec func(t *testing.T, key, other string, deadline time.Time) []byte
}{
	{"DeleteBySID", func(ctx context.Context, s sessionstore.Store, k string) (int, error) { return s.DeleteBySID(ctx, k) },
		func(t *testing.T, k, o string, d time.Time) []byte { return Record(t, k, o, d) }},
	{"DeleteBySubject", func(ctx context.Context, s sessionstore.Store, k string) (int, error) {
		return s.DeleteBySubject(ctx, k)
	},
		func(t *testing.T, k, o string, d time.Time) []byte { return Record(t, o, k, d) }},
}

// Record encodes a session the way an scs manager with sessionstore.Codec{} would, so
// the index header is real.
func Record(t *testing.T, sid, sub string, deadline time.Time) []byte {
	t.Helper()
	values := map[string]any{"other": 1}
	if sid != "" {
		values[sessionstore.SIDKey] = sid
	}
	if sub != "" {
		values[sessionstore.SubjectKey] = sub
	}
	b, err := sessionstore.Codec{}.Encode(deadline, values)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return b
}

// Commit commits b under token, expiring in an hour, failing t if it
// cannot.
func Commit(t *testing.T, s sessionstore.Store, token string, b []byte) {
	t.Helper()
	if err := s.CommitCtx(context.Background(), token, b, time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("CommitCtx(%q): %v", token, err)
	}
}

func MustFind(t *testing.T, s sessionstore.Store, token string, want []byte) {
	t.Helper()
	got, ok, err := s.FindCtx(context.Background(), token)
	if err != nil || !ok {
		t.Fatalf("FindCtx(%q) = found %v, err %v; want found", token, ok, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("FindCtx(%q) returned different bytes than committed", token)
	}
}

func MustNotFind(t *testing.T, s sessionstore.Store, token string) {
	t.Helper()
	got, ok, err := s.FindCtx(context.Background(), token)
	if err != nil || ok || got != nil {
		t.Fatalf("FindCtx(%q) = %q, found %v, err %v; want not found", token, got, ok, err)
	}
}

// waitExpired waits until token, committed with a short expiry, is no
// longer found, failing after five seconds.
func waitExpired(t *testing.T, s sessionstore.Store, token string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, ok, err := s.FindCtx(context.Background(), token)
		if err != nil {
			t.Fatalf("FindCtx(%q): %v", token, err)
		}
		if !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q still found 5s after it should have expired", token)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func WantDeleted(t *testing.T, what string, n int, err error, want int) {
	t.Helper()
	if err != nil || n != want {
		t.Fatalf("%s = %d, %v; want %d, nil", what, n, err, want)
	}
}

// scsApp is a small app with a real scs session manager over a store.
type scsApp struct {
	h        http.Handler
	sid, sub string        // whom /login signs in
	loaded   chan struct{} // /slow has loaded the session
	release  chan struct{} // closed to let /slow change the session and end
}

// newSCSApp serves /login (signs in sid and sub), /whoami (writes the
// subject), /logout (destroys the session) and /slow, which loads the
// session, waits for release, and changes it.
func newSCSApp(t *testing.T, s sessionstore.Store, sid, sub string) *scsApp {
	t.Helper()
	sm := scs.New()
	sm.Store = s
	sm.Codec = sessionstore.Codec{}
	app := &scsApp{sid: sid, sub: sub, loaded: make(chan struct{}), release: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		if err := sm.RenewToken(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		sm.Put(r.Context(), sessionstore.SIDKey, sid)
		sm.Put(r.Context(), sessionstore.SubjectKey, sub)
	})
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(sm.GetString(r.Context(), sessionstore.SubjectKey)))
	})
	mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
		if err := sm.Destroy(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		sm.GetString(r.Context(), sessionstore.SubjectKey)
		close(app.loaded)
		<-app.release
		sm.Put(r.Context(), "visits", 1)
	})
	app.h = sm.LoadAndSave(mux)
	return app
}

// serve runs one GET request; it is safe to call from any goroutine.
func (a *scsApp) serve(path string, cookies []*http.Cookie) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	a.h.ServeHTTP(rec, req)
	return rec
}

// do is serve that fails the test unless the answer is 200 OK.
func (a *scsApp) do(t *testing.T, path string, cookies []*http.Cookie) *httptest.ResponseRecorder {
	t.Helper()
	rec := a.serve(path, cookies)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", path, rec.Code, rec.Body)
	}
	return rec
}

// KeepsNoTokens is for stores that keep data outside the process: it
// commits a session, its tokens record and a session it then deletes, and
// takes a lock named after the token, then fails t if dump, which returns
// every key and index entry s has written to its database, holds the
// token itself rather than its sessionstore.HashToken.
func KeepsNoTokens(t *testing.T, s sessionstore.Store, dump func() string) {
	t.Helper()
	ctx := context.Background()
	const token = "SECRETTOKEN0123456789abcdefghijklmnopqrstu"
	b := Record(t, "sid-1", "user-1", time.Now().Add(time.Hour))
	Commit(t, s, token, b)
	Commit(t, s, sessionstore.AuxPrefix+"tokens:"+token, b)
	Commit(t, s, "deleted"+token, b)
	if err := s.DeleteCtx(ctx, "deleted"+token); err != nil {
		t.Fatal(err)
	}
	unlock, err := s.Lock(ctx, "refresh:"+token, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	d := dump()
	if strings.Contains(d, token) {
		t.Fatalf("the store keeps the session token itself:\n%s", d)
	}
	if !strings.Contains(d, sessionstore.HashToken(token)) {
		t.Fatalf("the store does not key the session by its token's hash:\n%s", d)
	}
	MustFind(t, s, token, b)
	MustFind(t, s, sessionstore.AuxPrefix+"tokens:"+token, b)
	if n, err := s.Count(ctx); err != nil || n != 1 {
		t.Errorf("Count = %d, %v; want 1 (the tokens record is auxiliary)", n, err)
	}
}
