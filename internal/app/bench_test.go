package app

// Benchmarks of the app in-process, through a.ServeHTTP with recorders, so
// that the network stays out of the figures. BENCHMARKS.md at the
// repository root has the results and the commands that produce them:
//
//	go test ./internal/app -run '^$' -bench . -benchmem
//
// The redis and postgres cases run when TEST_REDIS_URL and
// TEST_POSTGRES_URL are set (.ci/services starts both servers and prints
// them); they skip otherwise.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/gologin/gologin/internal/config"
	"github.com/gologin/gologin/internal/pgtest"
	"github.com/gologin/gologin/internal/testclient"
	"github.com/gologin/gologin/sessionstore"
)

// benchBase is the app's URL in the benchmarks. Nothing listens there: the
// requests go straight to a.ServeHTTP, and the app reaches its embedded
// provider in-process.
const benchBase = "http://127.0.0.1:3000"

// benchStores are the stores the benchmarks compare.
var benchStores = []string{"memory", "sqlite", "redis", "postgres"}

// benchLocation is the SESSION_STORE value for a store kind, skipping b
// when the store's server is not configured.
func benchLocation(b *testing.B, kind string) string {
	b.Helper()
	switch kind {
	case "memory":
		return "memory"
	case "sqlite":
		return "sqlite:" + filepath.Join(b.TempDir(), "sessions.db")
	case "redis":
		u := os.Getenv("TEST_REDIS_URL")
		if u == "" {
			b.Skip("TEST_REDIS_URL not set: start Redis (eval \"$(.ci/services)\") to benchmark the Redis store")
		}
		return u
	case "postgres":
		u := os.Getenv("TEST_POSTGRES_URL")
		if u == "" {
			b.Skip("TEST_POSTGRES_URL not set: start PostgreSQL (eval \"$(.ci/services)\") to benchmark the Postgres store")
		}
		return pgtest.Schema(b, u, "gologin_bench_")
	}
	b.Fatalf("unknown store kind %q", kind)
	return ""
}

// newBenchApp builds the app with the embedded development provider and
// the session store at location, logging to io.Discard (the access log is
// still formatted, as in production), and fetches the provider's discovery
// document so the first login does not pay for it.
func newBenchApp(b *testing.B, location string) *App {
	b.Helper()
	vars := map[string]string{"APP_BASE_URL": benchBase, "SESSION_STORE": "memory"}
	cfg, err := config.Load(func(k string) string { return vars[k] })
	if err != nil {
		b.Fatal(err)
	}
	// Set after Load, which may not accept every location sessionstore.Open
	// does yet.
	cfg.SessionStore = location
	a, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close() })
	if err := a.Discover(context.Background()); err != nil {
		b.Fatal(err)
	}
	return a
}

// benchServe sends one request to the app and returns the response.
func benchServe(a *App, method, target string, form url.Values, cookie *http.Cookie) *http.Response {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, target, body)
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != nil {
		r.AddCookie(cookie)
	}
	w := httptest.NewRecorder()
	a.ServeHTTP(w, r)
	return w.Result()
}

// benchCookie returns the session cookie resp sets, or nil.
func benchCookie(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == "session" {
			return c
		}
	}
	return nil
}

// attemptCookieOf returns the login attempt cookie resp sets, or nil.
func attemptCookieOf(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if strings.HasPrefix(c.Name, "login_tx_") {
			return c
		}
	}
	return nil
}

// benchSignIn signs in as name and email through the embedded provider's
// form, all in-process: GET /login, GET the provider's sign-in page, POST
// its form, GET /callback. It returns the signed-in session cookie.
func benchSignIn(tb testing.TB, a *App, name, email string) *http.Cookie {
	tb.Helper()
	resp := benchServe(a, "GET", benchBase+"/login", nil, nil)
	cookie := attemptCookieOf(resp)
	if resp.StatusCode != http.StatusFound || cookie == nil {
		tb.Fatalf("GET /login: got %d (cookie %v), want 302 with a login attempt cookie", resp.StatusCode, cookie != nil)
	}
	authorize := resp.Header.Get("Location")
	resp = benchServe(a, "GET", authorize, nil, nil)
	body, _ := io.ReadAll(resp.Body)
	u, _ := url.Parse(authorize)
	page := testclient.Page{Status: resp.StatusCode, URL: u, Body: string(body)}
	if page.Status != http.StatusOK {
		tb.Fatalf("GET the sign-in page %q: got %d", authorize, page.Status)
	}
	form := page.Form(tb, "/authorize")
	form.Values.Set("name", name)
	form.Values.Set("email", email)
	form.Values.Set("signin", "1")
	resp = benchServe(a, "POST", form.Action, form.Values, nil)
	callback := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(callback, benchBase+"/callback?") {
		tb.Fatalf("POST the sign-in form: got %d to %q, want 302 to the callback", resp.StatusCode, callback)
	}
	resp = benchServe(a, "GET", callback, nil, cookie)
	if cookie = benchCookie(resp); resp.StatusCode != http.StatusSeeOther || cookie == nil {
		tb.Fatalf("GET /callback: got %d to %q, want 303 with a new session cookie", resp.StatusCode, resp.Header.Get("Location"))
	}
	return cookie
}

