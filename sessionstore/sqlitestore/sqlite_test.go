package sqlitestore

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/gologin/gologin/sessionstore"
	"github.com/gologin/gologin/sessionstore/storetest"
)

// openTest opens a store in a new directory, closed when the test ends.
func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "sessions.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) sessionstore.Store { return openTest(t) }, storetest.Options{
		ShortenRevocation: func(s sessionstore.Store, d time.Duration) { s.(*Store).revokeTTL = d },
	})
}

// TestPurgeDropsExpiredTombstones checks that the purge drops a tombstone
// once, and only once, it has expired.
func TestPurgeDropsExpiredTombstones(t *testing.T) {
	ctx := context.Background()
	b := storetest.Record(t, "sid-1", "user-1", time.Now().Add(time.Hour))
	s := openTest(t)
	tombstones := func() int {
		t.Helper()
		var n int
		if err := s.db.QueryRow(`SELECT count(*) FROM revoked`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	storetest.Commit(t, s, "tok", b)
	if err := s.DeleteCtx(ctx, "tok"); err != nil {
		t.Fatal(err)
	}
	// Purged while it lasts, the tombstone stays and still blocks.
	if err := s.purge(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if n := tombstones(); n != 1 {
		t.Fatalf("tombstones after an early purge = %d, want 1", n)
	}
	if err := s.CommitCtx(ctx, "tok", b, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	storetest.MustNotFind(t, s, "tok")
	// Purged once expired, it is gone, and the token commits again.
	if err := s.purge(ctx, time.Now().Add(sessionstore.RevokedFor+time.Second)); err != nil {
		t.Fatal(err)
	}
	if n := tombstones(); n != 0 {
		t.Fatalf("tombstones after a late purge = %d, want 0", n)
	}
	storetest.Commit(t, s, "tok", b)
	storetest.MustFind(t, s, "tok", b)
}

// TestEndsSessionsKeptInTheClear opens a database that the program wrote
// before records were keyed by their token's hash: those sessions end,
// since their tokens may have been read by others, and new ones work.
func TestEndsSessionsKeptInTheClear(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	all := sqliteMigrations
	sqliteMigrations = all[:3] // the schema before hashes of tokens
	s, err := Open(path)
	sqliteMigrations = all
	if err != nil {
		t.Fatal(err)
	}
	const token = "clear-token-0123456789abcdefghijklmnopqrstu"
	b := storetest.Record(t, "sid-1", "user-1", time.Now().Add(time.Hour))
	if _, err := s.db.Exec(`INSERT INTO sessions (token, data, expiry, sid, sub) VALUES (?, ?, ?, 'sid-1', 'user-1')`,
		token, b, time.Now().Add(time.Hour).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.MustNotFind(t, s, token)
	if n, err := s.Count(context.Background()); err != nil || n != 0 {
		t.Errorf("Count after the upgrade = %d, %v; want 0", n, err)
	}
	storetest.Commit(t, s, token, b)
	storetest.MustFind(t, s, token, b)
}

// TestKeepsNoTokens commits a session, its tokens record and a lock, then
// reads every key the database holds: the session token appears nowhere,
// only its hash.
func TestKeepsNoTokens(t *testing.T) {
	s := openTest(t)
	storetest.KeepsNoTokens(t, s, func() string {
		var out strings.Builder
		for _, q := range []string{`SELECT token FROM sessions`, `SELECT token FROM revoked`, `SELECT name FROM locks`} {
			rows, err := s.db.Query(q)
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
	})
}

func TestSurvivesReopen(t *testing.T) {
	for _, name := range []string{"sessions.db", "a?b#c%20d.db"} {
		t.Run(name, func(t *testing.T) { testSurvivesReopen(t, name) })
	}
}

func testSurvivesReopen(t *testing.T, name string) {
	dir := filepath.Join(t.TempDir(), "nested", "dir") // parents are created
	path := filepath.Join(dir, name)
	b := storetest.Record(t, "sid-1", "user-1", time.Now().Add(time.Hour))

	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	storetest.Commit(t, s, "tok", b)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s, err = Open(path)
	if err != nil {
		t.Fatalf("Open again: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	storetest.MustFind(t, s, "tok", b)
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the database is not at the path given: %v", err)
	}
	// The index survives too.
	n, err := s.DeleteBySID(context.Background(), "sid-1")
	storetest.WantDeleted(t, "DeleteBySID after reopen", n, err, 1)
}

func TestOpenIsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	b := storetest.Record(t, "sid-1", "user-1", time.Now().Add(time.Hour))
	for i := range 3 {
		s, err := Open(path)
		if err != nil {
			t.Fatalf("open #%d: %v", i+1, err)
		}
		if i == 0 {
			storetest.Commit(t, s, "tok", b)
		}
		storetest.MustFind(t, s, "tok", b)
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

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec(`PRAGMA user_version = 99`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := Open(path); err == nil {
		s.Close()
		t.Fatal("Open of a database from a newer program succeeded, want an error")
	} else if !strings.Contains(err.Error(), "newer") {
		t.Errorf("error %q does not say the schema is newer", err)
	}
}

// TestThroughSCS drives a real scs session manager over the SQLite
// store and signs the user out everywhere by subject.
func TestThroughSCS(t *testing.T) {
	st, err := Open(filepath.Join(t.TempDir(), "sessions.db"))
	if err != nil {
		t.Fatal(err)
	}
	store := sessionstore.WithTimeout(st, time.Second)
	t.Cleanup(func() { store.Close() })

	sm := scs.New()
	sm.Store = store
	sm.Codec = sessionstore.Codec{}
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		sm.Put(r.Context(), sessionstore.SIDKey, "sid-1")
		sm.Put(r.Context(), sessionstore.SubjectKey, "user-1")
	})
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(sm.GetString(r.Context(), sessionstore.SubjectKey)))
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
	storetest.WantDeleted(t, "DeleteBySubject(user-1)", n, err, 1)

	if got := do("/whoami", cookies...).Body.String(); got != "" {
		t.Fatalf("whoami after DeleteBySubject = %q, want an empty session", got)
	}
}

// TestFilesArePrivate checks that the database and its WAL and SHM
// files are readable by their owner alone, whether new or from before.
func TestFilesArePrivate(t *testing.T) {
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
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	storetest.Commit(t, s, "tok", storetest.Record(t, "", "", time.Now().Add(time.Hour)))
	check("new database")
	s.Close()

	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		os.Chmod(p, 0o644) // as an earlier version left them
	}
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.Commit(t, s, "tok2", storetest.Record(t, "", "", time.Now().Add(time.Hour)))
	check("database from before")
}

// TestPurgeReclaimsSpace fills the database with sessions that then
// expire: the purge gives their pages back, and the file shrinks.
func TestPurgeReclaimsSpace(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sessions.db")
	s, err := Open(path)
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
	big := storetest.Record(t, "", "", time.Now().Add(time.Hour))
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
