package app

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gologin/gologin/internal/testclient"
	"github.com/gologin/gologin/login"
)

func TestSecurityHeadersOnEveryPage(t *testing.T) {
	base, _ := startApp(t, map[string]string{"SESSION_STORE": "memory"})
	b := testclient.New(t)
	signInDev(t, b, base, "/login", "Ada", "ada@example.com")
	for _, path := range []string{"/", "/profile", "/logout", "/no-such-page", "/callback?state=x&code=y"} {
		p := b.Get(base + path)
		h := p.Header
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: Content-Security-Policy %q lacks %s", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "script-src") {
			t.Errorf("%s: Content-Security-Policy %q allows scripts", path, csp)
		}
		for k, want := range map[string]string{
			"X-Frame-Options":        "DENY",
			"X-Content-Type-Options": "nosniff",
			"Referrer-Policy":        "no-referrer",
			"Cache-Control":          "no-store",
		} {
			if got := h.Get(k); got != want {
				t.Errorf("%s: %s = %q, want %q", path, k, got, want)
			}
		}
		if strings.Contains(p.Body, "<script") || strings.Contains(p.Body, " style=") {
			t.Errorf("%s: page has inline script or style", path)
		}
	}
}

func TestSessionCookie(t *testing.T) {
	tests := []struct {
		base       string
		name       string
		wantSecure bool
	}{
		{"", "session", false},
		{"https://localhost:8443", "__Host-session", true},
	}
	for _, tt := range tests {
		env := map[string]string{"SESSION_STORE": "memory"}
		srv := httptest.NewUnstartedServer(nil)
		if tt.base != "" {
			env["APP_BASE_URL"] = tt.base
		}
		base, _ := serveApp(t, srv, env)
		b := testclient.New(t)
		if tt.wantSecure {
			// The browser reaches the base URL's host at the test server.
			addr := srv.Listener.Addr().String()
			b.Client.Transport = &http.Transport{
				TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
				DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, network, addr)
				},
			}
			base = tt.base
		}
		login := b.NoRedirects().Get(base + "/login")
		if c := login.Header.Values("Set-Cookie"); len(c) != 1 || strings.Contains(c[0], tt.name+"=") {
			t.Errorf("%s: /login set %q; want only the login attempt's cookie, no session", tt.name, c)
		}
		var session *http.Cookie
		b.Client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			for _, h := range req.Response.Header.Values("Set-Cookie") {
				if c, err := http.ParseSetCookie(h); err == nil && c.Name == tt.name {
					session = c
				}
			}
			return nil
		}
		p := signInDev(t, b, base, "/login", "Ada", "ada@example.com")
		if !strings.Contains(p.Body, "Welcome Ada!") {
			t.Fatalf("%s: not signed in:\n%s", tt.name, p.Body)
		}
		if session == nil {
			t.Fatalf("%s: sign-in set no %s cookie", tt.name, tt.name)
		}
		c := session
		if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure != tt.wantSecure || c.Path != "/" || c.Domain != "" {
			t.Errorf("cookie %+v: want %s, HttpOnly, SameSite=Lax, Secure=%v, Path=/, no Domain", c, tt.name, tt.wantSecure)
		}
		// 32 random bytes from crypto/rand, base64: 256 bits.
		if len(c.Value) < 43 {
			t.Errorf("session ID %d chars, want at least 43 (256 bits)", len(c.Value))
		}
		if n := len(c.Name) + 1 + len(c.Value); n > 64 {
			t.Errorf("cookie name=value is %d bytes, want at most 64", n)
		}
	}
}

func TestSessionIDChangesAtLoginAndLogout(t *testing.T) {
	base, _ := startApp(t, map[string]string{"SESSION_STORE": "memory"})
	b := testclient.New(t)
	u, _ := url.Parse(base)
	sessionID := func() string {
		for _, c := range b.Client.Jar.Cookies(u) {
			if c.Name == "session" {
				return c.Value
			}
		}
		return ""
	}
	// An ID planted by an attacker before sign-in (session fixation).
	before := "planted-by-an-attacker-0123456789abcdefghijkl"
	b.Client.Jar.SetCookies(u, []*http.Cookie{{Name: "session", Value: before}})
	p := signInDev(t, b, base, "/login", "Ada", "ada@example.com")
	during := sessionID()
	b.Submit(p.Form(t, "/logout"), nil)
	signInDev(t, b, base, "/login", "Ada", "ada@example.com")
	after := sessionID()
	if during == "" || after == "" || before == during || during == after {
		t.Fatalf("session IDs planted, signed in, signed in again after logout: %.8s… %.8s… %.8s…; want three different IDs", before, during, after)
	}
	// The planted ID signs nobody in.
	fixation := testclient.New(t)
	fixation.Client.Jar.SetCookies(u, []*http.Cookie{{Name: "session", Value: before}})
	if p := fixation.Get(base + "/"); !strings.Contains(p.Body, "Welcome Guest") {
		t.Fatalf("the planted session ID signs someone in:\n%s", p.Body)
	}
}