// benchForget deletes the sessions of the given session tokens, and their
// auxiliary records, by subject, from a store other tests may share.
func benchForget(a *App, tokens []string) {
	ctx := context.Background()
	for _, t := range tokens {
		b, found, err := a.store.FindCtx(ctx, t)
		if err != nil || !found {
			continue
		}
		if idx, _, err := sessionstore.ParseIndex(b); err == nil && idx.Subject != "" {
			a.store.DeleteBySubject(ctx, idx.Subject)
		}
		a.store.DeleteCtx(ctx, t)
	}
}

// wantWelcome fails tb unless the signed-in page greets name.
func wantWelcome(tb testing.TB, a *App, cookie *http.Cookie, name string) []byte {
	tb.Helper()
	resp := benchServe(a, "GET", benchBase+"/", nil, cookie)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("Welcome "+name+"!")) {
		tb.Fatalf("GET / signed in: got %d, want 200 with Welcome %s!:\n%s", resp.StatusCode, name, body)
	}
	return body
}

// BenchmarkSignedInPage is a signed-in GET / through the whole handler
// (middleware, session load from the store, template), without the network.
// It also reports the page's size and the stored session record's size.
func BenchmarkSignedInPage(b *testing.B) {
	for _, kind := range benchStores {
		b.Run(kind, func(b *testing.B) {
			a := newBenchApp(b, benchLocation(b, kind))
			cookie := benchSignIn(b, a, "Bench User", "bench@example.com")
			b.Cleanup(func() { benchForget(a, []string{cookie.Value}) })
			page := wantWelcome(b, a, cookie, "Bench User")
			record, found, err := a.store.FindCtx(context.Background(), cookie.Value)
			if err != nil || !found {
				b.Fatalf("session record: found %v, %v", found, err)
			}

			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest("GET", benchBase+"/", nil)
				r.AddCookie(cookie)
				w := httptest.NewRecorder()
				a.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("GET /: %d", w.Code)
				}
			}
			b.ReportMetric(float64(len(page)), "page-B")
			b.ReportMetric(float64(len(record)), "record-B")
		})
	}
	// What the benchmark's own request and recorder cost, to subtract.
	b.Run("harness", func(b *testing.B) {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(make([]byte, 2048)) })
		cookie := &http.Cookie{Name: "session", Value: strings.Repeat("x", 43)}
		b.ReportAllocs()
		for b.Loop() {
			r := httptest.NewRequest("GET", benchBase+"/", nil)
			r.AddCookie(cookie)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
		}
	})
}

// BenchmarkLogin is one complete sign-in against the embedded provider,
// in-process: GET /login, the provider's sign-in page, POST its form and
// GET /callback (code exchange, ID token check, session write). The
// provider's work, RS256 signing of the ID token included, is part of each
// op; a separate provider process is measured with tools/loadtest.
func BenchmarkLogin(b *testing.B) {
	for _, kind := range benchStores {
		b.Run(kind, func(b *testing.B) {
			a := newBenchApp(b, benchLocation(b, kind))
			var tokens []string // to delete from a shared Redis afterwards
			b.Cleanup(func() { benchForget(a, tokens) })
			b.ReportAllocs()
			var last *http.Cookie
			i := 0
			for b.Loop() {
				i++
				last = benchSignIn(b, a, fmt.Sprintf("User %d", i), fmt.Sprintf("user%d@example.com", i))
				if kind == "redis" {
					tokens = append(tokens, last.Value)
				}
			}
			wantWelcome(b, a, last, fmt.Sprintf("User %d", i))
		})
	}
}

