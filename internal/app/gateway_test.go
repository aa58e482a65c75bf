package app

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gologin/gologin/internal/testclient"
)

// seen is what the upstream echoes of each request it gets.
type seen struct {
	Method, URI, Host string
	Header            http.Header
}

// startUpstream serves a stand-in for the protected app: it answers every
// request with what it saw, as JSON. /set-cookie also tries to set the
// gateway's session cookie; /hang answers only once the test ends.
func startUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hang":
			<-hang
			return
		case "/set-cookie":
			http.SetCookie(w, &http.Cookie{Name: "gateway_session", Value: "fixated", Path: "/"})
			http.SetCookie(w, &http.Cookie{Name: "app_pref", Value: "dark", Path: "/"})
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(seen{Method: r.Method, URI: r.RequestURI, Host: r.Host, Header: r.Header})
	}))
	t.Cleanup(func() { close(hang); srv.Close() })
	return srv
}

// startGateway serves the gateway in front of upstream with the
// development provider, plus env.
func startGateway(t *testing.T, upstream string, env map[string]string) string {
	t.Helper()
	vars := map[string]string{"UPSTREAM_URL": upstream, "SESSION_STORE": "memory"}
	for k, v := range env {
		vars[k] = v
	}
	base, _ := startApp(t, vars)
	return base
}

// upstreamSaw decodes the upstream's echo from a page.
func upstreamSaw(t *testing.T, p testclient.Page) seen {
	t.Helper()
	var s seen
	if p.Status != http.StatusOK || json.Unmarshal([]byte(p.Body), &s) != nil {
		t.Fatalf("want the upstream's answer, got %d at %s:\n%s", p.Status, p.URL, p.Body)
	}
	return s
}

// signInThrough signs b in at the gateway's development provider, starting
// from path, with groups, and returns the page it lands on.
func signInThrough(t testing.TB, b *testclient.Browser, base, path, email, groups string) testclient.Page {
	t.Helper()
	p := b.Get(base + path)
	if p.Status != http.StatusOK || !strings.Contains(p.Body, "Development provider") {
		t.Fatalf("GET %s as a guest: want the development provider's sign-in page, got %d at %s:\n%s", path, p.Status, p.URL, p.Body)
	}
	return b.Submit(p.Form(t, "/authorize"), map[string]string{"name": "Ada", "email": email, "groups": groups})
}

func TestGatewaySignsInAndPassesIdentity(t *testing.T) {
	up := startUpstream(t)
	base := startGateway(t, up.URL, nil)
	b := testclient.New(t)

	p := signInThrough(t, b, base, "/reports/q?x=1&y=a%20b", "ada@example.com", "eng, ops")
	s := upstreamSaw(t, p)
	if s.URI != "/reports/q?x=1&y=a%20b" || p.URL.RequestURI() != "/reports/q?x=1&y=a%20b" {
		t.Errorf("after sign-in: the browser is at %s and the upstream got %s, want both at /reports/q?x=1&y=a%%20b", p.URL.RequestURI(), s.URI)
	}
	host := strings.TrimPrefix(base, "http://")
	want := map[string]string{
		"X-Forwarded-Email": "ada@example.com", "X-Forwarded-Preferred-Username": "ada", "X-Forwarded-Groups": "eng,ops",
		"X-Forwarded-Proto": "http", "X-Forwarded-Host": host, "X-Forwarded-For": "127.0.0.1",
	}
	for k, v := range want {
		if got := s.Header.Get(k); got != v {
			t.Errorf("upstream got %s: %q, want %q", k, got, v)
		}
	}
	if u := s.Header.Get("X-Forwarded-User"); !strings.HasPrefix(u, "dev|") {
		t.Errorf("X-Forwarded-User = %q, want the user's sub", u)
	}
	if s.Host != host {
		t.Errorf("upstream got Host %q, want the browser's %q", s.Host, host)
	}
	for _, k := range []string{"Authorization", "X-Forwarded-Access-Token", "Cookie"} {
		if v := s.Header.Get(k); v != "" {
			t.Errorf("upstream got %s: %q; want none (tokens are off by default, and the gateway's cookies stay)", k, v)
		}
	}

	// The gateway's own page says who is signed in, under its prefix.
	if p := b.Get(base + "/_auth/"); !strings.Contains(p.Body, "Welcome Ada!") || !strings.Contains(p.Body, `action="/_auth/logout"`) {
		t.Errorf("/_auth/: want Welcome Ada! and a logout form, got:\n%s", p.Body)
	}
	// Signing out ends upstream access at once.
	b.Submit(b.Get(base+"/_auth/logout").Form(t, "/_auth/logout"), nil)
	if p := b.NoRedirects().Get(base + "/reports"); p.Status != http.StatusFound {
		t.Errorf("after logout: GET /reports gave %d, want a redirect to sign in", p.Status)
	}
}

