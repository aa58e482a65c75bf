package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gologin/gologin/devidp"
	"github.com/gologin/gologin/internal/app"
	"github.com/gologin/gologin/internal/config"
	"github.com/gologin/gologin/login"
)

// startApp serves the web app with the memory store and the extra
// environment env, and returns its base URL.
func startApp(t *testing.T, env map[string]string) string {
	t.Helper()
	return serveApp(t, httptest.NewUnstartedServer(nil), env)
}

// serveApp is startApp on a given unstarted server.
func serveApp(t *testing.T, srv *httptest.Server, env map[string]string) string {
	t.Helper()
	base := "http://" + srv.Listener.Addr().String()
	vars := map[string]string{"APP_BASE_URL": base, "SESSION_STORE": "memory"}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := config.Load(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = a
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		a.Close()
	})
	return base
}

// runJSON runs the load tool with args and -json and decodes its report.
func runJSON(t *testing.T, args ...string) report {
	t.Helper()
	var out bytes.Buffer
	if err := run(context.Background(), append(args, "-json"), &out); err != nil {
		t.Fatalf("run %q: %v\n%s", args, err, out.String())
	}
	var r report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	return r
}

func checkPhase(t *testing.T, r *result, phase string, count int) {
	t.Helper()
	if r == nil || r.Phase != phase || r.Count != count || r.Failures != 0 {
		t.Fatalf("%s phase = %+v, want %d attempts and no failure", phase, r, count)
	}
	if !(r.P50 <= r.P90 && r.P90 <= r.P99 && r.P99 <= r.Max && r.Max > 0) {
		t.Errorf("%s phase percentiles out of order: %+v", phase, r)
	}
}

func TestSignInAndViewPagesWithTheEmbeddedProvider(t *testing.T) {
	base := startApp(t, nil)
	// The app runs in this process: its PID is the server's.
	pid := strconv.Itoa(os.Getpid())
	r := runJSON(t, "-app", base, "-users", "5", "-concurrency", "3", "-requests", "40", "-duration", "0", "-pids", pid)
	checkPhase(t, r.Login, "login", 5)
	checkPhase(t, r.Pages, "pages", 40)
	for _, p := range []*result{r.Login, r.Pages} {
		if _, ok := p.ServerCPU[pid]; !ok || p.ClientCPU < 0 {
			t.Errorf("%s phase: want CPU figures for pid %s, got %v", p.Phase, pid, p.ServerCPU)
		}
	}
}

func TestSignInWithAProviderOfItsOwn(t *testing.T) {
	// The provider is another server, as cmd/devidp is: its form's action
	// is an absolute URL on another host and port.
	appSrv := httptest.NewUnstartedServer(nil)
	issuer := startProvider(t, appSrv)
	base := serveApp(t, appSrv, map[string]string{
		"OIDC_ISSUER": issuer, "OIDC_CLIENT_ID": "app", "OIDC_CLIENT_SECRET": "load-secret",
	})
	r := runJSON(t, "-app", base, "-users", "3", "-concurrency", "2", "-requests", "9", "-duration", "0")
	checkPhase(t, r.Login, "login", 3)
	checkPhase(t, r.Pages, "pages", 9)
}

// startProvider serves a development provider whose client app may
// redirect to the callbacks of the given servers, and returns its issuer.
func startProvider(t *testing.T, redirectTo ...*httptest.Server) string {
	t.Helper()
	idp := httptest.NewUnstartedServer(nil)
	issuer := "http://" + idp.Listener.Addr().String()
	key, err := devidp.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	c := devidp.Client{ID: "app", Secret: "load-secret"}
	for _, srv := range redirectTo {
		base := "http://" + srv.Listener.Addr().String()
		c.RedirectURIs = append(c.RedirectURIs, base+"/callback")
		c.PostLogoutRedirectURIs = append(c.PostLogoutRedirectURIs, base+"/")
	}
	p, err := devidp.New(devidp.Config{Issuer: issuer, Key: key, Clients: []devidp.Client{c}})
	if err != nil {
		t.Fatal(err)
	}
	idp.Config.Handler = p
	idp.Start()
	t.Cleanup(idp.Close)
	return issuer
}