func TestCrossOriginLogoutRefused(t *testing.T) {
	base, _ := startApp(t, map[string]string{"SESSION_STORE": "memory"})
	b := testclient.New(t)
	p := signInDev(t, b, base, "/login", "Ada", "ada@example.com")
	form := p.Form(t, "/logout")
	for name, header := range map[string][2]string{
		"Sec-Fetch-Site cross-site": {"Sec-Fetch-Site", "cross-site"},
		"Origin of another site":    {"Origin", "https://evil.example"},
	} {
		req, _ := http.NewRequest("POST", form.Action, strings.NewReader(form.Values.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set(header[0], header[1])
		resp, err := b.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: logout answered %d, want 403", name, resp.StatusCode)
		}
		if p := b.Get(base + "/"); !strings.Contains(p.Body, "Welcome Ada!") {
			t.Errorf("%s: the user was signed out", name)
		}
	}
}

func TestPendingLoginsAreCapped(t *testing.T) {
	base, _ := startApp(t, map[string]string{"SESSION_STORE": "memory"})
	b := testclient.New(t)
	var forms []testclient.Form
	for range 12 {
		forms = append(forms, b.Get(base+"/login").Form(t, "/authorize"))
	}
	// The oldest attempts were dropped; the newest still complete.
	if p := b.Submit(forms[0], nil); p.Status != http.StatusBadRequest {
		t.Errorf("oldest of 12 pending logins: got %d, want 400", p.Status)
	}
	if p := b.Submit(forms[11], nil); p.Status != http.StatusOK || !strings.Contains(p.Body, "Welcome Demo User!") {
		t.Errorf("newest of 12 pending logins: got %d, want signed in", p.Status)
	}
}

// TestAnonymousLoginsWriteNothing is a flood of GET /login from a client
// that keeps no cookies: it must leave no record in the store.
func TestAnonymousLoginsWriteNothing(t *testing.T) {
	for _, store := range []string{"memory", "sqlite"} {
		env := map[string]string{}
		if store == "memory" {
			env["SESSION_STORE"] = "memory"
		}
		base, a := startApp(t, env)
		c := testclient.New(t).NoRedirects()
		c.Client.Jar = nil
		for i := range 300 {
			if p := c.Get(base + "/login?returnTo=/page/" + strconv.Itoa(i)); p.Status != http.StatusFound {
				t.Fatalf("%s: anonymous GET /login: %d", store, p.Status)
			}
		}
		if n, err := a.store.Count(context.Background()); err != nil || n != 0 {
			t.Errorf("%s: 300 anonymous logins left %d session records (%v), want none", store, n, err)
		}
	}
}

func TestProviderErrorTextIsEscaped(t *testing.T) {
	base, _ := startApp(t, map[string]string{"SESSION_STORE": "memory"})
	b := testclient.New(t)
	loc, _ := url.Parse(b.NoRedirects().Get(base + "/login").Header.Get("Location"))
	p := b.Get(base + "/callback?" + url.Values{
		"state":             {loc.Query().Get("state")},
		"error":             {"<b>access_denied</b>"},
		"error_description": {`<script>alert("x")</script>`},
		"iss":               {base + "/devidp"},
	}.Encode())
	if p.Status != http.StatusBadRequest || strings.Contains(p.Body, "<script>") || strings.Contains(p.Body, "<b>") ||
		!strings.Contains(p.Body, "&lt;script&gt;") {
		t.Fatalf("provider error page: want 400 with the provider's text escaped, got %d:\n%s", p.Status, p.Body)
	}
}

func TestErrorReferenceMatchesLogLine(t *testing.T) {
	base, _ := startApp(t, map[string]string{"SESSION_STORE": "memory"})
	p := testclient.New(t).Get(base + "/callback?code=x")
	ref := regexp.MustCompile(`reference <code>([A-Za-z0-9._-]+)</code>`).FindStringSubmatch(p.Body)
	if ref == nil {
		t.Fatalf("error page without a reference:\n%s", p.Body)
	}
	if !strings.Contains(suiteLog.String(), "request_id="+ref[1]) {
		t.Fatalf("no log line carries the error page's reference %s", ref[1])
	}
	// A client's well-formed request ID becomes the reference.
	req, _ := http.NewRequest("GET", base+"/callback?code=x", nil)
	req.Header.Set("X-Request-Id", "client-chosen.ID_1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Request-Id"); got != "client-chosen.ID_1" {
		t.Errorf("X-Request-Id = %q, want the client's", got)
	}
}

func TestHostileRequestsGetErrorsNotCrashes(t *testing.T) {
	base, _ := startApp(t, map[string]string{"SESSION_STORE": "memory"})
	b := testclient.New(t)
	huge := strings.Repeat("A", 1<<20)
	for _, tc := range []struct {
		name   string
		req    func() *http.Request
		status int
	}{
		{"huge logout body", func() *http.Request {
			r, _ := http.NewRequest("POST", base+"/logout", strings.NewReader("csrf_token="+huge))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}, http.StatusForbidden},
		{"garbage session cookie", func() *http.Request {
			r, _ := http.NewRequest("GET", base+"/", nil)
			r.Header.Set("Cookie", "session="+strings.Repeat("%zz", 1000))
			return r
		}, http.StatusOK},
		{"long state", func() *http.Request {
			r, _ := http.NewRequest("GET", base+"/callback?code=x&state="+strings.Repeat("s", 30000), nil)
			return r
		}, http.StatusBadRequest},
		{"returnTo to another site", func() *http.Request {
			r, _ := http.NewRequest("GET", base+"/login?returnTo=//evil.example", nil)
			return r
		}, http.StatusOK},
	} {
		resp, err := b.Client.Do(tc.req())
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: got %d, want %d", tc.name, resp.StatusCode, tc.status)
		}
	}
	if p := b.Get(base + "/healthz"); p.Status != http.StatusOK {
		t.Fatalf("the app stopped serving")
	}
}

