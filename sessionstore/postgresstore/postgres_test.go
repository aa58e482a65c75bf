package postgresstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gologin/gologin/internal/pgtest"
	"github.com/gologin/gologin/internal/testskip"
	"github.com/gologin/gologin/sessionstore"
	"github.com/gologin/gologin/sessionstore/storetest"
)

func TestMain(m *testing.M) { testskip.Main(m, "postgresstore") }

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) sessionstore.Store { return openTestPostgres(t) }, storetest.Options{
		ShortenRevocation: func(s sessionstore.Store, d time.Duration) { s.(*Store).revokeTTL = d },
	})
}

// TestEndsSessionsKeptInTheClear opens a database that the program wrote
// before records were keyed by their token's hash: those sessions end,
// since their tokens may have been read by others, and new ones work.
func TestEndsSessionsKeptInTheClear(t *testing.T) {
	ctx := context.Background()
	url := testPostgresURL(t)
	all := postgresMigrations
	postgresMigrations = all[:3] // the schema before hashes of tokens
	s := openPostgresURL(t, url)
	postgresMigrations = all
	const token = "clear-token-0123456789abcdefghijklmnopqrstu"
	b := storetest.Record(t, "sid-1", "user-1", time.Now().Add(time.Hour))
	if _, err := s.pool.Exec(ctx, `INSERT INTO sessions (token, data, expiry, sid, sub) VALUES ($1, $2, $3, 'sid-1', 'user-1')`,
		token, b, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = openPostgresURL(t, url)
	t.Cleanup(func() { s.Close() })
	storetest.MustNotFind(t, s, token)
	if n, err := s.Count(ctx); err != nil || n != 0 {
		t.Errorf("Count after the upgrade = %d, %v; want 0", n, err)
	}
	storetest.Commit(t, s, token, b)
	storetest.MustFind(t, s, token, b)
}

// TestKeepsNoTokens reads every key the tables hold after a session, its
// tokens record and a lock: the session token appears nowhere, only its
// hash.
func TestKeepsNoTokens(t *testing.T) {
	s := openTestPostgres(t)
	storetest.KeepsNoTokens(t, s, func() string {
		var out strings.Builder
		for _, q := range []string{`SELECT token FROM sessions`, `SELECT token FROM revoked`, `SELECT name FROM locks`} {
			rows, err := s.pool.Query(context.Background(), q)
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

// testPostgresURL creates a schema of its own on TEST_POSTGRES_URL's server,
// drops it at cleanup, and returns a URL whose search_path selects it, so
// tests share the database without seeing each other's tables.
func testPostgresURL(t *testing.T) string {
	t.Helper()
	base := testskip.ServerURL(t, "TEST_POSTGRES_URL", "start PostgreSQL and set it to run the Postgres store tests")
	return pgtest.Schema(t, base, "gologin_test_")
}

// openTestPostgres opens a Postgres store in a schema of its own.
func openTestPostgres(t *testing.T) *Store {
	t.Helper()
	s := openPostgresURL(t, testPostgresURL(t))
	t.Cleanup(func() { s.Close() }) // runs before the schema is dropped
	return s
}

func openPostgresURL(t *testing.T, url string) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Open(ctx, url, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestSurvivesReopen(t *testing.T) {
	url := testPostgresURL(t)
	b := storetest.Record(t, "sid-1", "user-1", time.Now().Add(time.Hour))

	s := openPostgresURL(t, url)
	storetest.Commit(t, s, "tok", b)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// New connections to the same database, as after a restart.
	s = openPostgresURL(t, url)
	t.Cleanup(func() { s.Close() })
	storetest.MustFind(t, s, "tok", b)
	if n, err := s.Count(context.Background()); err != nil || n != 1 {
		t.Fatalf("Count after reopen = %d, %v; want 1", n, err)
	}
	n, err := s.DeleteBySID(context.Background(), "sid-1")
	storetest.WantDeleted(t, "DeleteBySID after reopen", n, err, 1)
}

// TestOpenConcurrently starts several stores on one fresh schema
// at once, as instances of the app do: the advisory lock must let exactly
// one migrate, and the others must find the schema ready.
func TestOpenConcurrently(t *testing.T) {
	url := testPostgresURL(t)
	const n = 5
	stores := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			stores[i], errs[i] = Open(ctx, url, nil)
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
	b := storetest.Record(t, "sid-1", "user-1", time.Now().Add(time.Hour))
	storetest.Commit(t, stores[0], "tok", b)
	storetest.MustFind(t, stores[n-1], "tok", b)

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

func TestOpenRefusesNewerSchema(t *testing.T) {
	url := testPostgresURL(t)
	s := openPostgresURL(t, url)
	if _, err := s.pool.Exec(context.Background(), `INSERT INTO schema_migrations (version) VALUES (99)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if s, err := Open(ctx, url, nil); err == nil {
		s.Close()
		t.Fatal("Open of a database from a newer program succeeded, want an error")
	} else if !strings.Contains(err.Error(), "newer") {
		t.Errorf("error %q does not say the schema is newer", err)
	}
}

func TestOpenErrorsHideThePassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, url := range []string{
		"postgres://user:secret@127.0.0.1:notaport/db",            // does not parse
		"postgres://user:secret@127.0.0.1:1/db?pool_max_conns=no", // bad pool size
	} {
		s, err := Open(ctx, url, nil)
		if err == nil {
			s.Close()
			t.Fatalf("Open(%q) succeeded, want an error", url)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("Open error %q reveals the password", err)
		}
	}
	// A server that cannot be reached does not fail Open, and its
	// warnings and the store's errors keep the password to themselves.
	var logged bytes.Buffer
	s, err := Open(ctx, "postgres://user:secret@127.0.0.1:1/db?sslmode=disable", slog.New(slog.NewTextHandler(&logged, nil)))
	if err != nil {
		t.Fatalf("Open with the server unreachable: %v, want a store that connects later", err)
	}
	defer s.Close()
	perr := s.Ping(ctx)
	if perr == nil {
		t.Fatal("Ping succeeded with nothing listening")
	}
	if strings.Contains(perr.Error(), "secret") || strings.Contains(logged.String(), "secret") {
		t.Errorf("the password shows in %q or the log:\n%s", perr, logged.String())
	}
}

// TestOpenBeforeTheServer opens the store on a URL whose server refuses
// connections for now: Open succeeds, calls fail, and once the server
// answers (here: the test's database, reached through a forwarding port
// that starts refusing) the migration runs by itself and calls succeed.
func TestOpenBeforeTheServer(t *testing.T) {
	target, err := url.Parse(testPostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	proxyAddr := ln.Addr().String()
	ln.Close() // refuses connections until the proxy starts below
	upstream := target.Host
	target.Host = proxyAddr
	s, err := Open(context.Background(), target.String(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("Open with the server unreachable: %v, want a store that connects later", err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Ping(context.Background()); err == nil {
		t.Fatal("Ping succeeded before the server answered")
	}

	ln, err = net.Listen("tcp", proxyAddr)
	if err != nil {
		t.Skipf("the forwarding port was taken meanwhile: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	go forward(ln, upstream)
	deadline := time.Now().Add(15 * time.Second)
	b := storetest.Record(t, "sid-1", "user-1", time.Now().Add(time.Hour))
	for {
		err := s.CommitCtx(context.Background(), "tok", b, time.Now().Add(time.Hour))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store did not connect and migrate within 15s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	storetest.MustFind(t, s, "tok", b)
}

// forward copies every connection ln accepts to and from addr.
func forward(ln net.Listener, addr string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			u, err := net.Dial("tcp", addr)
			if err != nil {
				return
			}
			defer u.Close()
			go io.Copy(u, c)
			io.Copy(c, u)
		}()
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
func TestPoolUnderLoad(t *testing.T) {
	s := openPostgresURL(t, withQuery(t, testPostgresURL(t), "pool_max_conns", "2"))
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()

	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for g := range 20 {
		wg.Go(func() {
			token := "tok-" + string(rune('a'+g))
			b := storetest.Record(t, "sid-shared", "user-shared", time.Now().Add(time.Hour))
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
	storetest.WantDeleted(t, "DeleteBySubject(user-shared)", n, err, 20)

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
func TestPoolRecovers(t *testing.T) {
	app := "gologin_test_" + strings.ToLower(rand.Text())
	s := openPostgresURL(t, withQuery(t, testPostgresURL(t), "application_name", app))
	t.Cleanup(func() { s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := storetest.Record(t, "sid-1", "user-1", time.Now().Add(time.Hour))
	storetest.Commit(t, s, "tok", b)

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
	storetest.MustFind(t, s, "tok", b)
}
