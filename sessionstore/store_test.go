package sessionstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/gologin/gologin/internal/pgtest"
	"github.com/gologin/gologin/internal/testskip"
)

// storeCase opens a fresh, empty store for one test.
type storeCase struct {
	name string
	open func(t *testing.T) Store
}

// stores lists every Store implementation; the behaviour table runs against
// each. Add new stores here.
func stores(t *testing.T) []storeCase {
	t.Helper()
	return []storeCase{
		{"memory", func(t *testing.T) Store {
			s := NewMemory()
			t.Cleanup(func() { s.Close() })
			return s
		}},
		{"sqlite", func(t *testing.T) Store {
			s, err := OpenSQLite(filepath.Join(t.TempDir(), "sessions.db"))
			if err != nil {
				t.Fatalf("OpenSQLite: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}},
		{"redis", func(t *testing.T) Store { return openTestRedis(t) }},
		{"postgres", func(t *testing.T) Store { return openTestPostgres(t) }},
	}
}

// serverURL returns the URL of a test server from the environment variable
// name, or skips the test with hint when it is unset. Under CI=true a
// missing server fails the test instead: CI must not pass by skipping.
func serverURL(t *testing.T, name, hint string) string {
	t.Helper()
	u := os.Getenv(name)
	if u == "" {
		msg := name + " not set: " + hint
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		skipped.Add(name+" not set", testskip.Services)
		t.Skip(msg)
	}
	return u
}

// testPostgresURL creates a schema of its own on TEST_POSTGRES_URL's server,
// drops it at cleanup, and returns a URL whose search_path selects it, so
// tests share the database without seeing each other's tables.
func testPostgresURL(t *testing.T) string {
	t.Helper()
	base := serverURL(t, "TEST_POSTGRES_URL", "start PostgreSQL and set it to run the Postgres store tests")
	return pgtest.Schema(t, base, "gologin_test_")
}

// openTestPostgres opens a Postgres store in a schema of its own.
func openTestPostgres(t *testing.T) *Postgres {
	t.Helper()
	s := openPostgresURL(t, testPostgresURL(t))
	t.Cleanup(func() { s.Close() }) // runs before the schema is dropped
	return s
}

func openPostgresURL(t *testing.T, url string) *Postgres {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := OpenPostgres(ctx, url)
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	return s
}

// record encodes a session the way an scs manager with Codec{} would, so
// the index header is real.
func record(t *testing.T, sid, sub string, deadline time.Time) []byte {
	t.Helper()
	values := map[string]any{"other": 1}
	if sid != "" {
		values[SIDKey] = sid
	}
	if sub != "" {
		values[SubjectKey] = sub
	}
	b, err := Codec{}.Encode(deadline, values)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return b
}

func commit(t *testing.T, s Store, token string, b []byte) {
	t.Helper()
	if err := s.CommitCtx(context.Background(), token, b, time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("CommitCtx(%q): %v", token, err)
	}
}

func mustFind(t *testing.T, s Store, token string, want []byte) {
	t.Helper()
	got, ok, err := s.FindCtx(context.Background(), token)
	if err != nil || !ok {
		t.Fatalf("FindCtx(%q) = found %v, err %v; want found", token, ok, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("FindCtx(%q) returned different bytes than committed", token)
	}
}

func mustNotFind(t *testing.T, s Store, token string) {
	t.Helper()
	got, ok, err := s.FindCtx(context.Background(), token)
	if err != nil || ok || got != nil {
		t.Fatalf("FindCtx(%q) = %q, found %v, err %v; want not found", token, got, ok, err)
	}
}

// waitExpired waits until token, committed with a short expiry, is no
// longer found, failing after five seconds.
func waitExpired(t *testing.T, s Store, token string) {
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

func wantDeleted(t *testing.T, what string, n int, err error, want int) {
	t.Helper()
	if err != nil || n != want {
		t.Fatalf("%s = %d, %v; want %d, nil", what, n, err, want)
	}
}

func TestStores(t *testing.T) {
	ctx := context.Background()
	later := time.Now().Add(time.Hour)
	behaviours := []struct {
		name string
		run  func(t *testing.T, s Store)
	}{
		{"commit then find returns the bytes", func(t *testing.T, s Store) {
			b := record(t, "sid-1", "user-1", later)
			commit(t, s, "tok", b)
			mustFind(t, s, "tok", b)
			// The scs.Store methods see the same record.
			got, ok, err := s.Find("tok")
			if err != nil || !ok || !bytes.Equal(got, b) {
				t.Fatalf("Find = found %v, err %v; want the committed bytes", ok, err)
			}
		}},
		{"find of an unknown token is not found", func(t *testing.T, s Store) {
			commit(t, s, "tok", record(t, "sid-1", "user-1", later))
			mustNotFind(t, s, "other-token")
			mustNotFind(t, s, "")
		}},
		{"expired record is not found", func(t *testing.T, s Store) {
			if err := s.CommitCtx(ctx, "tok", record(t, "sid-1", "user-1", later), time.Now().Add(-time.Minute)); err != nil {
				t.Fatal(err)
			}
			mustNotFind(t, s, "tok")
		}},
		{"commit twice overwrites data and index", func(t *testing.T, s Store) {
			commit(t, s, "tok", record(t, "sid-old", "user-old", later))
			b := record(t, "sid-new", "user-new", later)
			commit(t, s, "tok", b)
			mustFind(t, s, "tok", b)

			n, err := s.DeleteBySubject(ctx, "user-old")
			wantDeleted(t, "DeleteBySubject(old sub)", n, err, 0)
			n, err = s.DeleteBySID(ctx, "sid-old")
			wantDeleted(t, "DeleteBySID(old sid)", n, err, 0)
			mustFind(t, s, "tok", b)

			n, err = s.DeleteBySubject(ctx, "user-new")
			wantDeleted(t, "DeleteBySubject(new sub)", n, err, 1)
			mustNotFind(t, s, "tok")
		}},
		{"recommit with a later expiry revives an expired token", func(t *testing.T, s Store) {
			b := record(t, "sid-1", "user-1", later)
			if err := s.CommitCtx(ctx, "tok", b, time.Now().Add(-time.Minute)); err != nil {
				t.Fatal(err)
			}
			commit(t, s, "tok", b)
			mustFind(t, s, "tok", b)
		}},
		{"delete removes", func(t *testing.T, s Store) {
			commit(t, s, "tok", record(t, "sid-1", "user-1", later))
			keep := record(t, "sid-2", "user-2", later)
			commit(t, s, "keep", keep)
			if err := s.DeleteCtx(ctx, "tok"); err != nil {
				t.Fatalf("DeleteCtx: %v", err)
			}
			mustNotFind(t, s, "tok")
			mustFind(t, s, "keep", keep)
			// The deleted session is out of the indexes too.
			n, err := s.DeleteBySID(ctx, "sid-1")
			wantDeleted(t, "DeleteBySID after Delete", n, err, 0)
			if err := s.DeleteCtx(ctx, "never-existed"); err != nil {
				t.Fatalf("DeleteCtx(unknown) = %v, want nil", err)
			}
		}},
		{"DeleteBySID deletes exactly that sid's sessions", func(t *testing.T, s Store) {
			recs := map[string][]byte{
				"a1":    record(t, "sid-a", "user-1", later),
				"a2":    record(t, "sid-a", "user-2", later),
				"b1":    record(t, "sid-b", "user-1", later),
				"nosid": record(t, "", "user-1", later),
			}
			for tok, b := range recs {
				commit(t, s, tok, b)
			}
			n, err := s.DeleteBySID(ctx, "sid-a")
			wantDeleted(t, "DeleteBySID(sid-a)", n, err, 2)
			mustNotFind(t, s, "a1")
			mustNotFind(t, s, "a2")
			mustFind(t, s, "b1", recs["b1"])
			mustFind(t, s, "nosid", recs["nosid"])
			n, err = s.DeleteBySID(ctx, "sid-a")
			wantDeleted(t, "DeleteBySID(sid-a) again", n, err, 0)
			n, err = s.DeleteBySID(ctx, "sid-unknown")
			wantDeleted(t, "DeleteBySID(unknown)", n, err, 0)
		}},
		{"DeleteBySubject deletes exactly that user's sessions", func(t *testing.T, s Store) {
			recs := map[string][]byte{
				"u1a":   record(t, "sid-a", "user-1", later),
				"u1b":   record(t, "sid-b", "user-1", later),
				"u2":    record(t, "sid-a", "user-2", later),
				"nosub": record(t, "sid-a", "", later),
			}
			for tok, b := range recs {
				commit(t, s, tok, b)
			}
			n, err := s.DeleteBySubject(ctx, "user-1")
			wantDeleted(t, "DeleteBySubject(user-1)", n, err, 2)
			mustNotFind(t, s, "u1a")
			mustNotFind(t, s, "u1b")
			mustFind(t, s, "u2", recs["u2"])
			mustFind(t, s, "nosub", recs["nosub"])
			n, err = s.DeleteBySubject(ctx, "user-1")
			wantDeleted(t, "DeleteBySubject(user-1) again", n, err, 0)
		}},
		{"empty sid and sub delete nothing", func(t *testing.T, s Store) {
			recs := map[string][]byte{
				"anon":    record(t, "", "", later),
				"nosid":   record(t, "", "user-1", later),
				"nosub":   record(t, "sid-a", "", later),
				"foreign": []byte("not written by Codec"),
			}
			for tok, b := range recs {
				commit(t, s, tok, b)
			}
			n, err := s.DeleteBySID(ctx, "")
			wantDeleted(t, `DeleteBySID("")`, n, err, 0)
			n, err = s.DeleteBySubject(ctx, "")
			wantDeleted(t, `DeleteBySubject("")`, n, err, 0)
			for tok, b := range recs {
				mustFind(t, s, tok, b)
			}
		}},
		{"records from other codecs are kept unindexed", func(t *testing.T, s Store) {
			gob, err := scs.GobCodec{}.Encode(later, map[string]any{SIDKey: "sid-a", SubjectKey: "user-1"})
			if err != nil {
				t.Fatal(err)
			}
			commit(t, s, "gob", gob)
			mustFind(t, s, "gob", gob)
			n, err := s.DeleteBySubject(ctx, "user-1")
			wantDeleted(t, "DeleteBySubject on an unindexed record", n, err, 0)
			mustFind(t, s, "gob", gob)
		}},
		{"a token committed again after expiring leaves its old sid and sub", func(t *testing.T, s Store) {
			if err := s.CommitCtx(ctx, "tok", record(t, "sid-old", "user-old", later), time.Now().Add(100*time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			// Longer sessions keep the old sid's and sub's indexes alive.
			commit(t, s, "other-sid", record(t, "sid-old", "user-other", later))
			commit(t, s, "other-sub", record(t, "sid-other", "user-old", later))
			waitExpired(t, s, "tok")
			// Nothing touched the expired session's index entries since.
			b := record(t, "sid-new", "user-new", later)
			commit(t, s, "tok", b)
			n, err := s.DeleteBySID(ctx, "sid-old")
			wantDeleted(t, "DeleteBySID(old sid)", n, err, 1)
			n, err = s.DeleteBySubject(ctx, "user-old")
			wantDeleted(t, "DeleteBySubject(old sub)", n, err, 1)
			mustFind(t, s, "tok", b)
			n, err = s.DeleteBySID(ctx, "sid-new")
			wantDeleted(t, "DeleteBySID(new sid)", n, err, 1)
		}},
		{"an index outlives the sessions that expire before others", func(t *testing.T, s Store) {
			if err := s.CommitCtx(ctx, "early", record(t, "sid-a", "user-1", later), time.Now().Add(100*time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			commit(t, s, "late", record(t, "sid-a", "user-1", later))
			waitExpired(t, s, "early")
			// Whether the expired session counts differs by store (memory
			// and SQLite delete and count it until purged), so only the
			// live one is checked.
			if n, err := s.DeleteBySID(ctx, "sid-a"); err != nil || n < 1 {
				t.Fatalf("DeleteBySID(sid-a) = %d, %v; want the live session deleted", n, err)
			}
			mustNotFind(t, s, "late")
			// Both tokens are revoked, the expired one too: a request that
			// loaded it just before it expired must not write it back.
			for _, tok := range []string{"early", "late"} {
				if err := s.CommitCtx(ctx, tok, record(t, "sid-a", "user-1", later), later); err != nil {
					t.Fatalf("CommitCtx(%q): %v", tok, err)
				}
				mustNotFind(t, s, tok)
			}
		}},
		{"a second Lock on the same name waits until the first unlocks", func(t *testing.T, s Store) {
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
		{"a lock lapses after its ttl", func(t *testing.T, s Store) {
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
		{"Lock on a held name returns the context's error when it ends", func(t *testing.T, s Store) {
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
		{"of concurrent TryLocks of one name, exactly one takes it", func(t *testing.T, s Store) {
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
				case errors.Is(err, ErrLocked):
					refused++
				default:
					t.Fatalf("TryLock: %v", err)
				}
			}
			if taken != 1 || refused != n-1 {
				t.Fatalf("%d concurrent TryLocks: %d took the lock, %d got ErrLocked; want 1 and %d", n, taken, refused, n-1)
			}
			(<-unlocks)()
			unlock, err := s.TryLock(ctx, "jti", time.Minute)
			if err != nil {
				t.Fatalf("TryLock after unlock: %v", err)
			}
			unlock()
		}},
		{"Count counts only unexpired sessions", func(t *testing.T, s Store) {
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
			commit(t, s, "a", record(t, "sid-a", "user-1", later))
			commit(t, s, "b", record(t, "sid-b", "user-1", later))
			commit(t, s, "c", record(t, "sid-c", "user-2", later))
			if err := s.CommitCtx(ctx, "gone", record(t, "sid-d", "user-3", later), time.Now().Add(-time.Minute)); err != nil {
				t.Fatal(err)
			}
			commit(t, s, "a", record(t, "sid-a", "user-1", later)) // recommitting does not add
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
			wantDeleted(t, "DeleteBySID(sid-a)", n, err, 1)
			if n := count(); n != 1 {
				t.Fatalf("Count after DeleteBySID = %d, want 1", n)
			}
			// A session stops counting when it expires, with no call.
			if err := s.CommitCtx(ctx, "short", record(t, "", "", later), time.Now().Add(100*time.Millisecond)); err != nil {
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
		{"a commit after DeleteCtx does not bring the session back", func(t *testing.T, s Store) {
			b := record(t, "sid-1", "user-1", later)
			commit(t, s, "tok", b)
			keep := record(t, "sid-2", "user-2", later)
			commit(t, s, "keep", keep)
			if err := s.DeleteCtx(ctx, "tok"); err != nil {
				t.Fatalf("DeleteCtx: %v", err)
			}
			// A request that loaded the session before the delete writes
			// its copy back: the store accepts the call and keeps nothing.
			if err := s.CommitCtx(ctx, "tok", b, later); err != nil {
				t.Fatalf("CommitCtx of a deleted token = %v, want nil", err)
			}
			mustNotFind(t, s, "tok")
			if err := s.CommitCtx(ctx, "tok", record(t, "sid-1", "user-1", later), later); err != nil {
				t.Fatalf("CommitCtx of a deleted token again = %v, want nil", err)
			}
			mustNotFind(t, s, "tok")
			// Nor does the refused commit index the token.
			n, err := s.DeleteBySID(ctx, "sid-1")
			wantDeleted(t, "DeleteBySID after a refused commit", n, err, 0)
			if n, err := s.Count(ctx); err != nil || n != 1 {
				t.Fatalf("Count = %d, %v; want 1 (the tombstone is not a session)", n, err)
			}
			// Other tokens commit as before.
			mustFind(t, s, "keep", keep)
			keep = record(t, "sid-2", "user-2", later.Add(time.Minute))
			commit(t, s, "keep", keep)
			mustFind(t, s, "keep", keep)
			// Deleting a token the store never held revokes it too.
			if err := s.DeleteCtx(ctx, "never-existed"); err != nil {
				t.Fatalf("DeleteCtx(unknown): %v", err)
			}
			if err := s.CommitCtx(ctx, "never-existed", b, later); err != nil {
				t.Fatalf("CommitCtx after DeleteCtx(unknown) = %v, want nil", err)
			}
			mustNotFind(t, s, "never-existed")
		}},
		{"a commit after DeleteBySID does not bring its sessions back", func(t *testing.T, s Store) {
			recs := map[string][]byte{
				"a1": record(t, "sid-a", "user-1", later),
				"a2": record(t, "sid-a", "user-2", later),
				"b1": record(t, "sid-b", "user-1", later),
			}
			for tok, b := range recs {
				commit(t, s, tok, b)
			}
			n, err := s.DeleteBySID(ctx, "sid-a")
			wantDeleted(t, "DeleteBySID(sid-a)", n, err, 2)
			for _, tok := range []string{"a1", "a2"} {
				if err := s.CommitCtx(ctx, tok, recs[tok], later); err != nil {
					t.Fatalf("CommitCtx(%q) after DeleteBySID = %v, want nil", tok, err)
				}
				mustNotFind(t, s, tok)
			}
			n, err = s.DeleteBySID(ctx, "sid-a")
			wantDeleted(t, "DeleteBySID(sid-a) after the refused commits", n, err, 0)
			// The other sid's session, and new sessions of the same sid,
			// commit as before: tokens are revoked, not sids.
			b1 := record(t, "sid-b", "user-1", later.Add(time.Minute))
			commit(t, s, "b1", b1)
			mustFind(t, s, "b1", b1)
			a3 := record(t, "sid-a", "user-1", later)
			commit(t, s, "a3", a3)
			mustFind(t, s, "a3", a3)
			if n, err := s.Count(ctx); err != nil || n != 2 {
				t.Fatalf("Count = %d, %v; want 2", n, err)
			}
		}},
		{"a commit after DeleteBySubject does not bring its sessions back", func(t *testing.T, s Store) {
			recs := map[string][]byte{
				"u1a": record(t, "sid-a", "user-1", later),
				"u1b": record(t, "sid-b", "user-1", later),
				"u2":  record(t, "sid-a", "user-2", later),
			}
			for tok, b := range recs {
				commit(t, s, tok, b)
			}
			n, err := s.DeleteBySubject(ctx, "user-1")
			wantDeleted(t, "DeleteBySubject(user-1)", n, err, 2)
			for _, tok := range []string{"u1a", "u1b"} {
				if err := s.CommitCtx(ctx, tok, recs[tok], later); err != nil {
					t.Fatalf("CommitCtx(%q) after DeleteBySubject = %v, want nil", tok, err)
				}
				mustNotFind(t, s, tok)
			}
			n, err = s.DeleteBySubject(ctx, "user-1")
			wantDeleted(t, "DeleteBySubject(user-1) after the refused commits", n, err, 0)
			u2 := record(t, "sid-a", "user-2", later.Add(time.Minute))
			commit(t, s, "u2", u2)
			mustFind(t, s, "u2", u2)
			u1c := record(t, "sid-c", "user-1", later)
			commit(t, s, "u1c", u1c)
			mustFind(t, s, "u1c", u1c)
			if n, err := s.Count(ctx); err != nil || n != 2 {
				t.Fatalf("Count = %d, %v; want 2", n, err)
			}
		}},
		{"a tombstone blocks only its own token", func(t *testing.T, s Store) {
			b := record(t, "sid-1", "user-1", later)
			commit(t, s, "tok", b)
			if err := s.DeleteCtx(ctx, "tok"); err != nil {
				t.Fatal(err)
			}
			// Tokens that share a prefix or suffix with the revoked one.
			for _, tok := range []string{"tok2", "to", "xtok", "TOK", "tok "} {
				commit(t, s, tok, b)
				mustFind(t, s, tok, b)
			}
			mustNotFind(t, s, "tok")
		}},
		{"an expired tombstone no longer blocks", func(t *testing.T, s Store) {
			shortenRevocation(t, s, 50*time.Millisecond)
			b := record(t, "sid-1", "user-1", later)
			for _, tok := range []string{"deleted", "by-sid", "by-sub"} {
				commit(t, s, tok, record(t, "sid-"+tok, "user-"+tok, later))
			}
			if err := s.DeleteCtx(ctx, "deleted"); err != nil {
				t.Fatal(err)
			}
			n, err := s.DeleteBySID(ctx, "sid-by-sid")
			wantDeleted(t, "DeleteBySID", n, err, 1)
			n, err = s.DeleteBySubject(ctx, "user-by-sub")
			wantDeleted(t, "DeleteBySubject", n, err, 1)
			// Whether a commit in the first 50ms is refused depends on
			// the machine's speed, so only the end state is checked.
			for _, tok := range []string{"deleted", "by-sid", "by-sub"} {
				deadline := time.Now().Add(5 * time.Second)
				for {
					commit(t, s, tok, b)
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
				mustFind(t, s, tok, b)
			}
		}},
		{"commits racing a delete never bring a session back", func(t *testing.T, s Store) {
			// Requests of a user's sessions write them back over and over
			// while the user signs out everywhere: whatever the order,
			// once both are done no session may remain.
			const sessions = 8
			b := record(t, "sid-1", "user-1", later)
			for i := range sessions {
				commit(t, s, "race-"+string(rune('a'+i)), b)
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
			wantDeleted(t, "DeleteBySubject(user-1)", n, err, sessions)
			for i := range sessions {
				mustNotFind(t, s, "race-"+string(rune('a'+i)))
			}
			if n, err := s.Count(ctx); err != nil || n != 0 {
				t.Fatalf("Count = %d, %v; want 0", n, err)
			}
		}},
		{"a request in flight when its session is deleted does not bring it back", func(t *testing.T, s Store) {
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
					wantDeleted(t, "DeleteBySID", n, err, 1)
				}},
				{"DeleteBySubject", func(t *testing.T, app *scsApp, _ []*http.Cookie) {
					n, err := s.DeleteBySubject(ctx, app.sub)
					wantDeleted(t, "DeleteBySubject", n, err, 1)
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
		{"ping", func(t *testing.T, s Store) {
			if err := s.Ping(ctx); err != nil {
				t.Fatalf("Ping: %v", err)
			}
		}},
	}
	for _, s := range stores(t) {
		t.Run(s.name, func(t *testing.T) {
			for _, b := range behaviours {
				t.Run(b.name, func(t *testing.T) {
					b.run(t, s.open(t))
				})
			}
		})
	}
}

func TestCodecRoundTrip(t *testing.T) {
	deadline := time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC)
	tests := []struct {
		name   string
		values map[string]any
		want   Index
	}{
		{"sid and sub", map[string]any{SIDKey: "sid-1", SubjectKey: "user-1", "other": 1}, Index{"sid-1", "user-1"}},
		{"neither", map[string]any{"other": 1}, Index{}},
		{"only sub", map[string]any{SubjectKey: "user-1"}, Index{Subject: "user-1"}},
		{"long and non-ASCII", map[string]any{SIDKey: strings.Repeat("s", 300), SubjectKey: "ユーザー|1"},
			Index{strings.Repeat("s", 300), "ユーザー|1"}},
		{"non-string sid is not indexed", map[string]any{SIDKey: 42, SubjectKey: "user-1"}, Index{Subject: "user-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Codec{}.Encode(deadline, tt.values)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			idx, _, err := ParseIndex(b)
			if err != nil || idx != tt.want {
				t.Fatalf("ParseIndex = %+v, %v; want %+v", idx, err, tt.want)
			}
			gotDeadline, gotValues, err := Codec{}.Decode(b)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !gotDeadline.Equal(deadline) {
				t.Errorf("deadline = %v, want %v", gotDeadline, deadline)
			}
			if !reflect.DeepEqual(gotValues, tt.values) {
				t.Errorf("values = %#v, want %#v", gotValues, tt.values)
			}
		})
	}
}

func TestCodecDecodeRejectsForeignRecords(t *testing.T) {
	gob, err := scs.GobCodec{}.Encode(time.Now(), map[string]any{"a": 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{nil, {}, []byte("garbage"), gob} {
		if _, _, err := (Codec{}).Decode(b); err == nil {
			t.Errorf("Decode(%q) succeeded, want an error", b)
		}
	}
}

// header builds a canonical index header by hand.
func header(sid, sub string) []byte {
	b := []byte{codecVersion}
	b = binary.AppendUvarint(b, uint64(len(sid)))
	b = append(b, sid...)
	b = binary.AppendUvarint(b, uint64(len(sub)))
	return append(b, sub...)
}

func TestParseIndex(t *testing.T) {
	maxUvarint := binary.AppendUvarint(nil, ^uint64(0))
	tests := []struct {
		name     string
		in       []byte
		wantErr  bool
		wantIdx  Index
		wantRest string
	}{
		{name: "nil", in: nil, wantErr: true},
		{name: "empty", in: []byte{}, wantErr: true},
		{name: "unknown version", in: append([]byte{codecVersion + 1}, header("a", "b")[1:]...), wantErr: true},
		{name: "version zero", in: []byte{0, 0, 0}, wantErr: true},
		{name: "version only", in: []byte{codecVersion}, wantErr: true},
		{name: "sid truncated", in: []byte{codecVersion, 5, 'a', 'b'}, wantErr: true},
		{name: "sid one byte short", in: []byte{codecVersion, 2, 'a'}, wantErr: true},
		{name: "sub length missing", in: []byte{codecVersion, 1, 'a'}, wantErr: true},
		{name: "sub truncated", in: []byte{codecVersion, 0, 3, 'x'}, wantErr: true},
		{name: "sub one byte short", in: []byte{codecVersion, 0, 2, 'x'}, wantErr: true},
		{name: "unterminated varint", in: []byte{codecVersion, 0x80, 0x80}, wantErr: true},
		{name: "overflowing varint", in: append([]byte{codecVersion}, bytes.Repeat([]byte{0xff}, 11)...), wantErr: true},
		{name: "length of max uint64", in: append(append([]byte{codecVersion}, maxUvarint...), 'a'), wantErr: true},
		{name: "sub length of max uint64", in: append(append([]byte{codecVersion, 0}, maxUvarint...), 'a'), wantErr: true},
		{name: "text", in: []byte("hello, world"), wantErr: true},
		{name: "minimal", in: []byte{codecVersion, 0, 0}, wantIdx: Index{}},
		{name: "header and rest", in: append(header("sid", "sub"), "rest"...), wantIdx: Index{"sid", "sub"}, wantRest: "rest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			idx, rest, err := ParseIndex(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseIndex(%x) = %+v, %q, nil; want an error", tt.in, idx, rest)
				}
				if idx != (Index{}) || rest != nil {
					t.Errorf("ParseIndex(%x) returned %+v, %q with its error; want zero values", tt.in, idx, rest)
				}
				return
			}
			if err != nil || idx != tt.wantIdx || string(rest) != tt.wantRest {
				t.Fatalf("ParseIndex(%x) = %+v, %q, %v; want %+v, %q, nil", tt.in, idx, rest, err, tt.wantIdx, tt.wantRest)
			}
		})
	}
}

func FuzzParseIndex(f *testing.F) {
	rec, err := Codec{}.Encode(time.Unix(1e9, 0), map[string]any{SIDKey: "sid-1", SubjectKey: "user-1", "other": 1})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(rec)
	f.Add(rec[:5])
	f.Add(rec[:len(header("sid-1", "user-1"))])
	f.Add(header("", ""))
	f.Add(header(strings.Repeat("x", 200), "y"))
	f.Add([]byte{})
	f.Add([]byte{codecVersion})
	f.Add([]byte{codecVersion, 0x80, 0x80})
	f.Add(append([]byte{codecVersion}, bytes.Repeat([]byte{0xff}, 11)...))
	f.Add([]byte("garbage"))
	f.Add(format1("sid-1", "user-1", time.Unix(1e9, 0), "other", "int", "1"))
	f.Fuzz(func(t *testing.T, in []byte) {
		idx, rest, err := ParseIndex(in)
		if err != nil {
			if idx != (Index{}) || rest != nil {
				t.Fatalf("rejected input returned %+v, %q", idx, rest)
			}
			return
		}
		// An accepted record has a known format byte, two lengths and both
		// strings before the rest, which is the input's tail.
		if in[0] != codecVersion && in[0] != formatJSON {
			t.Fatalf("accepted version %d", in[0])
		}
		if head := len(in) - len(rest); head < 3+len(idx.SID)+len(idx.Subject) {
			t.Fatalf("header of %d bytes cannot hold sid %q and sub %q", head, idx.SID, idx.Subject)
		}
		if !bytes.HasSuffix(in, rest) {
			t.Fatalf("rest %q is not the tail of the input", rest)
		}
		// Rewriting the header canonically keeps what it says.
		idx2, rest2, err := ParseIndex(append(header(idx.SID, idx.Subject), rest...))
		if err != nil || idx2 != idx || !bytes.Equal(rest2, rest) {
			t.Fatalf("re-encoded header parses as %+v, %q, %v; want %+v, %q", idx2, rest2, err, idx, rest)
		}
	})
}

func TestSQLiteSurvivesReopen(t *testing.T) {
	for _, name := range []string{"sessions.db", "a?b#c%20d.db"} {
		t.Run(name, func(t *testing.T) { testSQLiteSurvivesReopen(t, name) })
	}
}

func testSQLiteSurvivesReopen(t *testing.T, name string) {
	dir := filepath.Join(t.TempDir(), "nested", "dir") // parents are created
	path := filepath.Join(dir, name)
	b := record(t, "sid-1", "user-1", time.Now().Add(time.Hour))

	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	commit(t, s, "tok", b)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s, err = OpenSQLite(path)
	if err != nil {
		t.Fatalf("OpenSQLite again: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	mustFind(t, s, "tok", b)
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the database is not at the path given: %v", err)
	}
	// The index survives too.
	n, err := s.DeleteBySID(context.Background(), "sid-1")
	wantDeleted(t, "DeleteBySID after reopen", n, err, 1)
}

func TestOpenSQLiteIsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	b := record(t, "sid-1", "user-1", time.Now().Add(time.Hour))
	for i := range 3 {
		s, err := OpenSQLite(path)
		if err != nil {
			t.Fatalf("open #%d: %v", i+1, err)
		}
		if i == 0 {
			commit(t, s, "tok", b)
		}
		mustFind(t, s, "tok", b)
		var version int
		if err := s.db.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil {
			t.Fatal(err)
		}
		if version != len(sqliteMigrations) {
			t.Fatalf("open #%d: user_version = %d, want %d", i+1, version, len(sqliteMigrations))
		}
		if err := s.Close(); err != nil {
			t.Fatalf("close #%d: %v", i+1, err)
		}
	}
}

func TestOpenSQLiteRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec(`PRAGMA user_version = 99`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := OpenSQLite(path); err == nil {
		s.Close()
		t.Fatal("OpenSQLite of a database from a newer program succeeded, want an error")
	} else if !strings.Contains(err.Error(), "newer") {
		t.Errorf("error %q does not say the schema is newer", err)
	}
}

// TestSQLiteThroughSCS drives a real scs session manager over the SQLite
// store and signs the user out everywhere by subject.
func TestSQLiteThroughSCS(t *testing.T) {
	st, err := OpenSQLite(filepath.Join(t.TempDir(), "sessions.db"))
	if err != nil {
		t.Fatal(err)
	}
	store := WithTimeout(st, time.Second)
	t.Cleanup(func() { store.Close() })

	sm := scs.New()
	sm.Store = store
	sm.Codec = Codec{}
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		sm.Put(r.Context(), SIDKey, "sid-1")
		sm.Put(r.Context(), SubjectKey, "user-1")
	})
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(sm.GetString(r.Context(), SubjectKey)))
	})
	h := sm.LoadAndSave(mux)

	do := func(path string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		for _, c := range cookies {
			req.AddCookie(c)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: status %d: %s", path, rec.Code, rec.Body)
		}
		return rec
	}

	cookies := do("/login").Result().Cookies()
	if len(cookies) == 0 {
		t.Fatal("login set no session cookie")
	}
	if got := do("/whoami", cookies...).Body.String(); got != "user-1" {
		t.Fatalf("whoami before sign-out = %q, want user-1", got)
	}

	n, err := store.DeleteBySubject(context.Background(), "user-1")
	wantDeleted(t, "DeleteBySubject(user-1)", n, err, 1)

	if got := do("/whoami", cookies...).Body.String(); got != "" {
		t.Fatalf("whoami after DeleteBySubject = %q, want an empty session", got)
	}
}

// shortenRevocation makes s revoke deleted tokens for only d, so a test
// can see tombstones expire.
func shortenRevocation(t *testing.T, s Store, d time.Duration) {
	t.Helper()
	switch s := s.(type) {
	case *Memory:
		s.mu.Lock()
		s.revokeTTL = d
		s.mu.Unlock()
	case *SQLite:
		s.revokeTTL = d
	case *Redis:
		s.revokeTTL = d
	case *Postgres:
		s.revokeTTL = d
	default:
		t.Fatalf("shortenRevocation: unknown store %T", s)
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
func newSCSApp(t *testing.T, s Store, sid, sub string) *scsApp {
	t.Helper()
	sm := scs.New()
	sm.Store = s
	sm.Codec = Codec{}
	app := &scsApp{sid: sid, sub: sub, loaded: make(chan struct{}), release: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		if err := sm.RenewToken(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		sm.Put(r.Context(), SIDKey, sid)
		sm.Put(r.Context(), SubjectKey, sub)
	})
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(sm.GetString(r.Context(), SubjectKey)))
	})
	mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
		if err := sm.Destroy(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		sm.GetString(r.Context(), SubjectKey)
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

// TestPurgeDropsExpiredTombstones checks that the purge of the stores that
// purge by their own clock drops tombstones once, and only once, they
// have expired.
func TestPurgeDropsExpiredTombstones(t *testing.T) {
	ctx := context.Background()
	b := record(t, "sid-1", "user-1", time.Now().Add(time.Hour))
	tests := []struct {
		name       string
		open       func(t *testing.T) Store
		purge      func(s Store, now time.Time)
		tombstones func(t *testing.T, s Store) int
	}{
		{"memory", stores(t)[0].open,
			func(s Store, now time.Time) { s.(*Memory).purge(now) },
			func(t *testing.T, s Store) int {
				m := s.(*Memory)
				m.mu.RLock()
				defer m.mu.RUnlock()
				return len(m.revoked)
			}},
		{"sqlite", stores(t)[1].open,
			func(s Store, now time.Time) {
				if err := s.(*SQLite).purge(ctx, now); err != nil {
					t.Fatalf("purge: %v", err)
				}
			},
			func(t *testing.T, s Store) int {
				var n int
				if err := s.(*SQLite).db.QueryRow(`SELECT count(*) FROM revoked`).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.open(t)
			commit(t, s, "tok", b)
			if err := s.DeleteCtx(ctx, "tok"); err != nil {
				t.Fatal(err)
			}
			// Purged while it lasts, the tombstone stays and still blocks.
			tt.purge(s, time.Now())
			if n := tt.tombstones(t, s); n != 1 {
				t.Fatalf("tombstones after an early purge = %d, want 1", n)
			}
			if err := s.CommitCtx(ctx, "tok", b, time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			mustNotFind(t, s, "tok")
			// Purged once expired, it is gone, and the token commits again.
			tt.purge(s, time.Now().Add(revokedFor+time.Second))
			if n := tt.tombstones(t, s); n != 0 {
				t.Fatalf("tombstones after a late purge = %d, want 0", n)
			}
			commit(t, s, "tok", b)
			mustFind(t, s, "tok", b)
		})
	}
}

// blockingStore is a store whose FindCtx hangs until its context is done.
type blockingStore struct{ *Memory }

func (blockingStore) FindCtx(ctx context.Context, _ string) ([]byte, bool, error) {
	select {
	case <-ctx.Done():
		return nil, false, ctx.Err()
	case <-time.After(10 * time.Second): // only if WithTimeout never cancels
		return nil, false, errors.New("blockingStore: context was never cancelled")
	}
}

func TestWithTimeoutBoundsStuckStore(t *testing.T) {
	s := WithTimeout(blockingStore{NewMemory()}, 50*time.Millisecond)
	t.Cleanup(func() { s.Close() })
	finds := []struct {
		name string
		find func() ([]byte, bool, error)
	}{
		{"FindCtx", func() ([]byte, bool, error) { return s.FindCtx(context.Background(), "tok") }},
		{"Find", func() ([]byte, bool, error) { return s.Find("tok") }},
	}
	for _, tt := range finds {
		t.Run(tt.name, func(t *testing.T) {
			_, ok, err := tt.find()
			if ok || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("%s = found %v, err %v; want an error wrapping context.DeadlineExceeded", tt.name, ok, err)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		location string
		unknown  bool
	}{
		{location: "memory"},
		{location: "sqlite:" + filepath.Join(dir, "sessions.db")},
		{location: "mysql://user:secret@x/db", unknown: true},
		{location: "redis:/x", unknown: true},
		{location: "postgres:x", unknown: true},
		{location: "sqlite:", unknown: true},
		{location: "", unknown: true},
		{location: "Memory", unknown: true},
	}
	for _, tt := range tests {
		t.Run(tt.location, func(t *testing.T) {
			s, err := Open(tt.location, time.Second)
			if tt.unknown {
				if !errors.Is(err, ErrUnknownStore) {
					t.Fatalf("Open(%q) error = %v, want ErrUnknownStore", tt.location, err)
				}
				if s != nil {
					t.Errorf("Open(%q) returned a store with its error", tt.location)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("Open(%q) error %q reveals the password", tt.location, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(%q): %v", tt.location, err)
			}
			t.Cleanup(func() { s.Close() })
			if err := s.Ping(context.Background()); err != nil {
				t.Fatalf("Ping: %v", err)
			}
			b := record(t, "sid-1", "user-1", time.Now().Add(time.Hour))
			commit(t, s, "tok", b)
			mustFind(t, s, "tok", b)
		})
	}
}

// TestOpenSharedStores opens the Redis and Postgres stores through Open, as
// the app does.
func TestOpenSharedStores(t *testing.T) {
	tests := []struct {
		name     string
		location func(t *testing.T) string
	}{
		{"redis", func(t *testing.T) string {
			return serverURL(t, "TEST_REDIS_URL", "start redis-server and set it to run the Redis store tests")
		}},
		{"postgres", testPostgresURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(tt.location(t), time.Second)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			if err := s.Ping(context.Background()); err != nil {
				t.Fatalf("Ping: %v", err)
			}
			// Open uses the app's key prefix on Redis: a token of this
			// test's own, deleted afterwards, keeps clear of other data.
			token := "test-open-" + rand.Text()
			b := record(t, "sid-"+token, "user-"+token, time.Now().Add(time.Hour))
			commit(t, s, token, b)
			mustFind(t, s, token, b)
			n, err := s.DeleteBySID(context.Background(), "sid-"+token)
			wantDeleted(t, "DeleteBySID", n, err, 1)
		})
	}
}

func TestDescribe(t *testing.T) {
	tests := map[string]string{
		"memory":                               "memory",
		"sqlite:/var/lib/gologin/sessions.db":  "sqlite",
		"redis://user:secret@cache:6379/2":     "redis",
		"rediss://:secret@cache:6380/0":        "rediss",
		"postgres://app:secret@db/gologin":     "postgres",
		"postgresql://app:secret@db/gologin?x": "postgresql",
	}
	for location, want := range tests {
		if got := Describe(location); got != want {
			t.Errorf("Describe(%q) = %q, want %q", location, got, want)
		}
	}
}

func TestCloseTwice(t *testing.T) {
	for _, sc := range stores(t) {
		t.Run(sc.name, func(t *testing.T) {
			s := sc.open(t)
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			s.Close() // must not panic
		})
	}
}

func TestPostgresSurvivesReopen(t *testing.T) {
	url := testPostgresURL(t)
	b := record(t, "sid-1", "user-1", time.Now().Add(time.Hour))

	s := openPostgresURL(t, url)
	commit(t, s, "tok", b)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// New connections to the same database, as after a restart.
	s = openPostgresURL(t, url)
	t.Cleanup(func() { s.Close() })
	mustFind(t, s, "tok", b)
	if n, err := s.Count(context.Background()); err != nil || n != 1 {
		t.Fatalf("Count after reopen = %d, %v; want 1", n, err)
	}
	n, err := s.DeleteBySID(context.Background(), "sid-1")
	wantDeleted(t, "DeleteBySID after reopen", n, err, 1)
}

// TestOpenPostgresConcurrently starts several stores on one fresh schema
// at once, as instances of the app do: the advisory lock must let exactly
// one migrate, and the others must find the schema ready.
func TestOpenPostgresConcurrently(t *testing.T) {
	url := testPostgresURL(t)
	const n = 5
	stores := make([]*Postgres, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			stores[i], errs[i] = OpenPostgres(ctx, url)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("open #%d: %v", i+1, err)
			continue
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	if t.Failed() {
		t.FailNow()
	}
	b := record(t, "sid-1", "user-1", time.Now().Add(time.Hour))
	commit(t, stores[0], "tok", b)
	mustFind(t, stores[n-1], "tok", b)

	var versions []int
	rows, err := stores[0].pool.Query(context.Background(), `SELECT version FROM schema_migrations ORDER BY version`)
	if err == nil {
		versions, err = pgx.CollectRows(rows, pgx.RowTo[int])
	}
	if err != nil {
		t.Fatal(err)
	}
	want := make([]int, len(postgresMigrations))
	for i := range want {
		want[i] = i + 1
	}
	if !reflect.DeepEqual(versions, want) {
		t.Fatalf("schema_migrations = %v, want %v (each migration once)", versions, want)
	}
}

func TestOpenPostgresRefusesNewerSchema(t *testing.T) {
	url := testPostgresURL(t)
	s := openPostgresURL(t, url)
	if _, err := s.pool.Exec(context.Background(), `INSERT INTO schema_migrations (version) VALUES (99)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if s, err := OpenPostgres(ctx, url); err == nil {
		s.Close()
		t.Fatal("OpenPostgres of a database from a newer program succeeded, want an error")
	} else if !strings.Contains(err.Error(), "newer") {
		t.Errorf("error %q does not say the schema is newer", err)
	}
}

func TestOpenPostgresErrorsHideThePassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, url := range []string{
		"postgres://user:secret@127.0.0.1:notaport/db",            // does not parse
		"postgres://user:secret@127.0.0.1:1/db?sslmode=disable",   // nothing listens on port 1
		"postgres://user:secret@127.0.0.1:1/db?pool_max_conns=no", // bad pool size
	} {
		s, err := OpenPostgres(ctx, url)
		if err == nil {
			s.Close()
			t.Fatalf("OpenPostgres(%q) succeeded, want an error", url)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("OpenPostgres error %q reveals the password", err)
		}
	}
}

// withQuery returns rawURL with the query parameter key set to value.
func withQuery(t *testing.T, rawURL, key, value string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// TestPostgresPoolUnderLoad drives a two-connection pool from many
// goroutines, and checks that a call cut short by its context frees its
// connection for the next.
func TestPostgresPoolUnderLoad(t *testing.T) {
	s := openPostgresURL(t, withQuery(t, testPostgresURL(t), "pool_max_conns", "2"))
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()

	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for g := range 20 {
		wg.Go(func() {
			token := "tok-" + string(rune('a'+g))
			b := record(t, "sid-shared", "user-shared", time.Now().Add(time.Hour))
			for range 10 {
				if err := s.CommitCtx(ctx, token, b, time.Now().Add(time.Hour)); err != nil {
					errs <- err
					return
				}
				if got, ok, err := s.FindCtx(ctx, token); err != nil || !ok || !bytes.Equal(got, b) {
					errs <- errors.New("FindCtx after CommitCtx did not return the record")
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	n, err := s.DeleteBySubject(ctx, "user-shared")
	wantDeleted(t, "DeleteBySubject(user-shared)", n, err, 20)

	// Calls whose context ends mid-query must give their connections back
	// (closed, as pgx leaves them): two of them would exhaust the pool.
	for range 3 {
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		_, err := s.pool.Exec(short, `SELECT pg_sleep(2)`)
		cancel()
		if err == nil {
			t.Fatal("pg_sleep(2) under a 50ms deadline succeeded")
		}
	}
	bounded, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.Ping(bounded); err != nil {
		t.Fatalf("Ping after cancelled calls: %v", err)
	}
}

// TestPostgresPoolRecovers kills the store's server connections, as a
// database restart would, and checks that the same store carries on.
func TestPostgresPoolRecovers(t *testing.T) {
	app := "gologin_test_" + strings.ToLower(rand.Text())
	s := openPostgresURL(t, withQuery(t, testPostgresURL(t), "application_name", app))
	t.Cleanup(func() { s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := record(t, "sid-1", "user-1", time.Now().Add(time.Hour))
	commit(t, s, "tok", b)

	admin, err := pgx.Connect(ctx, os.Getenv("TEST_POSTGRES_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var killed int
	if err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed == 0 {
		t.Fatal("found no connection of the store to terminate")
	}
	// A call may meet a dead connection before the pool notices; it drops
	// each one it finds, so a few calls are enough for the pool to recover.
	for i := 0; ; i++ {
		err := s.Ping(ctx)
		if err == nil {
			break
		}
		if i == killed {
			t.Fatalf("Ping still fails after %d tries: %v", i+1, err)
		}
	}
	mustFind(t, s, "tok", b)
}

// TestStoresMigrateFromBeforeTombstones opens a SQLite and a Postgres
// database made before the revoked table existed: the new migration adds
// it, the sessions survive, and deletes revoke.
// TestStoresEndSessionsKeptInTheClear opens a database that the program
// wrote before records were keyed by their token's hash: those sessions
// end, since their tokens may have been read by others, and new ones work.
func TestStoresEndSessionsKeptInTheClear(t *testing.T) {
	ctx := context.Background()
	b := record(t, "sid-1", "user-1", time.Now().Add(time.Hour))
	tests := []struct {
		name       string
		migrations *[]string
		open       func(t *testing.T) (open func() Store)
		// insert writes a session as the old program did.
		insert func(s Store, token string, b []byte) error
	}{
		{"sqlite", &sqliteMigrations, func(t *testing.T) func() Store {
			path := filepath.Join(t.TempDir(), "sessions.db")
			return func() Store {
				s, err := OpenSQLite(path)
				if err != nil {
					t.Fatalf("OpenSQLite: %v", err)
				}
				return s
			}
		}, func(s Store, token string, b []byte) error {
			_, err := s.(*SQLite).db.Exec(`INSERT INTO sessions (token, data, expiry, sid, sub) VALUES (?, ?, ?, 'sid-1', 'user-1')`,
				token, b, time.Now().Add(time.Hour).UnixMilli())
			return err
		}},
		{"postgres", &postgresMigrations, func(t *testing.T) func() Store {
			url := testPostgresURL(t)
			return func() Store { return openPostgresURL(t, url) }
		}, func(s Store, token string, b []byte) error {
			_, err := s.(*Postgres).pool.Exec(ctx, `INSERT INTO sessions (token, data, expiry, sid, sub) VALUES ($1, $2, $3, 'sid-1', 'user-1')`,
				token, b, time.Now().Add(time.Hour))
			return err
		}},
		{"redis", nil, func(t *testing.T) func() Store {
			url := serverURL(t, "TEST_REDIS_URL", "start redis-server and set it to run the Redis store tests")
			prefix := testRedisPrefix()
			return func() Store { return openRedisPrefix(t, url, prefix) }
		}, func(s Store, token string, b []byte) error {
			r := s.(*Redis)
			if err := r.client.Del(ctx, r.prefix+"format").Err(); err != nil {
				return err
			}
			if err := r.client.HSet(ctx, r.sessionKey(token), "data", b, "sid", "sid-1", "sub", "user-1").Err(); err != nil {
				return err
			}
			return r.client.ZAdd(ctx, r.expiriesKey(), redis.Z{Score: float64(time.Now().Add(time.Hour).UnixMilli()), Member: token}).Err()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			open := tt.open(t)
			var all []string
			if tt.migrations != nil {
				all = *tt.migrations
				*tt.migrations = all[:3] // the schema before hashes of tokens
			}
			s := open()
			if tt.migrations != nil {
				*tt.migrations = all
			}
			const token = "clear-token-0123456789abcdefghijklmnopqrstu"
			if err := tt.insert(s, token, b); err != nil {
				t.Fatalf("insert: %v", err)
			}
			s.Close()

			s = open()
			t.Cleanup(func() { s.Close() })
			mustNotFind(t, s, token)
			if n, err := s.Count(ctx); err != nil || n != 0 {
				t.Errorf("Count after the upgrade = %d, %v; want 0", n, err)
			}
			commit(t, s, token, b)
			mustFind(t, s, token, b)
		})
	}
}

// TestStoresKeepNoTokens commits a session and its tokens record and a
// lock, then reads everything the store wrote: the session token appears
// nowhere, only its hash.
func TestStoresKeepNoTokens(t *testing.T) {
	ctx := context.Background()
	const token = "SECRETTOKEN0123456789abcdefghijklmnopqrstu"
	b := record(t, "sid-1", "user-1", time.Now().Add(time.Hour))
	tests := []struct {
		name string
		open func(t *testing.T) Store
		dump func(t *testing.T, s Store) string
	}{
		{"sqlite", stores(t)[1].open, func(t *testing.T, s Store) string {
			var out strings.Builder
			for _, q := range []string{`SELECT token FROM sessions`, `SELECT token FROM revoked`, `SELECT name FROM locks`} {
				rows, err := s.(*SQLite).db.Query(q)
				if err != nil {
					t.Fatal(err)
				}
				for rows.Next() {
					var v string
					rows.Scan(&v)
					out.WriteString(v + "\n")
				}
				rows.Close()
			}
			return out.String()
		}},
		{"postgres", stores(t)[3].open, func(t *testing.T, s Store) string {
			var out strings.Builder
			for _, q := range []string{`SELECT token FROM sessions`, `SELECT token FROM revoked`, `SELECT name FROM locks`} {
				rows, err := s.(*Postgres).pool.Query(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				for rows.Next() {
					var v string
					rows.Scan(&v)
					out.WriteString(v + "\n")
				}
				rows.Close()
			}
			return out.String()
		}},
		{"redis", stores(t)[2].open, func(t *testing.T, s Store) string {
			r := s.(*Redis)
			var out strings.Builder
			iter := r.client.Scan(ctx, 0, r.prefix+"*", 1000).Iterator()
			for iter.Next(ctx) {
				key := iter.Val()
				out.WriteString(key + "\n")
				members, _ := r.client.SMembers(ctx, key).Result()
				zmembers, _ := r.client.ZRange(ctx, key, 0, -1).Result()
				out.WriteString(strings.Join(append(members, zmembers...), "\n"))
			}
			return out.String()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.open(t)
			commit(t, s, token, b)
			commit(t, s, AuxPrefix+"tokens:"+token, b)
			commit(t, s, "deleted"+token, b)
			if err := s.DeleteCtx(ctx, "deleted"+token); err != nil {
				t.Fatal(err)
			}
			unlock, err := s.Lock(ctx, "refresh:"+token, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			defer unlock()
			dump := tt.dump(t, s)
			if strings.Contains(dump, token) {
				t.Fatalf("the store keeps the session token itself:\n%s", dump)
			}
			if !strings.Contains(dump, hashed(token)) {
				t.Fatalf("the store does not key the session by its token's hash:\n%s", dump)
			}
			mustFind(t, s, token, b)
			mustFind(t, s, AuxPrefix+"tokens:"+token, b)
			if n, err := s.Count(ctx); err != nil || n != 1 {
				t.Errorf("Count = %d, %v; want 1 (the tokens record is auxiliary)", n, err)
			}
		})
	}
}

// TestSQLiteFilesArePrivate checks that the database and its WAL and SHM
// files are readable by their owner alone, whether new or from before.
func TestSQLiteFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := t.TempDir()
	path := filepath.Join(dir, "sessions.db")
	check := func(when string) {
		t.Helper()
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatalf("%s: %v", when, err)
			}
			if perm := fi.Mode().Perm(); perm != 0o600 {
				t.Errorf("%s: %s has mode %o, want 600", when, filepath.Base(p), perm)
			}
		}
	}
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	commit(t, s, "tok", record(t, "", "", time.Now().Add(time.Hour)))
	check("new database")
	s.Close()

	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		os.Chmod(p, 0o644) // as an earlier version left them
	}
	s, err = OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	commit(t, s, "tok2", record(t, "", "", time.Now().Add(time.Hour)))
	check("database from before")
}

// TestSQLitePurgeReclaimsSpace fills the database with sessions that then
// expire: the purge gives their pages back, and the file shrinks.
func TestSQLitePurgeReclaimsSpace(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sessions.db")
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	size := func() int64 {
		t.Helper()
		// A checkpoint writes the WAL into the database file, whose size
		// is then what the store keeps.
		if _, err := s.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	empty := size()
	big := record(t, "", "", time.Now().Add(time.Hour))
	big = append(big, make([]byte, 4096)...)
	for i := range 2000 {
		if err := s.CommitCtx(ctx, fmt.Sprintf("tok-%d", i), big, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	full := size()
	if err := s.purge(ctx, time.Now().Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	after := size()
	t.Logf("database file: %d B empty, %d B with 2000 sessions, %d B after the purge", empty, full, after)
	if after > empty+(full-empty)/10 {
		t.Fatalf("after purging every session the file is %d B, want it back near %d B (it was %d B full)", after, empty, full)
	}
}

func TestCountLeavesOutAuxiliaryRecords(t *testing.T) {
	for _, sc := range stores(t) {
		t.Run(sc.name, func(t *testing.T) {
			s := sc.open(t)
			b := record(t, "sid-1", "user-1", time.Now().Add(time.Hour))
			commit(t, s, "tok", b)
			commit(t, s, AuxPrefix+"tokens:tok", b)
			if n, err := s.Count(context.Background()); err != nil || n != 1 {
				t.Fatalf("Count = %d, %v; want 1 (the session, not its auxiliary record)", n, err)
			}
			// Auxiliary records are indexed like sessions.
			n, err := s.DeleteBySID(context.Background(), "sid-1")
			if err != nil || n == 0 {
				t.Fatalf("DeleteBySID = %d, %v", n, err)
			}
			if _, found, _ := s.FindCtx(context.Background(), AuxPrefix+"tokens:tok"); found {
				t.Fatal("DeleteBySID left the auxiliary record")
			}
		})
	}
}

func TestCodecRefusesUnknownTypes(t *testing.T) {
	type unregistered struct{ A int }
	if _, err := (Codec{}).Encode(time.Now(), map[string]any{"x": unregistered{1}}); err == nil {
		t.Fatal("Encode of an unregistered type succeeded")
	}
}
