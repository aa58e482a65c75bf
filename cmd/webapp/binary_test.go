//go:build unix

package main

// These tests build the webapp binary once and run it as a subprocess, the
// way it runs in production: configured by its environment and a .env file in
// its working directory, trusting CAs through SSL_CERT_FILE (which Go reads
// once per process), stopped with SIGTERM. Everything listens on 127.0.0.1.

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gologin/gologin/devidp"
	"github.com/gologin/gologin/internal/testclient"
)

var (
	buildOnce sync.Once
	buildDir  string
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// webappBinary builds the binary once per test run with the go on PATH and
// returns its path.
func webappBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "webapp-binary-test-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "webapp")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// baseEnv is the minimal environment of the binary, plus vars. Its
// metrics get a port of their own (unless vars say otherwise): the
// default one may be another webapp's on this machine.
func baseEnv(home string, vars map[string]string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "METRICS_ADDR=127.0.0.1:0"}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

// proc is a running webapp.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr lockedBuffer
	done           chan struct{} // closed when the process has exited
	waitErr        error
	port           int
}

// output is the process's output, for failure messages.
func (p *proc) output() string {
	return fmt.Sprintf("--- webapp stdout ---\n%s--- webapp stderr ---\n%s", p.stdout.String(), p.stderr.String())
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// startWebapp starts the binary in dir with env and waits until /healthz
// answers on port. The process is killed when the test ends.
func startWebapp(t *testing.T, dir string, port int, env []string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(webappBinary(t)), done: make(chan struct{}), port: port}
	p.cmd.Dir = dir
	p.cmd.Env = env
	p.cmd.Stdout = &p.stdout
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("webapp on port %d:\n%s", port, p.output())
		}
	})

	health := &http.Client{Transport: &http.Transport{}, Timeout: time.Second}
	defer health.CloseIdleConnections()
	healthURL := fmt.Sprintf("http://127.0.0.1:%d/healthz", port)
	for range 400 {
		if p.exited() {
			t.Fatalf("webapp exited before serving (%v):\n%s", p.waitErr, p.output())
		}
		if resp, err := health.Get(healthURL); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("webapp never answered %s:\n%s", healthURL, p.output())
	return nil
}

// stop sends SIGTERM and checks that the process exits with status 0.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(20 * time.Second): // a hang guard, not a timing assertion
		t.Fatalf("webapp did not exit after SIGTERM:\n%s", p.output())
	}
	if p.waitErr != nil || p.cmd.ProcessState.ExitCode() != 0 {
		t.Fatalf("webapp after SIGTERM: exit %v, want status 0:\n%s", p.waitErr, p.output())
	}
}

// loopbackDial dials localhost as 127.0.0.1, so browsers can use the app's
// default base URL (http://localhost:PORT) and stay on 127.0.0.1.
func loopbackDial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if host == "localhost" {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp4", addr)
}

// newBrowser returns a browser whose transport is base's (or a default one),
// never uses a proxy and dials localhost as 127.0.0.1.
func newBrowser(t *testing.T, base *http.Transport) (*testclient.Browser, *http.Transport) {
	tr := &http.Transport{}
	if base != nil {
		tr = base.Clone()
	}
	tr.Proxy = nil
	tr.DialContext = loopbackDial
	t.Cleanup(tr.CloseIdleConnections)
	b := testclient.New(t)
	b.Client.Transport = tr
	return b, tr
}

// auth0Provider is a devidp.Provider served over TLS at an Auth0-style root
// issuer (https://127.0.0.1:PORT/), with Auth0's /v2/logout.
type auth0Provider struct {
	srv      *httptest.Server
	issuer   string
	domain   string // host:port, the AUTH0_DOMAIN
	certFile string // the server's certificate, PEM, for SSL_CERT_FILE

	mu      sync.Mutex
	logouts []url.Values
}

func (a *auth0Provider) logoutCalls() []url.Values {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]url.Values(nil), a.logouts...)
}