func TestGatewayGuests(t *testing.T) {
	up := startUpstream(t)
	base := startGateway(t, up.URL, map[string]string{"PUBLIC_PATHS": "/health, GET|HEAD=^/api/v1/status$"})
	tests := []struct {
		name, method, path string
		header             map[string]string
		status             int
		location           string // of a redirect
	}{
		{"page load", "GET", "/docs/a?b=c", nil, http.StatusFound, "/_auth/login?returnTo=%2Fdocs%2Fa%3Fb%3Dc"},
		{"root", "GET", "/", nil, http.StatusFound, "/_auth/login"},
		{"script fetch", "GET", "/api/data", map[string]string{"Sec-Fetch-Mode": "cors"}, http.StatusUnauthorized, ""},
		{"websocket", "GET", "/ws", map[string]string{"Upgrade": "websocket", "Connection": "Upgrade"}, http.StatusUnauthorized, ""},
		{"form post", "POST", "/docs", nil, http.StatusUnauthorized, ""},
		{"public prefix", "GET", "/health", nil, http.StatusOK, ""},
		{"under the public prefix", "POST", "/health/live", nil, http.StatusOK, ""},
		{"public regexp", "HEAD", "/api/v1/status", nil, http.StatusOK, ""},
		{"public regexp, other method", "POST", "/api/v1/status", nil, http.StatusUnauthorized, ""},
		{"not a segment of the prefix", "GET", "/healthz", nil, http.StatusFound, "/_auth/login?returnTo=%2Fhealthz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, base+tt.path, nil)
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status || resp.Header.Get("Location") != tt.location {
				t.Errorf("%s %s: got %d to %q, want %d to %q", tt.method, tt.path, resp.StatusCode, resp.Header.Get("Location"), tt.status, tt.location)
			}
		})
	}
}

// rawStatus sends a request line exactly as given, which no URL type
// would keep, and returns the status.
func rawStatus(t *testing.T, base, method, target string, header http.Header) int {
	t.Helper()
	return rawStatusAt(t, base, strings.TrimPrefix(base, "http://"), method, target, header)
}