// The login baseline signs users in through the provider's form like the
// app, and refuses a callback of no login it started.
func TestLoginBaseline(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	issuer := startProvider(t, srv)
	if _, err := newLoginBaseline(context.Background(), issuer, "app", base, 1000); err == nil {
		t.Error("a -client without a secret was accepted")
	}
	h, err := newLoginBaseline(context.Background(), issuer, "app:load-secret", base, 1000)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = h
	srv.Start()
	t.Cleanup(srv.Close)

	r := runJSON(t, "-app", base, "-users", "4", "-concurrency", "2", "-requests", "8", "-duration", "0")
	checkPhase(t, r.Login, "login", 4)
	checkPhase(t, r.Pages, "pages", 8)
	// A browser with a login under way, at a callback of another login;
	// then browsers with none.
	jar, _ := cookiejar.New(nil)
	started := &http.Client{Jar: jar, CheckRedirect: noRedirects}
	for _, step := range []struct {
		client     *http.Client
		path       string
		wantStatus int
	}{
		{started, "/login", http.StatusFound},
		{started, "/callback?code=c&state=another", http.StatusBadRequest},
		{http.DefaultClient, "/callback?code=c&state=s", http.StatusBadRequest},
		{http.DefaultClient, "/callback", http.StatusBadRequest},
	} {
		resp, err := step.client.Get(base + step.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != step.wantStatus {
			t.Errorf("GET %s: %d, want %d", step.path, resp.StatusCode, step.wantStatus)
		}
	}
}

func TestBaselineServesPagesOfTheGivenSize(t *testing.T) {
	srv := httptest.NewServer(baselineHandler(2345))
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/anything")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(body) != 2345 || !signedInPage(body) {
		t.Fatalf("baseline page: status %d, %d bytes; want 200, 2345 bytes with a logout form and CSRF token", resp.StatusCode, len(body))
	}
	r := runJSON(t, "-app", srv.URL, "-users", "0", "-concurrency", "4", "-requests", "20", "-duration", "0")
	if r.Login != nil {
		t.Errorf("-users 0 ran a login phase: %+v", r.Login)
	}
	checkPhase(t, r.Pages, "pages", 20)
}

func TestSignInOnly(t *testing.T) {
	base := startApp(t, nil)
	r := runJSON(t, "-app", base, "-users", "4", "-concurrency", "2", "-duration", "0", "-requests", "0")
	checkPhase(t, r.Login, "login", 4)
	if r.Pages != nil {
		t.Errorf("-duration 0 -requests 0 ran a page phase: %+v", r.Pages)
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-users", "0", "-duration", "0"},
		{"-startup", "2"},
		{"-concurrency", "0"},
		{"-serve-baseline", "-size", "10"},
		{"-provider", "http://127.0.0.1:9000", "-client", "app:secret"}, // without -serve-baseline
		{"-serve-baseline", "-provider", "http://127.0.0.1:9000"},       // without -client
		{"-serve-baseline", "-client", "app:secret"},                    // without -provider
		{"-serve-baseline", "-addr", ":3101", "-provider", "http://127.0.0.1:9000", "-client", "app:secret"},
		{"extra"},
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("parseFlags(%q): want an error", args)
		}
	}
}