func TestTokenEndpointAuthenticationFollowsDiscovery(t *testing.T) {
	var sawPost, sawBasic bool
	base, _ := startFaultyProvider(t, nil, func(f *faultyProvider) {
		f.set(nil, nil, map[string]http.HandlerFunc{
			"/.well-known/openid-configuration": func(w http.ResponseWriter, r *http.Request) {
				rec := httptest.NewRecorder()
				f.idp.ServeHTTP(rec, r)
				body := strings.Replace(rec.Body.String(), `"client_secret_basic",`, "", 1)
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(body))
			},
			"/token": func(w http.ResponseWriter, r *http.Request) {
				_, _, sawBasic = r.BasicAuth()
				r.ParseForm()
				sawPost = r.PostForm.Get("client_secret") != ""
				f.idp.ServeHTTP(w, r)
			},
		})
	})
	p := signIn(t, testclient.New(t), base, "post@example.com", nil)
	if !strings.Contains(p.Body, "Welcome User post@example.com!") || !sawPost || sawBasic {
		t.Fatalf("provider advertising only client_secret_post: signed in=%v, post=%v, basic=%v",
			strings.Contains(p.Body, "Welcome"), sawPost, sawBasic)
	}
}

func TestPanicBecomesErrorPage(t *testing.T) {
	_, a := startApp(t, map[string]string{"SESSION_STORE": "memory"})
	h := a.recoverPanics(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), "Something went wrong") ||
		strings.Contains(rec.Body.String(), "goroutine") {
		t.Fatalf("a panicking handler: got %d:\n%s", rec.Code, rec.Body.String())
	}
}

// TestFormsCarryTheCSRFField: the templates write the CSRF field's name
// literally (it is the same on every page); it must be the one the login
// package checks.
func TestFormsCarryTheCSRFField(t *testing.T) {
	for _, name := range []string{"layout", "profile"} {
		b, err := templateFS.ReadFile("templates/" + name + ".html")
		if err != nil {
			t.Fatal(err)
		}
		if want := `<input type="hidden" name="` + login.CSRFField + `" value="{{.CSRFToken}}">`; !strings.Contains(string(b), want) {
			t.Errorf("templates/%s.html has no %s", name, want)
		}
	}
}