// rawStatusAt is rawStatus with a Host header of its own.
func rawStatusAt(t *testing.T, base, host, method, target string, header http.Header) int {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, target, host)
	header.Write(conn)
	fmt.Fprint(conn, "\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestGatewayPathTricks asks for protected content in the spellings that
// proxies, frameworks and file systems read as the same path: none may
// reach the upstream without sign-in by looking like a public path, and
// none may pass a rule by looking like another path.
func TestGatewayPathTricks(t *testing.T) {
	up := startUpstream(t)
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	os.WriteFile(rules, []byte("rules:\n  - path: /admin\n    groups: [admins]\n"), 0o600)
	base := startGateway(t, up.URL, map[string]string{"PUBLIC_PATHS": "/public/", "AUTH_RULES_FILE": rules})

	// Guests: only the plain spelling of a public path passes.
	for _, tt := range []struct {
		target string
		public bool
	}{
		{"/public/page", true},
		{"/public/../admin", false},
		{"/public/%2e%2e/admin", false},
		{"/public/%2E%2E/admin", false},
		{"/public/..%2fadmin", false},
		{"/public%2f..%2fadmin", false},
		{"/public/%2fadmin", false},
		{"/public//admin", false},
		{"//public/page", false},
		{"/public/.%2e/admin", false},
		{"/public/%252e%252e/admin", false},
		{"/public/..;/admin", false},
		{"/public/%5c..%5cadmin", false},
		{"/public\\..\\admin", false},
		{"/PUBLIC/page", false},
		{"/public", false},
		{"/public/./page", false},
	} {
		status := rawStatus(t, base, "GET", tt.target, http.Header{"Sec-Fetch-Mode": {"cors"}})
		if got := status == http.StatusOK; got != tt.public {
			t.Errorf("guest GET %s: got %d; want public=%v", tt.target, status, tt.public)
		}
	}

	// A signed-in user outside the admins group: every spelling of /admin
	// is refused.
	b := testclient.New(t)
	signInThrough(t, b, base, "/", "ada@example.com", "eng")
	cookie := b.Client.Jar.Cookies(mustURL(t, base))
	h := http.Header{}
	for _, c := range cookie {
		h.Add("Cookie", c.String())
	}
	for _, target := range []string{"/admin", "/admin/", "/ADMIN/x", "/Admin", "/admin;x=1/secret", "/%61dmin", "/admin%2fsecret",
		"/x/../admin", "/public/../admin", "//admin", "/admin/./x", "/adMin%2F", "/admin.", "/admin%20/x", "/admin..%2fx"} {
		if status := rawStatus(t, base, "GET", target, h); status != http.StatusForbidden {
			t.Errorf("GET %s outside the admins group: got %d, want 403", target, status)
		}
	}
	if status := rawStatus(t, base, "GET", "/administrator", h); status != http.StatusOK {
		t.Errorf("GET /administrator: got %d, want 200: the rule is for /admin only", status)
	}
}

// TestGatewayHostRules asks for a host that a rule reserves in the
// spellings that name the same host: each meets the rule.
func TestGatewayHostRules(t *testing.T) {
	up := startUpstream(t)
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	os.WriteFile(rules, []byte("rules:\n  - host: admin.example.com\n    groups: [admins]\n"), 0o600)
	// A provider of its own: the development provider answers only
	// requests for APP_BASE_URL's host.
	base, _ := startFaultyProvider(t, map[string]string{"UPSTREAM_URL": up.URL, "AUTH_RULES_FILE": rules})
	b := testclient.New(t)
	signInThrough(t, b, base, "/", "ada@example.com", "eng")
	h := http.Header{}
	for _, c := range b.Client.Jar.Cookies(mustURL(t, base)) {
		h.Add("Cookie", c.String())
	}
	for _, host := range []string{"admin.example.com", "ADMIN.example.com", "admin.example.com.", "admin.example.com:443",
		"Admin.Example.Com.:8080", "admin.example.com:443:443", "admin.example.com::1", "admin.example.com:x", "[admin.example.com]"} {
		if status := rawStatusAt(t, base, host, "GET", "/", h); status != http.StatusForbidden {
			t.Errorf("Host %s outside the admins group: got %d, want 403", host, status)
		}
	}
	if status := rawStatusAt(t, base, "app.example.com", "GET", "/", h); status != http.StatusOK {
		t.Errorf("Host app.example.com: got %d, want 200: the rule is for admin.example.com only", status)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestGatewayRulesGive403WithSignOut(t *testing.T) {
	up := startUpstream(t)
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	os.WriteFile(rules, []byte("rules:\n  - path: /admin\n    groups: [admins]\n  - email_domains: [example.com]\n"), 0o600)
	base := startGateway(t, up.URL, map[string]string{"AUTH_RULES_FILE": rules})

	ada := testclient.New(t)
	signInThrough(t, ada, base, "/", "ada@example.com", "eng")
	p := ada.Get(base + "/admin/users")
	if p.Status != http.StatusForbidden || !strings.Contains(p.Body, "signed in as <strong>Ada</strong> (ada@example.com)") {
		t.Fatalf("a non-admin at /admin: want 403 saying who is signed in, got %d:\n%s", p.Status, p.Body)
	}
	if !strings.Contains(p.Body, `action="/_auth/logout"`) {
		t.Errorf("the 403 page offers no sign-out:\n%s", p.Body)
	}
	upstreamSaw(t, ada.Get(base+"/reports"))

	admin := testclient.New(t)
	upstreamSaw(t, signInThrough(t, admin, base, "/admin/users", "root@example.com", "admins"))

	other := testclient.New(t)
	if p := signInThrough(t, other, base, "/reports", "eve@elsewhere.org", "admins"); p.Status != http.StatusForbidden {
		t.Errorf("a user of another domain: got %d, want 403", p.Status)
	}
}

func TestGatewayRemovesSpoofedIdentity(t *testing.T) {
	up := startUpstream(t)
	// A provider of its own: with the development provider, the gateway
	// refuses every request that a proxy forwarded.
	base, _ := startFaultyProvider(t, map[string]string{"UPSTREAM_URL": up.URL, "PUBLIC_PATHS": "/public/", "PASS_AUTHORIZATION_HEADER": "true"})
	spoof := http.Header{
		"X-Forwarded-User": {"admin"}, "X_forwarded_user": {"admin"}, "x-forwarded-email": {"boss@example.com"},
		"X-Forwarded-Groups": {"admins"}, "X-Forwarded-Preferred-Username": {"root"}, "X-Auth-Request-User": {"admin"},
		"X-Forwarded-Access-Token": {"forged"}, "Authorization": {"Bearer forged"}, "X-Forwarded-For": {"10.9.9.9"},
		"Forwarded": {"for=10.9.9.9"}, "X-Real-Ip": {"10.9.9.9"}, "X-Original-Uri": {"/x"}, "X-Original-Url": {"/x"}, "X-Rewrite-Url": {"/x"},
	}
	check := func(t *testing.T, s seen, signedIn bool) {
		t.Helper()
		for k, v := range s.Header {
			for _, bad := range []string{"admin", "boss@example.com", "admins", "root", "forged", "10.9.9.9", "/x"} {
				if strings.Contains(strings.Join(v, ","), bad) {
					t.Errorf("the upstream got the client's %s: %q", k, v)
				}
			}
		}
		if got := s.Header.Get("X-Forwarded-For"); got != "127.0.0.1" {
			t.Errorf("X-Forwarded-For = %q, want the peer's address only", got)
		}
		if signedIn != (s.Header.Get("X-Forwarded-Email") == "ada@example.com") {
			t.Errorf("X-Forwarded-Email = %q (signed in: %v)", s.Header.Get("X-Forwarded-Email"), signedIn)
		}
		if signedIn != strings.HasPrefix(s.Header.Get("Authorization"), "Bearer ") {
			t.Errorf("Authorization = %q (signed in: %v)", s.Header.Get("Authorization"), signedIn)
		}
	}
	get := func(b *testclient.Browser, path string) seen {
		req, _ := http.NewRequest("GET", base+path, nil)
		for k, v := range spoof {
			req.Header[k] = v
		}
		resp, err := b.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return upstreamSaw(t, readPage(t, resp))
	}
	guest := testclient.New(t)
	t.Run("guest on a public path", func(t *testing.T) { check(t, get(guest, "/public/x"), false) })
	b := testclient.New(t)
	signInThrough(t, b, base, "/", "ada@example.com", "")
	t.Run("signed in", func(t *testing.T) { check(t, get(b, "/private"), true) })
}

func readPage(t *testing.T, resp *http.Response) testclient.Page {
	t.Helper()
	defer resp.Body.Close()
	var body strings.Builder
	if _, err := bufio.NewReader(resp.Body).WriteTo(&body); err != nil {
		t.Fatal(err)
	}
	return testclient.Page{Status: resp.StatusCode, URL: resp.Request.URL, Header: resp.Header, Body: body.String()}
}

func TestGatewayKeepsItsCookiesFromTheUpstream(t *testing.T) {
	up := startUpstream(t)
	base := startGateway(t, up.URL, nil)
	b := testclient.New(t)
	signInThrough(t, b, base, "/", "ada@example.com", "")
	b.Client.Jar.SetCookies(mustURL(t, base), []*http.Cookie{{Name: "app_own", Value: "1"}})

	p := b.Get(base + "/set-cookie")
	s := upstreamSaw(t, p)
	if got := s.Header.Get("Cookie"); got != "app_own=1" {
		t.Errorf("upstream got Cookie %q, want only its own cookie app_own=1", got)
	}
	var names []string
	for _, c := range p.Header.Values("Set-Cookie") {
		names = append(names, strings.SplitN(c, "=", 2)[0])
	}
	if strings.Join(names, ",") != "app_pref" {
		t.Errorf("the browser got Set-Cookie for %v, want app_pref only: the upstream may not set the gateway's session cookie", names)
	}
	// The session survived the upstream's attempt.
	upstreamSaw(t, b.Get(base+"/still-signed-in"))
	if s := upstreamSaw(t, b.Get(base+"/x")); s.Header.Get("X-Forwarded-Email") != "ada@example.com" {
		t.Error("the upstream's Set-Cookie replaced the user's session")
	}
}

func TestGatewayUpstreamDown(t *testing.T) {
	up := startUpstream(t)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := "http://" + ln.Addr().String()
	ln.Close()
	for _, tt := range []struct {
		name, upstream, path string
		status               int
	}{
		{"nothing listening", closed, "/", http.StatusBadGateway},
		{"no answer in time", up.URL, "/hang", http.StatusGatewayTimeout},
	} {
		t.Run(tt.name, func(t *testing.T) {
			base := startGateway(t, tt.upstream, map[string]string{"UPSTREAM_TIMEOUT": "200ms", "PUBLIC_PATHS": "/"})
			p := testclient.New(t).Get(base + tt.path)
			if p.Status != tt.status || !strings.Contains(p.Body, "<html") || !strings.Contains(p.Body, "The app") {
				t.Errorf("got %d, want the %d error page:\n%s", p.Status, tt.status, p.Body)
			}
		})
	}
}

func TestGatewayForwardAuth(t *testing.T) {
	up := startUpstream(t)
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	os.WriteFile(rules, []byte("rules:\n  - path: /admin\n    groups: [admins]\n"), 0o600)
	env := map[string]string{"UPSTREAM_URL": up.URL, "AUTH_RULES_FILE": rules}
	trustedEnv := maps.Clone(env)
	trustedEnv["TRUSTED_PROXIES"] = "127.0.0.1"
	trusted, _ := startFaultyProvider(t, trustedEnv)
	untrusted, _ := startFaultyProvider(t, env)
	guest := testclient.New(t)
	ada := map[string]*testclient.Browser{trusted: testclient.New(t), untrusted: testclient.New(t)}
	for base, b := range ada {
		signInThrough(t, b, base, "/", "ada@example.com", "eng")
	}
	login := func(base, returnTo string) string {
		if returnTo == "" {
			return base + "/_auth/login"
		}
		return base + "/_auth/login?" + url.Values{"returnTo": {returnTo}}.Encode()
	}
	tests := []struct {
		name     string
		base     string
		ada      bool // else a guest
		path     string
		header   map[string]string
		status   int
		location string // Location, or for /auth X-Auth-Sign-In
		user     bool   // the identity headers are in the answer
	}{
		{"nginx, guest", trusted, false, "/_auth/auth", map[string]string{"X-Original-Uri": "/docs?a=1"}, 401, login(trusted, "/docs?a=1"), false},
		{"nginx, allowed", trusted, true, "/_auth/auth", map[string]string{"X-Original-Uri": "/docs"}, 202, "", true},
		{"nginx, refused", trusted, true, "/_auth/auth", map[string]string{"X-Original-Uri": "/admin/x"}, 403, "", false},
		{"nginx, a client's conflicting X-Forwarded-Uri", trusted, true, "/_auth/auth",
			map[string]string{"X-Original-Uri": "/admin/x", "X-Forwarded-Uri": "/docs"}, 403, "", false},
		{"traefik, guest page load", trusted, false, "/_auth/verify", map[string]string{"X-Forwarded-Uri": "/docs?a=1", "X-Forwarded-Method": "GET"}, 302, login(trusted, "/docs?a=1"), false},
		{"traefik, guest post", trusted, false, "/_auth/verify", map[string]string{"X-Forwarded-Uri": "/docs", "X-Forwarded-Method": "POST"}, 401, login(trusted, "/docs"), false},
		{"traefik, open redirect attempt", trusted, false, "/_auth/verify", map[string]string{"X-Forwarded-Uri": "//evil.example/x"}, 302, login(trusted, ""), false},
		{"traefik, allowed", trusted, true, "/_auth/verify", map[string]string{"X-Forwarded-Uri": "/docs"}, 200, "", true},
		{"traefik, refused", trusted, true, "/_auth/verify", map[string]string{"X-Forwarded-Uri": "/ADMIN"}, 403, "", false},
		{"envoy, guest", trusted, false, "/_auth/envoy/docs?x=1", nil, 302, login(trusted, "/docs?x=1"), false},
		{"envoy, allowed", trusted, true, "/_auth/envoy/docs", nil, 200, "", true},
		{"envoy, refused", trusted, true, "/_auth/envoy/admin", nil, 403, "", false},
		{"untrusted peer, guest", untrusted, false, "/_auth/verify", map[string]string{"X-Forwarded-Uri": "/docs"}, 302, login(untrusted, ""), false},
		{"untrusted peer: every rule applies", untrusted, true, "/_auth/auth", map[string]string{"X-Original-Uri": "/docs"}, 403, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := guest
			if tt.ada {
				b = ada[tt.base]
			}
			req, _ := http.NewRequest("GET", tt.base+tt.path, nil)
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := b.NoRedirects().Client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			loc := resp.Header.Get("Location")
			if tt.status == 401 {
				loc = resp.Header.Get("X-Auth-Sign-In")
			}
			if resp.StatusCode != tt.status || loc != tt.location {
				t.Errorf("got %d to %q, want %d to %q", resp.StatusCode, loc, tt.status, tt.location)
			}
			email := resp.Header.Get("X-Auth-Request-Email") == "ada@example.com" && resp.Header.Get("X-Forwarded-Email") == "ada@example.com"
			if email != tt.user || (tt.user && !strings.HasPrefix(resp.Header.Get("X-Auth-Request-User"), "dev|")) {
				t.Errorf("identity in the answer: %v (%q), want %v", email, resp.Header.Get("X-Auth-Request-User"), tt.user)
			}
		})
	}
}

// TestGatewayInstances runs two gateway instances on each shared store:
// the access token they forward is refreshed one instance after the other
// (none is lost, the session stays), and a back-channel logout or "sign
// out of all devices" received by one ends the upstream access through
// both at once.
func TestGatewayInstances(t *testing.T) {
	up := startUpstream(t)
	for name, store := range sharedStores(t) {
		t.Run(name, func(t *testing.T) {
			bases, f := startInstances(t, 2, map[string]string{"UPSTREAM_URL": up.URL, "SESSION_STORE": store,
				"PASS_ACCESS_TOKEN": "true", "OIDC_SCOPES": "openid profile email offline_access"}, shortAccessTokens(t))
			b := testclient.New(t)
			sub := upstreamSaw(t, signInThrough(t, b, bases[0], "/", "ada@example.com", "")).Header.Get("X-Forwarded-User")

			tokens := make(chan string, 8)
			for i := range 8 {
				go func() {
					resp, err := b.Client.Get(bases[i%2] + "/api")
					if err != nil || resp.StatusCode != http.StatusOK {
						tokens <- ""
						return
					}
					var s seen
					json.NewDecoder(resp.Body).Decode(&s)
					resp.Body.Close()
					tokens <- s.Header.Get("X-Forwarded-Access-Token")
				}()
			}
			for range 8 {
				if tok := <-tokens; tok == "" {
					t.Error("a request during concurrent refreshes did not reach the upstream with an access token")
				}
			}
			if p := b.NoRedirects().Get(bases[1] + "/api"); p.Status != http.StatusOK {
				t.Fatalf("after concurrent refreshes across instances: %d, want the session kept", p.Status)
			}
			if n := f.Hits("/token"); n < 3 {
				t.Errorf("the token endpoint was called %d times: the forwarded access token was not refreshed", n)
			}

			// Back-channel logout through instance B ends access through A.
			if got := postLogoutToken(t, bases[1]+"/_auth", logoutToken(t, f, func(c map[string]any) { c["sub"] = sub })); got != http.StatusOK {
				t.Fatalf("back-channel logout on B: %d", got)
			}
			if p := b.NoRedirects().Get(bases[0] + "/api"); p.Status != http.StatusFound {
				t.Fatalf("after back-channel logout through B, A answered %d, want a redirect to sign in", p.Status)
			}

			// Signing out of all devices on B ends the sessions through A.
			phone := testclient.New(t)
			signInThrough(t, b, bases[0], "/", "ada@example.com", "")
			signInThrough(t, phone, bases[1], "/", "ada@example.com", "")
			phone.Submit(phone.Get(bases[1]+"/_auth/profile").Form(t, "/_auth/logout/all"), nil)
			for _, br := range []*testclient.Browser{b, phone} {
				if p := br.NoRedirects().Get(bases[0] + "/api"); p.Status != http.StatusFound {
					t.Errorf("after signing out of all devices: %d through A, want a redirect to sign in", p.Status)
				}
			}
		})
	}
}

func TestGatewayMetrics(t *testing.T) {
	up := startUpstream(t)
	base, a := startApp(t, map[string]string{"UPSTREAM_URL": up.URL, "SESSION_STORE": "memory", "PUBLIC_PATHS": "/open"})
	testclient.New(t).Get(base + "/open/x")
	rec := httptest.NewRecorder()
	a.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{`webapp_http_requests_total{method="GET",route="upstream",status="200"} 1`,
		`webapp_upstream_request_duration_seconds_count{code="200",method="get"} 1`} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestGatewayForwardAuthOfCrossSitePosts: Envoy asks in the method of the
// request it is about; a form another site posts to the protected app is
// the app's to judge, so the gateway answers as for any request.
func TestGatewayForwardAuthOfCrossSitePosts(t *testing.T) {
	up := startUpstream(t)
	base, _ := startFaultyProvider(t, map[string]string{"UPSTREAM_URL": up.URL})
	b := testclient.New(t)
	signInThrough(t, b, base, "/", "ada@example.com", "")
	req, _ := http.NewRequest("POST", base+"/_auth/envoy/comments", strings.NewReader("a=1"))
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Origin", "https://elsewhere.example")
	resp, err := b.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Forwarded-Email") != "ada@example.com" {
		t.Errorf("Envoy asking about a cross-site post: got %d, want 200 with the identity", resp.StatusCode)
	}
}

// TestGatewayDropsInformationalResponses: an upstream's 103 Early Hints,
// which comes before the gateway sees the response's headers, never
// reaches the browser, and with it no Set-Cookie of the gateway's.
func TestGatewayDropsInformationalResponses(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Set-Cookie", "gateway_session=fixated; Path=/")
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Set-Cookie")
		fmt.Fprint(w, "page")
	}))
	t.Cleanup(up.Close)
	base := startGateway(t, up.URL, map[string]string{"PUBLIC_PATHS": "/"})
	var early []int
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		early = append(early, code)
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", base+"/", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(early) > 0 || resp.StatusCode != http.StatusOK || len(resp.Cookies()) > 0 {
		t.Errorf("got informational responses %v, then %d with cookies %v; want only the 200, without cookies", early, resp.StatusCode, resp.Cookies())
	}
}