// fakeApp serves the routes loadtest uses, each answering as a working
// app (and provider) would unless overridden in handlers by pattern.
func fakeApp(t *testing.T, handlers map[string]http.HandlerFunc) string {
	t.Helper()
	routes := map[string]http.HandlerFunc{
		"GET /login": func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `<form method="post" action="/authorize"><input name="email" value=""></form>`)
		},
		"POST /authorize": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/callback?code=x", http.StatusFound)
		},
		"GET /callback": func(w http.ResponseWriter, r *http.Request) {
			http.SetCookie(w, &http.Cookie{Name: "attempt", Path: "/", MaxAge: -1})
			http.SetCookie(w, &http.Cookie{Name: "s", Value: "1", Path: "/"})
			http.Redirect(w, r, "/", http.StatusSeeOther)
		},
		"GET /profile": func(w http.ResponseWriter, r *http.Request) {
			if _, err := r.Cookie("s"); err != nil {
				http.Redirect(w, r, "/login?returnTo=%2Fprofile", http.StatusFound)
			}
		},
		"GET /{$}": func(w http.ResponseWriter, r *http.Request) {
			if _, err := r.Cookie("s"); err == nil {
				io.WriteString(w, `<form method="post" action="/logout"><input name="csrf_token" value="t"></form>`)
			}
		},
	}
	maps.Copy(routes, handlers)
	mux := http.NewServeMux()
	for pattern, h := range routes {
		mux.HandleFunc(pattern, h)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// runReport runs the load tool with args and -json, and returns its report
// and error.
func runReport(t *testing.T, args ...string) (report, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), append(args, "-json"), &out)
	var r report
	if jerr := json.Unmarshal(out.Bytes(), &r); jerr != nil {
		t.Fatalf("output is not JSON: %v\n%s", jerr, out.String())
	}
	return r, err
}

// A sign-in that does not leave the user signed in is a failure, not a
// login, whatever the pages say.
func TestLostSessionsAreFailedLogins(t *testing.T) {
	// The fake app as it is signs users in.
	r := runJSON(t, "-app", fakeApp(t, nil), "-users", "2", "-concurrency", "2", "-requests", "4", "-duration", "0")
	checkPhase(t, r.Login, "login", 2)
	checkPhase(t, r.Pages, "pages", 4)

	for _, tt := range []struct {
		name     string
		handlers map[string]http.HandlerFunc
		want     string // the failures' error
	}{
		{"callback sets no cookie", map[string]http.HandlerFunc{
			"GET /callback": func(w http.ResponseWriter, r *http.Request) {
				http.SetCookie(w, &http.Cookie{Name: "attempt", Path: "/", MaxAge: -1})
				http.Redirect(w, r, "/", http.StatusSeeOther)
			},
		}, "callback: 303 without a session cookie"},
		{"callback answers 200", map[string]http.HandlerFunc{
			"GET /callback": func(w http.ResponseWriter, r *http.Request) {
				http.SetCookie(w, &http.Cookie{Name: "s", Value: "1", Path: "/"})
			},
		}, "callback: status 200, not 303"},
		{"callback redirects elsewhere", map[string]http.HandlerFunc{
			"GET /callback": func(w http.ResponseWriter, r *http.Request) {
				http.SetCookie(w, &http.Cookie{Name: "s", Value: "1", Path: "/"})
				http.Redirect(w, r, "/login", http.StatusSeeOther)
			},
		}, "callback: 303 elsewhere than the app's /"},
		{"the session is not kept", map[string]http.HandlerFunc{
			"GET /profile": func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/login?returnTo=%2Fprofile", http.StatusFound)
			},
		}, "after sign-in: /profile redirects to /login: not signed in"},
		{"profile fails", map[string]http.HandlerFunc{
			"GET /profile": func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "down", http.StatusServiceUnavailable)
			},
		}, "after sign-in: /profile answers 503, not 200"},
		{"no sign-in form", map[string]http.HandlerFunc{
			"GET /login": func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, `<form method="post" action="/subscribe"><input name="email" value=""></form>`)
			},
		}, "no sign-in form posting to /authorize with an email field at " + "URL/login"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			base := fakeApp(t, tt.handlers)
			r, err := runReport(t, "-app", base, "-users", "3", "-concurrency", "2", "-duration", "0", "-requests", "0")
			if err == nil {
				t.Fatal("run succeeded with no user signed in")
			}
			want := strings.ReplaceAll(tt.want, "URL", base)
			if r.Login == nil || r.Login.Count != 3 || r.Login.Failures != 3 || r.Login.Errors[want] != 3 {
				t.Fatalf("login phase = %+v, want 3 attempts, all failed with %q", r.Login, want)
			}
		})
	}
}