// reaching is a transport that connects to addr whatever host the URL
// names, trusting any certificate: a browser for which the base URL's
// host resolves to the test server.
func reaching(addr string) *http.Transport {
	return &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
}

// TestHSTSOnlyOverHTTPS: with an https APP_BASE_URL every response, pages,
// redirects, probes, files and the development provider's, tells the
// browser to use https only; with http none does.
func TestHSTSOnlyOverHTTPS(t *testing.T) {
	for _, base := range []string{"https://localhost:8443", ""} {
		env := map[string]string{"SESSION_STORE": "memory"}
		if base != "" {
			env["APP_BASE_URL"] = base
		}
		srv := httptest.NewUnstartedServer(nil)
		served, _ := serveApp(t, srv, env)
		if base == "" {
			base = served
		}
		b := testclient.New(t).NoRedirects()
		b.Client.Transport = reaching(srv.Listener.Addr().String())
		want := ""
		if strings.HasPrefix(base, "https:") {
			want = "max-age=63072000; includeSubDomains"
		}
		for _, path := range []string{"/", "/login", "/profile", "/no-such-page", "/healthz", "/readyz", "/static/style.css",
			"/devidp/.well-known/openid-configuration"} {
			if got := b.Get(base + path).Header.Get("Strict-Transport-Security"); got != want {
				t.Errorf("%s%s: Strict-Transport-Security %q, want %q", base, path, got, want)
			}
		}
	}
}

// TestNoDirectoryListingUnderStatic: /static/ and other directory paths
// get the app's not-found page, not a list of files; files still serve.
func TestNoDirectoryListingUnderStatic(t *testing.T) {
	base, _ := startApp(t, map[string]string{"SESSION_STORE": "memory"})
	b := testclient.New(t)
	for _, path := range []string{"/static/", "/static", "/static/./", "/static/no-such-file.css", "/static/style.css/x"} {
		p := b.Get(base + path)
		if p.Status != http.StatusNotFound || !strings.Contains(p.Body, "Page not found") || strings.Contains(p.Body, `<a href="style.css">`) {
			t.Errorf("GET %s: %d, want the app's 404 page and no listing:\n%s", path, p.Status, p.Body)
		}
	}
	p := b.Get(base + "/static/style.css")
	if p.Status != http.StatusOK || !strings.HasPrefix(p.Header.Get("Content-Type"), "text/css") || p.Body == "" {
		t.Errorf("GET /static/style.css: %d %s, want the style sheet", p.Status, p.Header.Get("Content-Type"))
	}
}

// TestRedirectsAreNotCached: the callback's redirect, which sets the
// session, and a guest's redirect to sign in, which depends on having no
// session, must not be replayed from a cache.
func TestRedirectsAreNotCached(t *testing.T) {
	base, _ := startApp(t, map[string]string{"SESSION_STORE": "memory"})
	b := testclient.New(t)
	noFollow := b.NoRedirects()

	p := noFollow.Get(base + "/profile")
	if p.Status != http.StatusFound || p.Header.Get("Location") != "/login?returnTo=%2Fprofile" {
		t.Fatalf("guest /profile: %d to %q, want 302 to /login?returnTo=%%2Fprofile", p.Status, p.Header.Get("Location"))
	}
	if got := p.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("guest /profile redirect: Cache-Control %q, want no-store", got)
	}

	p = noFollow.Submit(b.Get(base+"/login").Form(t, "/authorize"), nil)
	callback, err := p.URL.Parse(p.Header.Get("Location"))
	if err != nil || callback.Path != "/callback" {
		t.Fatalf("provider's answer: %d to %q, want a redirect to /callback", p.Status, p.Header.Get("Location"))
	}
	p = noFollow.Get(callback.String())
	if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/" {
		t.Fatalf("GET /callback: %d to %q, want 303 to /", p.Status, p.Header.Get("Location"))
	}
	if got := p.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("callback redirect: Cache-Control %q, want no-store", got)
	}
}

