package app

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gologin/gologin/internal/config"
	"github.com/gologin/gologin/internal/testclient"
)

// startApp serves the app on a loopback port with env as its environment
// (APP_BASE_URL and a SQLite file in a temporary folder are added unless
// env sets them) and returns its base URL. With UPSTREAM_URL in env, it is
// the gateway.
func startApp(t *testing.T, env map[string]string) (string, *App) {
	t.Helper()
	return serveApp(t, httptest.NewUnstartedServer(nil), env)
}

// serveApp is startApp on a given unstarted server, for tests that must
// know the app's URL before it starts.
func serveApp(t *testing.T, srv *httptest.Server, env map[string]string) (string, *App) {
	t.Helper()
	base := "http://" + srv.Listener.Addr().String()
	vars := map[string]string{
		"APP_BASE_URL":  base,
		"SESSION_STORE": "sqlite:" + filepath.Join(t.TempDir(), "sessions.db"),
	}
	for k, v := range env {
		vars[k] = v
	}
	load := config.Load
	if vars["UPSTREAM_URL"] != "" {
		load = config.LoadGateway
	}
	cfg, err := load(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	secrets.add(vars["OIDC_CLIENT_SECRET"], vars["AUTH0_CLIENT_SECRET"])
	srv.Config.Handler = recordSecrets(a)
	if strings.HasPrefix(vars["APP_BASE_URL"], "https://") {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(func() {
		srv.Close()
		a.Close()
	})
	return base, a
}

// testLogger logs to the test's output and to suiteLog, which TestMain
// checks for secrets. Lines logged after the test ends (by background
// work that is stopping) go to suiteLog only.
func testLogger(t testing.TB) *slog.Logger {
	w := &tWriter{t: t}
	t.Cleanup(w.done)
	return slog.New(slog.NewTextHandler(w, nil))
}

type tWriter struct {
	t     testing.TB
	mu    sync.Mutex
	ended bool
}

func (w *tWriter) Write(p []byte) (int, error) {
	suiteLog.Write(p)
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.ended {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

func (w *tWriter) done() {
	w.mu.Lock()
	w.ended = true
	w.mu.Unlock()
}

// signInDev signs b in through the development provider's page as name
// and email, and returns the page it lands on.
func signInDev(t *testing.T, b *testclient.Browser, base, path, name, email string) testclient.Page {
	t.Helper()
	p := b.Get(base + path)
	if p.Status != http.StatusOK || !strings.Contains(p.Body, "Development provider") {
		t.Fatalf("GET %s: want the development provider's sign-in page, got %d:\n%s", path, p.Status, p.Body)
	}
	return b.Submit(p.Form(t, "/authorize"), map[string]string{"name": name, "email": email})
}

func TestDevProviderEndToEnd(t *testing.T) {
	base, _ := startApp(t, nil)
	b := testclient.New(t)

	p := b.Get(base + "/")
	if !strings.Contains(p.Body, "Welcome Guest") || !strings.Contains(p.Body, `href="/login"`) {
		t.Fatalf("guest home page: want Welcome Guest and a link to /login, got:\n%s", p.Body)
	}

	p = signInDev(t, b, base, "/login", "Ada <b>Lovelace</b>", "ada@example.com")
	if p.Status != http.StatusOK || p.URL.Path != "/" {
		t.Fatalf("after sign-in: want 200 at /, got %d at %s", p.Status, p.URL)
	}
	if !strings.Contains(p.Body, "Welcome Ada &lt;b&gt;Lovelace&lt;/b&gt;!") {
		t.Fatalf("home page: want the escaped name in Welcome NAME!, got:\n%s", p.Body)
	}
	logout := p.Form(t, "/logout")
	if logout.Method != "POST" || logout.Values.Get("csrf_token") == "" {
		t.Fatalf("logout form: want POST with a csrf_token, got %+v", logout)
	}
	if !strings.Contains(p.Body, `<form method="post" action="/logout">`) {
		t.Fatalf("home page: want the exact logout form tag, got:\n%s", p.Body)
	}
	if got := p.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("signed-in page Cache-Control = %q, want no-store", got)
	}

	p = b.Get(base + "/profile")
	for _, want := range []string{"ada@example.com", "dev|", "avatar.svg", "email_verified"} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("profile page lacks %q:\n%s", want, p.Body)
		}
	}
	if strings.Contains(p.Body, "eyJ") {
		t.Errorf("profile page shows a raw token:\n%s", p.Body)
	}

	// GET /logout shows the form and changes nothing.
	p = b.Get(base + "/logout")
	if !strings.Contains(p.Body, `action="/logout"`) || !strings.Contains(b.Get(base+"/").Body, "Welcome Ada") {
		t.Fatalf("GET /logout must show the form and keep the user signed in:\n%s", p.Body)
	}

	// A POST without the token is refused and the session stays.
	p = b.PostForm(base+"/logout", url.Values{"csrf_token": {"wrong"}})
	if p.Status != http.StatusForbidden || !strings.Contains(b.Get(base+"/").Body, "Welcome Ada") {
		t.Fatalf("logout with a wrong token: want 403 and still signed in, got %d", p.Status)
	}

	p = b.Submit(logout, nil)
	if p.Status != http.StatusOK || p.URL.Path != "/" || !strings.Contains(p.Body, "Welcome Guest") {
		t.Fatalf("after logout: want Welcome Guest at /, got %d at %s:\n%s", p.Status, p.URL, p.Body)
	}
	// The old form no longer works: the session it belonged to is gone.
	if p := b.Submit(logout, nil); p.Status != http.StatusForbidden {
		t.Errorf("replayed logout: got %d, want 403", p.Status)
	}
}

func TestDistinctEmailsAreDistinctUsers(t *testing.T) {
	base, _ := startApp(t, map[string]string{"SESSION_STORE": "memory"})
	subject := func(email string) string {
		b := testclient.New(t)
		signInDev(t, b, base, "/login", "Same Name", email)
		body := b.Get(base + "/profile").Body
		i := strings.Index(body, "dev|")
		if i < 0 {
			t.Fatalf("profile lacks a dev| subject:\n%s", body)
		}
		return body[i : i+28]
	}
	a1, a2, b1 := subject("a@example.com"), subject("A@example.com"), subject("b@example.com")
	if a1 != a2 || a1 == b1 {
		t.Fatalf("subjects: a=%s A=%s b=%s; want the same email to give the same sub and another email another", a1, a2, b1)
	}
}

func TestProfileRequiresSignIn(t *testing.T) {
	base, _ := startApp(t, map[string]string{"SESSION_STORE": "memory"})
	b := testclient.New(t)
	p := b.NoRedirects().Get(base + "/profile")
	if p.Status != http.StatusFound || p.Header.Get("Location") != "/login?returnTo=%2Fprofile" {
		t.Fatalf("guest /profile: got %d to %q, want 302 to /login?returnTo=/profile", p.Status, p.Header.Get("Location"))
	}
	p = signInDev(t, b, base, "/profile", "Grace Hopper", "grace@example.com")
	if p.URL.Path != "/profile" || !strings.Contains(p.Body, "grace@example.com") {
		t.Fatalf("after sign-in from /profile: want the profile page, got %s:\n%s", p.URL, p.Body)
	}
}

func TestLoginsInSeveralTabsEachComplete(t *testing.T) {
	base, _ := startApp(t, nil)
	b := testclient.New(t)
	// Open three tabs' sign-in pages before finishing any of them.
	var forms []testclient.Form
	for _, path := range []string{"/login?returnTo=/profile", "/login", "/login?returnTo=/logout"} {
		p := b.Get(base + path)
		forms = append(forms, p.Form(t, "/authorize"))
	}
	for i, want := range []string{"/profile", "/", "/logout"} {
		p := b.Submit(forms[i], map[string]string{"name": "Tab User", "email": "tabs@example.com"})
		if p.Status != http.StatusOK || p.URL.Path != want {
			t.Fatalf("tab %d: got %d at %s, want 200 at %s:\n%s", i, p.Status, p.URL, want, p.Body)
		}
	}
}

func TestLoginRedirect(t *testing.T) {
	base, _ := startApp(t, map[string]string{"SESSION_STORE": "memory", "OIDC_SCOPES": "openid email"})
	b := testclient.New(t).NoRedirects()
	p := b.Get(base + "/login?returnTo=https://evil.example/")
	loc, err := url.Parse(p.Header.Get("Location"))
	if p.Status != http.StatusFound || err != nil {
		t.Fatalf("GET /login: got %d to %q", p.Status, p.Header.Get("Location"))
	}
	q := loc.Query()
	for k, want := range map[string]string{
		"response_type":         "code",
		"client_id":             "webapp",
		"redirect_uri":          base + "/callback",
		"scope":                 "openid email",
		"code_challenge_method": "S256",
	} {
		if got := q.Get(k); got != want {
			t.Errorf("authorization request %s = %q, want %q", k, got, want)
		}
	}
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if len(q.Get(k)) < 22 {
			t.Errorf("authorization request %s = %q, want a random value", k, q.Get(k))
		}
	}
	if loc.Path != "/devidp/authorize" {
		t.Errorf("authorization endpoint = %s, want the development provider's", loc)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	base, _ := startApp(t, nil)
	b := testclient.New(t)
	if p := b.Get(base + "/healthz"); p.Status != http.StatusOK {
		t.Errorf("/healthz: %d", p.Status)
	}
	p := b.Get(base + "/readyz")
	if p.Status != http.StatusOK || !strings.Contains(p.Body, `"store":{"kind":"sqlite","state":"ok"}`) {
		t.Errorf("/readyz: %d %s", p.Status, p.Body)
	}
}

// TestDevProviderKeyOnFirstStart: on a first start the development
// provider's key is generated while the app already answers; sign-in
// waits for it, the key is kept beside the database, and a damaged key
// file stops startup with an error naming it.
func TestDevProviderKeyOnFirstStart(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"SESSION_STORE": "sqlite:" + filepath.Join(dir, "sessions.db")}
	base, _ := startApp(t, env)
	b := testclient.New(t)
	if p := b.Get(base + "/healthz"); p.Status != http.StatusOK {
		t.Fatalf("/healthz on a first start: %d", p.Status)
	}
	if p := signInDev(t, b, base, "/login", "Ada", "ada@example.com"); !strings.Contains(p.Body, "Welcome Ada!") {
		t.Fatalf("sign-in on a first start: got %d:\n%s", p.Status, p.Body)
	}
	keyFile := filepath.Join(dir, "devidp-key.pem")
	if _, err := os.Stat(keyFile); err != nil {
		t.Fatalf("the key was not kept: %v", err)
	}

	if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(func(k string) string {
		return map[string]string{"APP_BASE_URL": "http://127.0.0.1:1", "SESSION_STORE": env["SESSION_STORE"]}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	if a, err := New(cfg, testLogger(t)); err == nil || !strings.Contains(err.Error(), keyFile) {
		if a != nil {
			a.Close()
		}
		t.Fatalf("New with a damaged key file: err = %v, want one naming %s", err, keyFile)
	}
}