// A page view without the signs of a signed-in page fails, even with 200.
func TestGuestPagesAreFailedPageViews(t *testing.T) {
	base := fakeApp(t, map[string]http.HandlerFunc{
		"GET /{$}": func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `<p><a href="/login">log in</a></p>`)
		},
	})
	r, err := runReport(t, "-app", base, "-users", "2", "-concurrency", "2", "-requests", "6", "-duration", "0")
	if err != nil {
		t.Fatal(err)
	}
	checkPhase(t, r.Login, "login", 2)
	if r.Pages == nil || r.Pages.Count != 6 || r.Pages.Failures != 6 {
		t.Fatalf("pages phase = %+v, want 6 attempts, all failed", r.Pages)
	}
	// Without users, the same page is a successful page view.
	r = runJSON(t, "-app", base, "-users", "0", "-concurrency", "2", "-requests", "6", "-duration", "0")
	checkPhase(t, r.Pages, "pages", 6)
}

// The signals loadtest reads tell the app's guests from its signed-in
// users.
func TestSignedInSignalsOfTheApp(t *testing.T) {
	if csrfField != login.CSRFField {
		t.Fatalf("csrfField = %q, the app's forms use %q", csrfField, login.CSRFField)
	}
	base := startApp(t, nil)
	ctx := context.Background()
	c := newBrowser(http.DefaultTransport, 10*time.Second)
	check := func(wantSignedIn bool) {
		t.Helper()
		a, err := get(ctx, c, base+"/")
		if err != nil || a.status != http.StatusOK {
			t.Fatalf("GET /: %d, %v", a.status, err)
		}
		if got := signedInPage(a.body); got != wantSignedIn {
			t.Errorf("signedInPage(GET /) = %v, want %v:\n%s", got, wantSignedIn, a.body)
		}
		err = profileOK(ctx, c, base)
		if wantSignedIn && err != nil {
			t.Errorf("signed in: %v", err)
		}
		if !wantSignedIn && (err == nil || !strings.Contains(err.Error(), "redirects to /login")) {
			t.Errorf("a guest: profileOK = %v, want a redirect to /login", err)
		}
	}
	check(false)
	if err := signIn(ctx, c, base, 1); err != nil {
		t.Fatal(err)
	}
	check(true)
}

func TestSignedInPage(t *testing.T) {
	for _, tt := range []struct {
		body string
		want bool
	}{
		{`<form method="post" action="/logout">
<input type="hidden" name="csrf_token" value="abc">
<button type="submit">Log out</button>
</form>`, true},
		{`<form action="/search"><input name="q" value=""></form><form method="post" action="/logout"><input type="hidden" name="csrf_token" value="abc"></form>`, true},
		{`<form method="post" action="/logout"><input type="hidden" name="csrf_token" value=""></form>`, false},
		{`<form method="post" action="/logout/all"><input type="hidden" name="csrf_token" value="abc"></form>`, false},
		{`<form method="post" action="/logout"><input type="hidden" name="other" value="abc"></form>`, false},
		{`<form method="post" action="/logout"><input type="hidden" name="csrf_token" value="abc">`, false}, // unclosed
		{`<a href="/login">Log in</a>`, false},
	} {
		if got := signedInPage([]byte(tt.body)); got != tt.want {
			t.Errorf("signedInPage(%s) = %v, want %v", tt.body, got, tt.want)
		}
	}
}