// BenchmarkAnonymousLogins is a flood of GET /login from clients that
// send no cookie back, as a script would. Each op is one such request; at
// the end it reports what the flood left behind: the growth of the live
// heap (after a collection), the store's records and, for SQLite, the
// database file's size. With -benchtime=100000x it is the measurement of
// 100,000 anonymous logins in BENCHMARKS.md.
func BenchmarkAnonymousLogins(b *testing.B) {
	for _, kind := range []string{"memory", "sqlite"} {
		b.Run(kind, func(b *testing.B) {
			location := benchLocation(b, kind)
			a := newBenchApp(b, location)
			heapBefore := liveHeap()
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest("GET", benchBase+"/login?returnTo=/"+strings.Repeat("x", 1024), nil)
				w := httptest.NewRecorder()
				a.ServeHTTP(w, r)
				if w.Code != http.StatusFound {
					b.Fatalf("GET /login: %d", w.Code)
				}
			}
			b.StopTimer()
			records, err := a.store.Count(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(max(liveHeap()-heapBefore, 0))/(1<<20), "heap-growth-MiB")
			b.ReportMetric(float64(records), "records")
			if path, ok := strings.CutPrefix(location, "sqlite:"); ok {
				b.ReportMetric(float64(fileSizes(path))/(1<<20), "db-MiB")
			}
		})
	}
}

// liveHeap is the heap in use after a full collection.
func liveHeap() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}

// fileSizes is the size of the SQLite database at path with its WAL.
func fileSizes(path string) int64 {
	var n int64
	for _, p := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// TestSessionRecordSize signs in once and logs the size of what the store
// keeps for the session, read back from the SQLite file: the session record
// (read on every request) and the auxiliary records beside it, such as the
// user's tokens; and the size of the session cookie. Run it with -v to see
// the figures.
func TestSessionRecordSize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	base, _ := startApp(t, map[string]string{"SESSION_STORE": "sqlite:" + path})
	b := testclient.New(t)
	signInDev(t, b, base, "/login", "Ada Lovelace", "ada@example.com")
	u, _ := url.Parse(base)
	var cookie *http.Cookie
	for _, c := range b.Client.Jar.Cookies(u) {
		if c.Name == "session" {
			cookie = c
		}
	}
	if cookie == nil {
		t.Fatal("no session cookie after sign-in")
	}

	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The session's own record and its tokens record, which the store
	// keys by their tokens' SHA-256.
	hash := func(token string) string {
		sum := sha256.Sum256([]byte(token))
		return hex.EncodeToString(sum[:])
	}
	session := hash(cookie.Value)
	rows, err := db.Query(`SELECT token, data FROM sessions WHERE token = ?1 OR token = ?2 ORDER BY token = ?1 DESC`,
		session, sessionstore.AuxPrefix+hash(sessionstore.AuxPrefix+"tokens:"+cookie.Value))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var total, sealedTokens, claims int
	for rows.Next() {
		var token string
		var data []byte
		if err := rows.Scan(&token, &data); err != nil {
			t.Fatal(err)
		}
		_, values, err := sessionstore.Codec{}.Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		kind := "session record"
		if token != session {
			kind = "tokens record"
		}
		var keys []string
		for k, v := range values {
			keys = append(keys, k)
			rv := reflect.ValueOf(v)
			if b, ok := v.([]byte); ok && k == "login.tokens.sealed" {
				sealedTokens = len(b)
			}
			if f := fieldLen(rv, "ClaimsJSON"); f > 0 {
				claims = f
			}
		}
		slices.Sort(keys)
		t.Logf("%s: %d bytes, keys %s", kind, len(data), strings.Join(keys, " "))
		total += len(data)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if sealedTokens == 0 || claims == 0 || total < sealedTokens+claims {
		t.Fatalf("records of %d bytes in all, sealed tokens %d bytes, claims %d bytes: want the user and the sealed tokens stored", total, sealedTokens, claims)
	}
	t.Logf("in all %d bytes, of which the sealed tokens %d and the claims JSON %d", total, sealedTokens, claims)
	t.Logf("session cookie: %d bytes as name=value (%s=<%d characters>)",
		len(cookie.Name)+1+len(cookie.Value), cookie.Name, len(cookie.Value))
}

// fieldLen is the length of v's field name when v is a struct with such a
// string or byte-slice field, else 0.
func fieldLen(v reflect.Value, name string) int {
	if v.Kind() != reflect.Struct {
		return 0
	}
	f := v.FieldByName(name)
	if !f.IsValid() || (f.Kind() != reflect.String && f.Kind() != reflect.Slice) {
		return 0
	}
	return f.Len()
}