// startAuth0Provider serves a provider with one client, whose redirect URIs
// are appBase+"/callback" and appBase+"/".
func startAuth0Provider(t *testing.T, appBase, clientID, clientSecret string) *auth0Provider {
	t.Helper()
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		t.Skip("SSL_CERT_FILE does not change the trusted roots on Apple platforms")
	}
	key, err := devidp.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	a := &auth0Provider{srv: srv, domain: srv.Listener.Addr().String()}
	a.issuer = "https://" + a.domain + "/"
	idp, err := devidp.New(devidp.Config{
		Issuer: a.issuer,
		Key:    key,
		Clients: []devidp.Client{{
			ID:                     clientID,
			Secret:                 clientSecret,
			RedirectURIs:           []string{appBase + "/callback"},
			PostLogoutRedirectURIs: []string{appBase + "/"},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/logout", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		a.mu.Lock()
		a.logouts = append(a.logouts, q)
		a.mu.Unlock()
		if q.Get("client_id") != clientID || q.Get("returnTo") == "" {
			http.Error(w, "unknown client_id or no returnTo", http.StatusBadRequest)
			return
		}
		http.Redirect(w, r, q.Get("returnTo"), http.StatusFound)
	})
	mux.Handle("/", idp)
	srv.Config.Handler = mux
	srv.StartTLS()
	t.Cleanup(srv.Close)
	if srv.URL+"/" != a.issuer {
		t.Fatalf("server URL %s does not match issuer %s", srv.URL, a.issuer)
	}

	a.certFile = filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(a.certFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return a
}

func writeDotenv(t *testing.T, dir, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestBinaryAuth0OverTLS signs in and out through an Auth0-style provider
// over TLS, with the Auth0 settings in .env and the test CA in SSL_CERT_FILE.
func TestBinaryAuth0OverTLS(t *testing.T) {
	const clientID, clientSecret = "auth0-test-client", "auth0-test-secret"
	port := freePort(t)
	appBase := "http://localhost:" + strconv.Itoa(port) // the default APP_BASE_URL
	idp := startAuth0Provider(t, appBase, clientID, clientSecret)

	dir := t.TempDir()
	// The shape of an Auth0 quickstart .env, with a comment and quotes.
	writeDotenv(t, dir, fmt.Sprintf("# Auth0 application settings\nAUTH0_DOMAIN=%s\nAUTH0_CLIENT_ID='%s'\nAUTH0_CLIENT_SECRET=\"%s\"\n",
		idp.domain, clientID, clientSecret))
	proc := startWebapp(t, dir, port, baseEnv(dir, map[string]string{
		"SSL_CERT_FILE": idp.certFile,
		"PORT":          strconv.Itoa(port),
		"SESSION_STORE": "sqlite:" + filepath.Join(dir, "s.db"),
	}))

	b, _ := newBrowser(t, idp.srv.Client().Transport.(*http.Transport))
	defer checkNoSecretsLogged(t, proc, b, appBase, clientSecret)

	p := b.Get(appBase + "/")
	if p.Status != http.StatusOK || !strings.Contains(p.Body, "Welcome Guest") {
		t.Fatalf("guest home: want 200 with Welcome Guest, got %d:\n%s", p.Status, p.Body)
	}

	p = b.Get(appBase + "/login")
	if p.Status != http.StatusOK || p.URL.Host != idp.domain || p.URL.Path != "/authorize" || p.URL.Scheme != "https" {
		t.Fatalf("GET /login: want the provider's sign-in page at https://%s/authorize, got %d at %s:\n%s", idp.domain, p.Status, p.URL, p.Body)
	}
	if q := p.URL.Query(); q.Get("client_id") != clientID || q.Get("redirect_uri") != appBase+"/callback" {
		t.Errorf("authorization request: client_id=%q redirect_uri=%q, want %q and %q",
			q.Get("client_id"), q.Get("redirect_uri"), clientID, appBase+"/callback")
	}
	p = b.Submit(p.Form(t, "/authorize"), map[string]string{"name": "Ada Lovelace", "email": "ada@example.com"})
	if p.Status != http.StatusOK || p.URL.String() != appBase+"/" || !strings.Contains(p.Body, "Welcome Ada Lovelace!") {
		t.Fatalf("after sign-in: want Welcome Ada Lovelace! at %s/, got %d at %s:\n%s", appBase, p.Status, p.URL, p.Body)
	}
	if calls := idp.logoutCalls(); len(calls) != 0 {
		t.Fatalf("/v2/logout called before logout: %v", calls)
	}

	p = b.Submit(p.Form(t, "/logout"), nil)
	calls := idp.logoutCalls()
	if len(calls) != 1 {
		t.Fatalf("/v2/logout calls: got %d, want 1 (landed at %s)", len(calls), p.URL)
	}
	if got := calls[0].Get("client_id"); got != clientID {
		t.Errorf("/v2/logout client_id = %q, want %q", got, clientID)
	}
	if got := calls[0].Get("returnTo"); got != appBase+"/" {
		t.Errorf("/v2/logout returnTo = %q, want %q", got, appBase+"/")
	}
	if p.Status != http.StatusOK || p.URL.String() != appBase+"/" || !strings.Contains(p.Body, "Welcome Guest") {
		t.Fatalf("after logout: want Welcome Guest at %s/, got %d at %s:\n%s", appBase, p.Status, p.URL, p.Body)
	}
	if p := b.Get(appBase + "/"); !strings.Contains(p.Body, "Welcome Guest") {
		t.Fatalf("home after logout: want Welcome Guest:\n%s", p.Body)
	}
}

// TestBinaryEnvironmentWinsOverDotenv gives .env an unusable PORT and
// SESSION_STORE and another client ID; the real environment's values win.
func TestBinaryEnvironmentWinsOverDotenv(t *testing.T) {
	const clientID, clientSecret = "env-client", "env-secret"
	port := freePort(t)
	appBase := "http://127.0.0.1:" + strconv.Itoa(port)
	idp := startAuth0Provider(t, appBase, clientID, clientSecret)

	dir := t.TempDir()
	writeDotenv(t, dir, strings.Join([]string{
		"PORT=not-a-port",
		"SESSION_STORE=redis://127.0.0.1:1",
		"APP_BASE_URL=https://dotenv.example.com",
		"AUTH0_DOMAIN=" + idp.domain,
		"AUTH0_CLIENT_ID=dotenv-client",
		"AUTH0_CLIENT_SECRET=" + clientSecret,
	}, "\n")+"\n")
	startWebapp(t, dir, port, baseEnv(dir, map[string]string{
		"SSL_CERT_FILE":   idp.certFile,
		"PORT":            strconv.Itoa(port),
		"SESSION_STORE":   "sqlite:" + filepath.Join(dir, "s.db"),
		"APP_BASE_URL":    appBase,
		"AUTH0_CLIENT_ID": clientID,
		"AUTH0_AUDIENCE":  "https://api.example.com",
	}))

	b, _ := newBrowser(t, idp.srv.Client().Transport.(*http.Transport))
	p := b.NoRedirects().Get(appBase + "/login")
	loc, err := url.Parse(p.Header.Get("Location"))
	if p.Status != http.StatusFound || err != nil || loc.Host != idp.domain {
		t.Fatalf("GET /login: want a 302 to the provider at %s (the domain from .env), got %d to %q:\n%s", idp.domain, p.Status, p.Header.Get("Location"), p.Body)
	}
	q := loc.Query()
	if got := q.Get("client_id"); got != clientID {
		t.Errorf("client_id = %q, want %q from the environment, not dotenv-client from .env", got, clientID)
	}
	if got := q.Get("redirect_uri"); got != appBase+"/callback" {
		t.Errorf("redirect_uri = %q, want %q from the environment's APP_BASE_URL", got, appBase+"/callback")
	}
	if got := q.Get("audience"); got != "https://api.example.com" {
		t.Errorf("audience = %q, want AUTH0_AUDIENCE's https://api.example.com", got)
	}
}

// TestBinaryStartupErrors runs misconfigured binaries: each must exit
// non-zero before listening, naming the variables to fix.
func TestBinaryStartupErrors(t *testing.T) {
	bin := webappBinary(t)
	tests := []struct {
		name string
		env  map[string]string
		want []string // in stderr
	}{
		{
			name: "no provider for a public base URL",
			env:  map[string]string{"APP_BASE_URL": "https://app.example.com"},
			want: []string{"AUTH0_DOMAIN", "OIDC_ISSUER", "APP_BASE_URL"},
		},
		{
			name: "both provider kinds",
			env: map[string]string{
				"AUTH0_DOMAIN": "tenant.example.com", "AUTH0_CLIENT_ID": "a", "AUTH0_CLIENT_SECRET": "b",
				"OIDC_ISSUER": "https://idp.example.com", "OIDC_CLIENT_ID": "c", "OIDC_CLIENT_SECRET": "d",
			},
			want: []string{"AUTH0_DOMAIN", "AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET", "OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET"},
		},
		{
			name: "Auth0 domain alone",
			env:  map[string]string{"AUTH0_DOMAIN": "tenant.example.com"},
			want: []string{"AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET"},
		},
		{
			name: "OIDC issuer without its client",
			env:  map[string]string{"OIDC_ISSUER": "https://idp.example.com", "OIDC_CLIENT_ID": "c"},
			want: []string{"OIDC_CLIENT_SECRET"},
		},
		{
			name: "plain http issuer on a public host",
			env:  map[string]string{"OIDC_ISSUER": "http://idp.example.com", "OIDC_CLIENT_ID": "c", "OIDC_CLIENT_SECRET": "d"},
			want: []string{"OIDC_ISSUER", "http", "https"},
		},
		{
			name: "scopes without openid",
			env:  map[string]string{"OIDC_SCOPES": "profile email"},
			want: []string{"OIDC_SCOPES", "openid"},
		},
		{
			name: "unknown session store",
			env:  map[string]string{"SESSION_STORE": "mongodb://127.0.0.1:27017"},
			want: []string{"SESSION_STORE", "sqlite:"},
		},
		{
			name: "empty sqlite path",
			env:  map[string]string{"SESSION_STORE": "sqlite:"},
			want: []string{"SESSION_STORE"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			port := freePort(t)
			vars := map[string]string{"PORT": strconv.Itoa(port)}
			for k, v := range tt.env {
				vars[k] = v
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin)
			cmd.Dir = dir
			cmd.Env = baseEnv(dir, vars)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			out := fmt.Sprintf("--- stdout ---\n%s--- stderr ---\n%s", stdout.String(), stderr.String())
			if ctx.Err() != nil {
				t.Fatalf("webapp kept running instead of refusing its configuration:\n%s", out)
			}
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() == 0 {
				t.Fatalf("webapp: got %v, want a non-zero exit status:\n%s", err, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr does not name %q:\n%s", w, out)
				}
			}
			if strings.Contains(stdout.String(), "serving") {
				t.Errorf("webapp logged that it was serving:\n%s", out)
			}
			if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
				c.Close()
				t.Errorf("something listens on port %d after a refused start", port)
			}
			if _, err := os.Stat(filepath.Join(dir, "sessions.db")); err == nil {
				t.Errorf("a refused start created sessions.db")
			}
		})
	}
}

// TestBinaryUsage: -h and its spellings print the usage on stdout and exit
// 0, with any configuration; a mistaken command line prints the mistake and
// the usage on stderr and exits 2, as Go's own commands do.
func TestBinaryUsage(t *testing.T) {
	bin := webappBinary(t)
	tests := []struct {
		args     []string
		wantExit int
		wantErr  string // first line of stderr; empty: no stderr
	}{
		{[]string{"-h"}, 0, ""},
		{[]string{"-help"}, 0, ""},
		{[]string{"--help"}, 0, ""},
		{[]string{"-bogus"}, 2, "webapp: flag provided but not defined: -bogus"},
		{[]string{"-check-config", "serve"}, 2, `webapp: unexpected arguments ["serve"]: configure with environment variables or .env`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			dir := t.TempDir()
			writeDotenv(t, dir, "PORT=not-a-port\n")
			cmd := exec.Command(bin, tt.args...)
			cmd.Dir = dir
			cmd.Env = baseEnv(dir, map[string]string{"LOG_FORMAT": "xml"})
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			out := fmt.Sprintf("--- stdout ---\n%s--- stderr ---\n%s", stdout.String(), stderr.String())
			var exit *exec.ExitError
			if err != nil && !errors.As(err, &exit) {
				t.Fatal(err)
			}
			if code := cmd.ProcessState.ExitCode(); code != tt.wantExit {
				t.Fatalf("exit status %d, want %d:\n%s", code, tt.wantExit, out)
			}
			usage := stdout.String()
			if tt.wantErr != "" {
				first, rest, _ := strings.Cut(stderr.String(), "\n")
				if first != tt.wantErr {
					t.Errorf("stderr starts %q, want %q", first, tt.wantErr)
				}
				if stdout.Len() != 0 {
					t.Errorf("a mistaken command line printed to stdout:\n%s", out)
				}
				usage = strings.TrimPrefix(rest, "\n")
			} else if stderr.Len() != 0 {
				t.Errorf("-h printed to stderr:\n%s", out)
			}
			checkUsage(t, usage)
		})
	}
}

// TestBinarySessionsSurviveRestart signs in through the embedded development
// provider, stops the app with SIGTERM and starts it again with the same
// SQLite store: the browser is still signed in.
func TestBinarySessionsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	appBase := "http://localhost:" + strconv.Itoa(port) // the default APP_BASE_URL
	env := baseEnv(dir, map[string]string{
		"PORT":          strconv.Itoa(port),
		"SESSION_STORE": "sqlite:" + filepath.Join(dir, "data", "s.db"),
	})

	first := startWebapp(t, dir, port, env)
	b, tr := newBrowser(t, nil)
	p := b.Get(appBase + "/login")
	if p.Status != http.StatusOK || !strings.Contains(p.URL.Path, "/devidp/") {
		t.Fatalf("GET /login: want the development provider's sign-in page, got %d at %s:\n%s", p.Status, p.URL, p.Body)
	}
	p = b.Submit(p.Form(t, "/authorize"), map[string]string{"name": "Grace Hopper", "email": "grace@example.com"})
	if p.Status != http.StatusOK || p.URL.String() != appBase+"/" || !strings.Contains(p.Body, "Welcome Grace Hopper!") {
		t.Fatalf("after sign-in: want Welcome Grace Hopper! at %s/, got %d at %s:\n%s", appBase, p.Status, p.URL, p.Body)
	}

	first.stop(t)
	if !strings.Contains(first.stdout.String(), "shutting down") {
		t.Errorf("first run did not log its shutdown:\n%s", first.output())
	}
	tr.CloseIdleConnections() // the old process's connections are gone

	startWebapp(t, dir, port, env)
	p = b.Get(appBase + "/")
	if p.Status != http.StatusOK || !strings.Contains(p.Body, "Welcome Grace Hopper!") {
		t.Fatalf("after restart: want the same browser still signed in (Welcome Grace Hopper!), got %d:\n%s", p.Status, p.Body)
	}
	// The session's CSRF token survived too: the logout form still works.
	p = b.Submit(p.Form(t, "/logout"), nil)
	if p.Status != http.StatusOK || p.URL.String() != appBase+"/" || !strings.Contains(p.Body, "Welcome Guest") {
		t.Fatalf("logout after restart: want Welcome Guest at %s/, got %d at %s:\n%s", appBase, p.Status, p.URL, p.Body)
	}
}

// checkNoSecretsLogged fails if the app's output holds the client secret, a
// session cookie the browser holds or held, or anything shaped like a JWT.
func checkNoSecretsLogged(t *testing.T, p *proc, b *testclient.Browser, appBase, clientSecret string) {
	t.Helper()
	out := p.output()
	u, _ := url.Parse(appBase)
	leaks := []string{clientSecret}
	for _, c := range b.Client.Jar.Cookies(u) {
		leaks = append(leaks, c.Value)
	}
	for _, s := range leaks {
		if strings.Contains(out, s) {
			t.Errorf("the app's output contains a secret (%d chars)", len(s))
		}
	}
	if regexp.MustCompile(`eyJ[A-Za-z0-9_-]{10,}\.eyJ`).MatchString(out) {
		t.Errorf("the app's output contains a JWT")
	}
}
