package app

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gologin/gologin/devidp"
	"github.com/gologin/gologin/internal/testclient"
	"github.com/gologin/gologin/internal/testskip"
)

// nginxPath is Debian's nginx, which runs examples/gateway/nginx.conf in
// front of the gateway in these tests.
const nginxPath = "/usr/sbin/nginx"

// The addresses examples/gateway/nginx.conf uses, which the tests replace.
const (
	exampleNginxAddr    = "127.0.0.1:8080"
	exampleGatewayAddr  = "127.0.0.1:4180"
	exampleUpstreamAddr = "127.0.0.1:3001"
)

// startNginxGateway serves the gateway, with env, behind nginx running the
// example configuration, in front of an echo upstream that nginx reaches
// itself, and returns nginx's URL. The gateway's own UPSTREAM_URL is a
// server that fails the test if reached: with auth_request the gateway
// only answers nginx's questions. Without nginx the test skips (fails
// under CI).
func startNginxGateway(t *testing.T, env map[string]string) string {
	t.Helper()
	if _, err := os.Stat(nginxPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("nginx not found at %s, and CI must run the nginx tests: %v", nginxPath, err)
		}
		testskip.Skipped.Add("no nginx at "+nginxPath, "apt-get install nginx")
		t.Skipf("nginx not found at %s; install Debian's nginx to run the nginx tests", nginxPath)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nginxAddr := ln.Addr().String()
	ln.Close() // for nginx to listen on
	nginxURL := "http://" + nginxAddr

	up := startUpstream(t)
	unused := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the gateway proxied %s %s to UPSTREAM_URL: behind nginx, nginx reaches the app", r.Method, r.RequestURI)
		http.Error(w, "not this way", http.StatusTeapot)
	}))
	t.Cleanup(unused.Close)

	// Browsers reach the gateway through nginx: its URL is APP_BASE_URL,
	// and the provider returns them there.
	vars := map[string]string{"UPSTREAM_URL": unused.URL, "TRUSTED_PROXIES": "127.0.0.1", "APP_BASE_URL": nginxURL}
	for k, v := range env {
		vars[k] = v
	}
	bases, _, _ := startFaultyApps(t, 1, vars, func(f *faultyProvider) {
		f.Reconfigure(t, func(cfg *devidp.Config) {
			cfg.Clients[0].RedirectURIs = []string{nginxURL + "/_auth/callback"}
			cfg.Clients[0].PostLogoutRedirectURIs = []string{nginxURL + "/_auth/"}
		})
	})
	gatewayAddr := strings.TrimPrefix(bases[0], "http://")

	example, err := os.ReadFile(filepath.Join("..", "..", "examples", "gateway", "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	conf := string(example)
	for from, to := range map[string]string{exampleNginxAddr: nginxAddr, exampleGatewayAddr: gatewayAddr, exampleUpstreamAddr: strings.TrimPrefix(up.URL, "http://")} {
		if !strings.Contains(conf, from) {
			t.Fatalf("examples/gateway/nginx.conf has no %s to replace", from)
		}
		conf = strings.ReplaceAll(conf, from, to)
	}
	// What a run as any user, in a folder of its own, needs: the paths the
	// package's build put under /var.
	dir := t.TempDir()
	own := "http {\n"
	for _, d := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		own += fmt.Sprintf("    %s_temp_path %s;\n", d, filepath.Join(dir, d))
	}
	own += fmt.Sprintf("    access_log %s;\n", filepath.Join(dir, "access.log"))
	if strings.Count(conf, "\nhttp {\n") != 1 {
		t.Fatal("examples/gateway/nginx.conf: want one http { block")
	}
	conf = strings.Replace(conf, "\nhttp {\n", "\n"+own, 1)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}

	global := fmt.Sprintf("daemon off; pid %s; error_log stderr notice;", filepath.Join(dir, "nginx.pid"))
	if os.Geteuid() == 0 {
		// Else the workers run as nobody, who cannot enter t.TempDir().
		global += " user root;"
	}
	cmd := exec.Command(nginxPath, "-p", dir, "-c", confPath, "-e", "stderr", "-g", global)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		// SIGTERM: the master stops its workers, then itself.
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Errorf("nginx did not stop within 10s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("nginx's log:\n%s", out.String())
			if log, err := os.ReadFile(filepath.Join(dir, "access.log")); err == nil {
				t.Logf("nginx's access log:\n%s", log)
			}
		}
	})

	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			t.Fatalf("nginx exited at startup (%v):\n%s", err, out.String())
		default:
		}
		conn, err := net.DialTimeout("tcp", nginxAddr, time.Second)
		if err == nil {
			conn.Close()
			return nginxURL
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx is not listening on %s after 10s: %v\n%s", nginxAddr, err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// signInNginx loads path through nginx as a guest, signs in at the
// provider as email with groups, and returns the page it lands on.
func signInNginx(t *testing.T, b *testclient.Browser, nginxURL, path, email, groups string) testclient.Page {
	t.Helper()
	p := b.Get(nginxURL + path)
	if p.Status != http.StatusOK || !strings.Contains(p.Body, `action="/authorize"`) {
		t.Fatalf("GET %s as a guest: want the provider's sign-in page, got %d at %s:\n%s", path, p.Status, p.URL, p.Body)
	}
	return b.Submit(p.Form(t, "/authorize"), map[string]string{"name": "Ada", "email": email, "groups": groups})
}

// sessionCookie is b's gateway session cookie at nginxURL.
func sessionCookie(t *testing.T, b *testclient.Browser, nginxURL string) *http.Cookie {
	t.Helper()
	for _, c := range b.Client.Jar.Cookies(mustURL(t, nginxURL)) {
		if c.Name == "gateway_session" {
			return c
		}
	}
	t.Fatal("the browser has no gateway_session cookie")
	return nil
}

// getWith sends a GET through nginx with header, without following
// redirects.
func getWith(t *testing.T, rawURL string, header http.Header) testclient.Page {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, rawURL, nil)
	for k, v := range header {
		req.Header[k] = v // as spelt, not canonical
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	return readPage(t, resp)
}

func TestNginxSignsInAndPassesIdentity(t *testing.T) {
	ngx := startNginxGateway(t, nil)
	host := strings.TrimPrefix(ngx, "http://")
	b := testclient.New(t)

	// A guest is sent to sign in, and back here after.
	p := b.NoRedirects().Get(ngx + "/some/page?x=1")
	if want := ngx + "/_auth/login?returnTo=%2Fsome%2Fpage%3Fx%3D1"; p.Status != http.StatusFound || p.Header.Get("Location") != want {
		t.Fatalf("guest GET /some/page?x=1: got %d to %q, want 302 to %s:\n%s", p.Status, p.Header.Get("Location"), want, p.Body)
	}
	// A form post or a script's call gets the 401 instead.
	resp, err := http.Post(ngx+"/some/form", "application/x-www-form-urlencoded", strings.NewReader("a=1"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("guest POST /some/form: got %d, want 401", resp.StatusCode)
	}

	p = signInNginx(t, b, ngx, "/some/page?x=1", "ada@example.com", "eng,ops")
	s := upstreamSaw(t, p)
	if p.URL.String() != ngx+"/some/page?x=1" || s.URI != "/some/page?x=1" {
		t.Errorf("after sign-in: the browser is at %s and the upstream got %s, want both at /some/page?x=1", p.URL, s.URI)
	}
	want := map[string]string{
		"X-Forwarded-User": devidp.User{Email: "ada@example.com"}.Subject(), "X-Forwarded-Email": "ada@example.com",
		"X-Forwarded-Preferred-Username": "ada", "X-Forwarded-Groups": "eng,ops",
		"X-Forwarded-Host": host, "X-Forwarded-Proto": "http", "X-Forwarded-For": "127.0.0.1",
	}
	for k, v := range want {
		if got := s.Header.Get(k); got != v {
			t.Errorf("upstream got %s: %q, want %q", k, got, v)
		}
	}
	if s.Host != host {
		t.Errorf("upstream got Host %q, want the browser's %q", s.Host, host)
	}
	if v := s.Header.Get("Cookie"); v != "" {
		t.Errorf("upstream got Cookie %q; want none: the gateway's session cookie stays out", v)
	}

	// The gateway's session cookie never reaches the app, wherever it is
	// in the Cookie header; the app's own cookies do.
	session := sessionCookie(t, b, ngx)
	sc := session.Name + "=" + session.Value
	for _, tt := range []struct{ cookie, want string }{
		{sc, ""},
		{sc + "; a=1; b=2", "a=1; b=2"},
		{"a=1; " + sc + "; b=2", "a=1; b=2"},
		{"a=1;" + sc, "a=1"},
	} {
		s := upstreamSaw(t, getWith(t, ngx+"/c", http.Header{"Cookie": {tt.cookie}}))
		if got := s.Header.Get("Cookie"); got != tt.want || s.Header.Get("X-Forwarded-Email") != "ada@example.com" {
			t.Errorf("Cookie: %s: the app got Cookie %q as %q, want %q as ada@example.com",
				strings.ReplaceAll(tt.cookie, session.Value, "SESSION"), got, s.Header.Get("X-Forwarded-Email"), tt.want)
		}
	}

	// The check is for nginx's subrequests only.
	if p := b.NoRedirects().Get(ngx + "/_auth/auth"); p.Status != http.StatusNotFound {
		t.Errorf("GET /_auth/auth from a browser: got %d, want nginx's 404 (the location is internal)", p.Status)
	}
	// The gateway's own pages are served through nginx.
	if p := b.Get(ngx + "/_auth/"); !strings.Contains(p.Body, "Welcome Ada!") {
		t.Errorf("/_auth/ through nginx: want Welcome Ada!, got %d:\n%s", p.Status, p.Body)
	}
}

func TestNginxRemovesSpoofedIdentity(t *testing.T) {
	ngx := startNginxGateway(t, nil)
	spoof := http.Header{
		"X-Forwarded-User": {"admin"}, "x-forwarded-user": {"admin"}, "X_Forwarded_User": {"admin"},
		"X-Forwarded-Email": {"boss@example.com"}, "X-Forwarded-Groups": {"admins"}, "X-Forwarded-Preferred-Username": {"root"},
		"X-Auth-Request-User": {"admin"}, "X-Auth-Request-Email": {"boss@example.com"}, "X-Forwarded-Access-Token": {"forged"},
		"X-Forwarded-For": {"10.9.9.9"}, "X-Original-Uri": {"/forged"}, "X-Forwarded-Uri": {"/forged"},
	}
	with := func(h http.Header) http.Header {
		out := spoof.Clone()
		for k, v := range h {
			out[k] = v
		}
		return out
	}

	// A guest's headers claim nothing: it is sent to sign in.
	if p := getWith(t, ngx+"/private", spoof); p.Status != http.StatusFound || !strings.HasPrefix(p.Header.Get("Location"), ngx+"/_auth/login") {
		t.Fatalf("guest with spoofed identity headers: got %d to %q, want a redirect to sign in:\n%s", p.Status, p.Header.Get("Location"), p.Body)
	}

	b := testclient.New(t)
	upstreamSaw(t, signInNginx(t, b, ngx, "/", "ada@example.com", "eng"))
	session := sessionCookie(t, b, ngx)
	s := upstreamSaw(t, getWith(t, ngx+"/private", with(http.Header{"Cookie": {session.Name + "=" + session.Value}})))
	for k, v := range s.Header {
		for _, bad := range []string{"admin", "boss@example.com", "root", "forged", "10.9.9.9"} {
			if strings.Contains(strings.Join(v, ","), bad) {
				t.Errorf("the upstream got the client's %s: %q", k, v)
			}
		}
	}
	for k, v := range map[string]string{
		"X-Forwarded-User": devidp.User{Email: "ada@example.com"}.Subject(), "X-Forwarded-Email": "ada@example.com",
		"X-Forwarded-Groups": "eng", "X-Forwarded-Preferred-Username": "ada", "X-Forwarded-For": "127.0.0.1",
	} {
		if got := s.Header.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("upstream got %s: %q, want only %q", k, got, v)
		}
	}
}

func TestNginxRulesRefuse(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte("rules:\n  - path: /admin\n    groups: [admins]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ngx := startNginxGateway(t, map[string]string{"AUTH_RULES_FILE": rules})

	ada := testclient.New(t)
	upstreamSaw(t, signInNginx(t, ada, ngx, "/reports", "ada@example.com", "eng"))
	if p := ada.Get(ngx + "/admin"); p.Status != http.StatusForbidden {
		t.Errorf("a non-admin at /admin: got %d, want 403:\n%s", p.Status, p.Body)
	}
	// The rules decide on the request nginx got, whatever the client
	// says it was.
	session := sessionCookie(t, ada, ngx)
	for _, h := range []string{"X-Forwarded-Uri", "X-Original-Uri"} {
		p := getWith(t, ngx+"/admin/users", http.Header{"Cookie": {session.Name + "=" + session.Value}, h: {"/reports"}})
		if p.Status != http.StatusForbidden {
			t.Errorf("a non-admin at /admin/users saying %s: /reports: got %d, want 403:\n%s", h, p.Status, p.Body)
		}
	}
	upstreamSaw(t, ada.Get(ngx+"/administrator"))

	admin := testclient.New(t)
	s := upstreamSaw(t, signInNginx(t, admin, ngx, "/admin/users", "root@example.com", "admins"))
	if s.URI != "/admin/users" || s.Header.Get("X-Forwarded-Groups") != "admins" {
		t.Errorf("an admin at /admin/users: the upstream got %s with groups %q", s.URI, s.Header.Get("X-Forwarded-Groups"))
	}
}

func TestNginxLogout(t *testing.T) {
	ngx := startNginxGateway(t, nil)
	b := testclient.New(t)
	upstreamSaw(t, signInNginx(t, b, ngx, "/reports", "ada@example.com", ""))
	upstreamSaw(t, b.Get(ngx+"/reports"))

	p := b.Get(ngx + "/_auth/logout")
	if p.Status != http.StatusOK {
		t.Fatalf("GET /_auth/logout: got %d:\n%s", p.Status, p.Body)
	}
	// GET shows the form and changes nothing.
	upstreamSaw(t, b.Get(ngx+"/reports"))
	if p := b.Submit(p.Form(t, "/_auth/logout"), nil); p.Status != http.StatusOK || p.URL.String() != ngx+"/_auth/" {
		t.Errorf("after logout: got %d at %s, want the gateway's page at %s/_auth/", p.Status, p.URL, ngx)
	}

	p = b.NoRedirects().Get(ngx + "/reports")
	if want := ngx + "/_auth/login?returnTo=%2Freports"; p.Status != http.StatusFound || p.Header.Get("Location") != want {
		t.Errorf("after logout: GET /reports gave %d to %q, want 302 to %s", p.Status, p.Header.Get("Location"), want)
	}
}