// TestDevProviderAnswersOnlyDirectRequests: while the development provider
// runs, a request under another host name or through a proxy gets 421
// and an error page saying where to go, and a warning in the log; the
// health probes answer whatever the Host.
func TestDevProviderAnswersOnlyDirectRequests(t *testing.T) {
	env := func(base string) map[string]string {
		return map[string]string{"SESSION_STORE": "memory", "APP_BASE_URL": base}
	}
	srv := httptest.NewUnstartedServer(nil)
	addr := srv.Listener.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	named := "http://localhost:" + port
	apps := map[string]string{} // APP_BASE_URL to the URL the app is served at
	apps[named], _ = serveApp(t, srv, env(named))
	for _, base := range []string{"http://localhost", "http://localhost:80"} {
		apps[base], _ = serveApp(t, httptest.NewUnstartedServer(nil), env(base))
	}
	tests := []struct {
		name, base, path, host string
		header                 [2]string // sent when set
		want                   int
	}{
		{"APP_BASE_URL's host", named, "/", "localhost:" + port, [2]string{}, http.StatusOK},
		{"its host in capitals", named, "/", "LocalHost:" + port, [2]string{}, http.StatusOK},
		{"its host with a trailing dot", named, "/", "localhost.:" + port, [2]string{}, http.StatusOK},
		{"its host with two trailing dots", named, "/", "localhost..:" + port, [2]string{}, http.StatusMisdirectedRequest},
		{"the provider at its host", named, "/devidp/.well-known/openid-configuration", "localhost:" + port, [2]string{}, http.StatusOK},
		{"another host", named, "/", "app.example.com:" + port, [2]string{}, http.StatusMisdirectedRequest},
		{"another host to the provider", named, "/devidp/.well-known/openid-configuration", "app.example.com", [2]string{}, http.StatusMisdirectedRequest},
		{"another host to a file", named, "/static/style.css", "app.example.com", [2]string{}, http.StatusMisdirectedRequest},
		{"the IP address for the name", named, "/", addr, [2]string{}, http.StatusMisdirectedRequest},
		{"another port", named, "/", "localhost:1", [2]string{}, http.StatusMisdirectedRequest},
		{"its host without its port", named, "/", "localhost", [2]string{}, http.StatusMisdirectedRequest},
		{"X-Forwarded-For present", named, "/", "localhost:" + port, [2]string{"X-Forwarded-For", "203.0.113.7"}, http.StatusMisdirectedRequest},
		{"X-Forwarded-For to the provider", named, "/devidp/authorize", "localhost:" + port, [2]string{"X-Forwarded-For", "203.0.113.7"}, http.StatusMisdirectedRequest},
		{"Forwarded present", named, "/", "localhost:" + port, [2]string{"Forwarded", "for=203.0.113.7;proto=https"}, http.StatusMisdirectedRequest},
		{"X-Forwarded-Host present", named, "/login", "localhost:" + port, [2]string{"X-Forwarded-Host", "localhost:" + port}, http.StatusMisdirectedRequest},
		{"/healthz from anywhere", named, "/healthz", "app.example.com", [2]string{"X-Forwarded-For", "203.0.113.7"}, http.StatusOK},
		{"/readyz from anywhere", named, "/readyz", "app.example.com", [2]string{"Forwarded", "for=203.0.113.7"}, http.StatusOK},
		{"default port omitted in both", "http://localhost", "/", "localhost", [2]string{}, http.StatusOK},
		{"default port in the Host only", "http://localhost", "/", "localhost:80", [2]string{}, http.StatusOK},
		{"default port in APP_BASE_URL only", "http://localhost:80", "/", "LOCALHOST.", [2]string{}, http.StatusOK},
		{"another port than the default", "http://localhost", "/", "localhost:8080", [2]string{}, http.StatusMisdirectedRequest},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", apps[tt.base]+tt.path, nil)
			req.Host = tt.host
			if tt.header[0] != "" {
				req.Header.Set(tt.header[0], tt.header[1])
			}
			id := "direct-only-" + strconv.Itoa(i)
			req.Header.Set("X-Request-Id", id)
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("Host %q: %d, want %d:\n%s", tt.host, resp.StatusCode, tt.want, body)
			}
			warnings := len(regexp.MustCompile(`(?m)^.* level=WARN .* request_id=`+id+`$`).FindAllString(suiteLog.String(), -1))
			if tt.want != http.StatusMisdirectedRequest {
				if warnings != 0 {
					t.Errorf("an accepted request logged %d warnings", warnings)
				}
				return
			}
			for _, want := range []string{"Open " + tt.base + " directly", "AUTH0_*", "OIDC_*", "Error 421"} {
				if !strings.Contains(string(body), want) {
					t.Errorf("error page lacks %q:\n%s", want, body)
				}
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("Content-Type %q, want the HTML error page", ct)
			}
			if warnings != 1 {
				t.Errorf("%d warnings logged for the refused request, want 1", warnings)
			}
		})
	}
}
