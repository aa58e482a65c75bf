package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gologin/gologin/devidp"
)

func TestParseClient(t *testing.T) {
	tests := []struct {
		spec    string
		want    devidp.Client
		wantErr string
	}{
		{
			spec: "app:s3cret:http://localhost:3000/callback",
			want: devidp.Client{ID: "app", Secret: "s3cret",
				RedirectURIs:           []string{"http://localhost:3000/callback"},
				PostLogoutRedirectURIs: []string{"http://localhost:3000/"}},
		},
		{
			spec: "app:s3cret:http://localhost:3000/cb,https://app.test/auth/cb?x=1,http://localhost:3000/other",
			want: devidp.Client{ID: "app", Secret: "s3cret",
				RedirectURIs:           []string{"http://localhost:3000/cb", "https://app.test/auth/cb?x=1", "http://localhost:3000/other"},
				PostLogoutRedirectURIs: []string{"http://localhost:3000/", "https://app.test/"}},
		},
		{
			spec: "app:s3cret:http://localhost:8080/cb|http://localhost:8080/bye,http://localhost:8080/",
			want: devidp.Client{ID: "app", Secret: "s3cret",
				RedirectURIs:           []string{"http://localhost:8080/cb"},
				PostLogoutRedirectURIs: []string{"http://localhost:8080/bye", "http://localhost:8080/"}},
		},
		{
			spec: "app:s3cret:http://localhost:8080/cb|backchannel=http://localhost:8080/backchannel",
			want: devidp.Client{ID: "app", Secret: "s3cret",
				RedirectURIs:           []string{"http://localhost:8080/cb"},
				PostLogoutRedirectURIs: []string{"http://localhost:8080/"},
				BackchannelLogoutURI:   "http://localhost:8080/backchannel"},
		},
		{
			spec: "app:s3cret:http://localhost:8080/cb|backchannel=http://localhost:8080/bc|http://localhost:8080/bye",
			want: devidp.Client{ID: "app", Secret: "s3cret",
				RedirectURIs:           []string{"http://localhost:8080/cb"},
				PostLogoutRedirectURIs: []string{"http://localhost:8080/bye"},
				BackchannelLogoutURI:   "http://localhost:8080/bc"},
		},
		{
			spec: "app:s3cret:http://localhost:8080/cb|par|dpop",
			want: devidp.Client{ID: "app", Secret: "s3cret",
				RedirectURIs:           []string{"http://localhost:8080/cb"},
				PostLogoutRedirectURIs: []string{"http://localhost:8080/"},
				RequirePAR:             true, RequireDPoP: true},
		},
		{spec: "", wantErr: "want id:secret:redirect_uri"},
		{spec: "app", wantErr: "want id:secret:redirect_uri"},
		{spec: "app:s3cret", wantErr: "want id:secret:redirect_uri"},
		{spec: "app:s3cret:", wantErr: "want id:secret:redirect_uri"},
		{spec: ":s3cret:http://localhost/cb", wantErr: "want id:secret:redirect_uri"},
		{spec: "app::http://localhost/cb", wantErr: "want id:secret:redirect_uri"},
		{spec: "app::http://localhost/cb|par", wantErr: "the secret may be empty only with jwks=FILE"},
		{spec: "app::http://localhost/cb|jwks=", wantErr: "jwks= names no file"},
		{spec: "app::http://localhost/cb|jwks=/nonexistent/keys.json", wantErr: "jwks:"},
		// A colon in the secret shifts the URL: caught, not registered wrongly.
		{spec: "app:s3:cret:http://localhost/cb", wantErr: "cannot contain colons"},
		{spec: "app:s3cret:localhost:3000/cb", wantErr: "not an absolute http or https URL"},
		{spec: "app:s3cret:/callback", wantErr: "not an absolute http or https URL"},
		{spec: "app:s3cret:com.example.app:/cb", wantErr: "not an absolute http or https URL"},
		{spec: "app:s3cret:http://localhost/cb#frag", wantErr: "has a fragment"},
		{spec: "app:s3cret:http://localhost/cb,", wantErr: "empty URL"},
		{spec: "app:s3cret:http://localhost/cb|", wantErr: "post-logout redirect URIs: empty URL"},
		{spec: "app:s3cret:http://localhost/cb|http://localhost/|http://localhost/x", wantErr: "more than one list"},
		{spec: "app:s3cret:http://localhost/cb|backchannel=", wantErr: "back-channel logout URI: empty URL"},
		{spec: "app:s3cret:http://localhost/cb|backchannel=/bc", wantErr: "back-channel logout URI"},
		{spec: "app:s3cret:http://localhost/cb|backchannel=http://a/1|backchannel=http://a/2", wantErr: "more than one backchannel"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := parseClient(tt.spec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseClient(%q) = %+v, %v; want an error containing %q", tt.spec, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseClient(%q): %v", tt.spec, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseClient(%q)\n got %+v\nwant %+v", tt.spec, got, tt.want)
			}
		})
	}
}

// writeKeySet writes a JSON Web Key Set of keys to a file and returns
// its name.
func writeKeySet(t *testing.T, keys ...jose.JSONWebKey) string {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

func TestParseClientKeys(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	public := writeKeySet(t, jose.JSONWebKey{Key: key.Public(), KeyID: "k1", Algorithm: "ES256"})
	private := writeKeySet(t, jose.JSONWebKey{Key: key, KeyID: "k1"})
	notASet := filepath.Join(t.TempDir(), "not.json")
	os.WriteFile(notASet, []byte(`{"keys": 1}`), 0o600)

	for _, tt := range []struct {
		name, spec, wantErr string
		wantSecret          string
	}{
		{name: "keys alone", spec: "app::http://localhost/cb|jwks=" + public},
		{name: "keys and a secret", spec: "app:s3cret:http://localhost/cb|jwks=" + public + "|par", wantSecret: "s3cret"},
		{name: "private key", spec: "app::http://localhost/cb|jwks=" + private, wantErr: "holds a private key"},
		{name: "not a key set", spec: "app::http://localhost/cb|jwks=" + notASet, wantErr: "not a JSON Web Key Set"},
		{name: "empty key set", spec: "app::http://localhost/cb|jwks=" + writeKeySet(t), wantErr: "holds no key"},
		{name: "two key sets", spec: "app::http://localhost/cb|jwks=" + public + "|jwks=" + public, wantErr: "more than one jwks="},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseClient(tt.spec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseClient = %+v, %v; want an error containing %q", c, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Secret != tt.wantSecret || len(c.Keys) != 1 || c.Keys[0].KeyID != "k1" || !c.Keys[0].IsPublic() {
				t.Errorf("client %+v, want secret %q and the public key k1", c, tt.wantSecret)
			}
			// The provider accepts the keys.
			if _, err := devidp.New(devidp.Config{Issuer: "http://localhost:9000", Key: testKey(t), Clients: []devidp.Client{c}}); err != nil {
				t.Errorf("devidp.New: %v", err)
			}
		})
	}
}

var testKey = func() func(t *testing.T) *rsa.PrivateKey {
	var once sync.Once
	var key *rsa.PrivateKey
	return func(t *testing.T) *rsa.PrivateKey {
		once.Do(func() {
			var err error
			if key, err = devidp.GenerateKey(); err != nil {
				panic(err)
			}
		})
		return key
	}
}()

func TestParseSettings(t *testing.T) {
	demo := devidp.Client{ID: "demo", Secret: "demo-secret",
		RedirectURIs:           []string{"http://localhost:3000/callback"},
		PostLogoutRedirectURIs: []string{"http://localhost:3000/"}}
	a := devidp.Client{ID: "a", Secret: "1", RedirectURIs: []string{"http://localhost:1/cb"}, PostLogoutRedirectURIs: []string{"http://localhost:1/"}}
	b := devidp.Client{ID: "b", Secret: "2", RedirectURIs: []string{"http://localhost:2/cb"}, PostLogoutRedirectURIs: []string{"http://localhost:2/"}}
	defaults := settings{addr: "127.0.0.1:9000", clients: []devidp.Client{demo}, demo: true,
		keyFile: "devidp-key.pem", name: "Demo User", email: "demo@example.com"}
	with := func(change func(*settings)) settings {
		s := defaults
		change(&s)
		return s
	}

	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    settings
		wantErr string
	}{
		{name: "defaults", want: defaults},
		{
			name: "flags",
			args: []string{"-addr", "[::1]:0", "-issuer", "http://127.0.0.1:7000/idp", "-key", "k.pem", "-name", "Ada", "-email", "ada@example.com",
				"-client", "a:1:http://localhost:1/cb", "-client", "b:2:http://localhost:2/cb"},
			want: settings{addr: "[::1]:0", issuer: "http://127.0.0.1:7000/idp", clients: []devidp.Client{a, b},
				keyFile: "k.pem", name: "Ada", email: "ada@example.com"},
		},
		{
			name: "environment",
			env: map[string]string{"DEVIDP_ADDR": "localhost:9100", "DEVIDP_ISSUER": "http://localhost:9100", "DEVIDP_KEY_FILE": "/tmp/k.pem",
				"DEVIDP_NAME": "Ada", "DEVIDP_EMAIL": "ada@example.com", "DEVIDP_CLIENTS": " a:1:http://localhost:1/cb \n b:2:http://localhost:2/cb "},
			want: settings{addr: "localhost:9100", issuer: "http://localhost:9100", clients: []devidp.Client{a, b},
				keyFile: "/tmp/k.pem", name: "Ada", email: "ada@example.com"},
		},
		{
			name: "flags win over the environment",
			args: []string{"-addr", "127.0.0.1:9200", "-client", "b:2:http://localhost:2/cb"},
			env:  map[string]string{"DEVIDP_ADDR": "127.0.0.1:9100", "DEVIDP_CLIENTS": "a:1:http://localhost:1/cb"},
			want: with(func(s *settings) { s.addr, s.clients, s.demo = "127.0.0.1:9200", []devidp.Client{b}, false }),
		},
		{
			name: "PAR and DPoP nonces by flag",
			args: []string{"-require-par", "-dpop-nonce"},
			want: with(func(s *settings) { s.requirePAR, s.dpopNonce = true, true }),
		},
		{
			name: "PAR and DPoP nonces by the environment",
			env:  map[string]string{"DEVIDP_REQUIRE_PAR": "true", "DEVIDP_DPOP_NONCE": "1"},
			want: with(func(s *settings) { s.requirePAR, s.dpopNonce = true, true }),
		},
		{
			name: "remote allowed by flag",
			args: []string{"-addr", ":9000", "-allow-remote"},
			want: with(func(s *settings) { s.addr, s.allowRemote = ":9000", true }),
		},
		{
			name: "remote allowed by the environment",
			env:  map[string]string{"DEVIDP_ADDR": "0.0.0.0:9000", "DEVIDP_ALLOW_REMOTE": "true"},
			want: with(func(s *settings) { s.addr, s.allowRemote = "0.0.0.0:9000", true }),
		},
		{name: "all interfaces", args: []string{"-addr", ":9000"}, wantErr: "anyone who can reach it could sign in as anyone"},
		{name: "unspecified IPv4", args: []string{"-addr", "0.0.0.0:9000"}, wantErr: "-allow-remote"},
		{name: "other host", env: map[string]string{"DEVIDP_ADDR": "192.168.1.5:9000"}, wantErr: "not a loopback address"},
		{name: "remote refused by the flag", args: []string{"-addr", ":9000", "-allow-remote=false"}, env: map[string]string{"DEVIDP_ALLOW_REMOTE": "true"}, wantErr: "not a loopback address"},
		{name: "bad allow-remote variable", env: map[string]string{"DEVIDP_ALLOW_REMOTE": "maybe"}, wantErr: "DEVIDP_ALLOW_REMOTE"},
		{name: "address without port", args: []string{"-addr", "127.0.0.1"}, wantErr: "missing port"},
		{name: "relative issuer", args: []string{"-issuer", "localhost:9000"}, wantErr: "issuer"},
		{name: "issuer with query", args: []string{"-issuer", "http://localhost:9000/?a=b"}, wantErr: "has a query"},
		{name: "issuer with fragment", args: []string{"-issuer", "http://localhost:9000/#a"}, wantErr: "has a fragment"},
		{name: "bad client flag", args: []string{"-client", "a:1"}, wantErr: "-client"},
		{name: "bad client variable", env: map[string]string{"DEVIDP_CLIENTS": "a:1:http://localhost:1/cb b:2"}, wantErr: "DEVIDP_CLIENTS"},
		{name: "duplicate client", args: []string{"-client", "a:1:http://localhost:1/cb", "-client", "a:2:http://localhost:2/cb"}, wantErr: `client "a" is registered twice`},
		{name: "unknown flag", args: []string{"-port", "9000"}, wantErr: "not defined"},
		{name: "positional argument", args: []string{"serve"}, wantErr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			var stderr bytes.Buffer
			got, err := parseSettings(tt.args, getenv, &stderr)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseSettings = %+v, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseSettings\n got %+v\nwant %+v", got, tt.want)
			}
			if stderr.Len() > 0 {
				t.Errorf("unexpected output: %s", &stderr)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	var stderr bytes.Buffer
	if _, err := parseSettings([]string{"-h"}, func(string) string { return "" }, &stderr); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("parseSettings(-h) error = %v, want flag.ErrHelp", err)
	}
	if err := run(t.Context(), []string{"-h"}, func(string) string { return "" }, io.Discard, &stderr); err != nil {
		t.Fatalf("run(-h) = %v, want nil", err)
	}
	for _, s := range []string{"-client spec", "DEVIDP_CLIENTS", "-allow-remote", "-require-par", "-dpop-nonce", "jwks=FILE"} {
		if !strings.Contains(stderr.String(), s) {
			t.Errorf("usage lacks %q:\n%s", s, &stderr)
		}
	}
}

// lineWriter hands each complete line written to it to a channel, so a test
// can wait for run's start-up report while run goes on serving.
type lineWriter struct {
	mu    sync.Mutex
	buf   []byte
	lines chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		select {
		case w.lines <- string(w.buf[:i]):
		default: // nobody is reading any more
		}
		w.buf = w.buf[i+1:]
	}
}

func TestRunServesDiscovery(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "key.pem")
	ctx, cancel := context.WithCancel(t.Context())
	stdout := &lineWriter{lines: make(chan string, 100)}
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-key", keyFile}, func(string) string { return "" }, stdout, &stderr)
	}()

	var printed []string
	report := make(map[string]string)
	timeout := time.After(30 * time.Second)
	for report["client demo"] == "" {
		select {
		case line := <-stdout.lines:
			printed = append(printed, line)
			k, v, _ := strings.Cut(line, ":")
			report[k] = strings.TrimSpace(v)
			if strings.HasPrefix(line, "client demo ") {
				report["client demo"] = line
			}
		case err := <-done:
			t.Fatalf("run returned %v before serving; stderr: %s", err, &stderr)
		case <-timeout:
			t.Fatalf("no start-up report; got %q", printed)
		}
	}
	issuer, discovery := report["issuer"], report["discovery"]
	_, port, _ := strings.Cut(report["listening"], "127.0.0.1:")
	if port == "" || issuer != "http://localhost:"+port || discovery != issuer+"/.well-known/openid-configuration" {
		t.Fatalf("start-up report %q: want issuer http://localhost:PORT of the listener and its discovery URL", printed)
	}

	resp, err := http.Get(discovery)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Issuer                string `json:"issuer"`
		AuthorizationEndpoint string `json:"authorization_endpoint"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v", discovery, resp.Status, err)
	}
	if doc.Issuer != issuer || doc.AuthorizationEndpoint != issuer+"/authorize" {
		t.Errorf("discovery = %+v, want issuer %s", doc, issuer)
	}

	// The demo client's sign-in page answers: the client is registered.
	authorize := issuer + "/authorize?response_type=code&scope=openid&client_id=demo&redirect_uri=" +
		"http%3A%2F%2Flocalhost%3A3000%2Fcallback&code_challenge_method=S256&code_challenge=" +
		"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" // RFC 7636's example
	if resp, err := http.Get(authorize); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("GET the demo client's sign-in page: %v, %v", resp, err)
	} else {
		resp.Body.Close()
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run after cancel = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not shut down")
	}
	for _, line := range printed {
		if strings.Contains(line, "PRIVATE KEY") {
			t.Errorf("start-up report shows the key: %q", line)
		}
	}
	if _, err := os.Stat(keyFile); err != nil {
		t.Errorf("key file not created: %v", err)
	}
}

func TestRunRefusesBadConfiguration(t *testing.T) {
	for _, args := range [][]string{
		{"-nope"},
		{"-addr", "0.0.0.0:0"},
		{"-client", "demo:secret:not-a-url"},
		{"extra"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			keyFile := filepath.Join(t.TempDir(), "key.pem")
			args := append(args, "-key", keyFile)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			var stdout, stderr bytes.Buffer
			err := run(ctx, args, func(string) string { return "" }, &stdout, &stderr)
			if err == nil {
				t.Fatal("run succeeded, want an error")
			}
			if ctx.Err() != nil {
				t.Fatalf("run served until the deadline instead of failing at once: %v", err)
			}
			if stdout.Len() > 0 || stderr.Len() > 0 {
				t.Errorf("run printed %q %q; want only the returned error", &stdout, &stderr)
			}
			if _, err := os.Stat(keyFile); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("run went on to the key file: %v", err)
			}
		})
	}
}

func TestHomePage(t *testing.T) {
	key, err := devidp.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		issuerPath string
		want       []string // in the page, as HTML
		dontWant   []string // secrets, unescaped text, and what is wrong for this configuration
	}{
		{
			name: "demo client",
			want: []string{"<code>demo</code>", "<code>http://localhost:3000/callback</code>", "<code>http://localhost:3000/</code>",
				"the demo client", "the demo client is then no longer registered"},
			dontWant: []string{"demo-secret"},
		},
		{
			name: "clients given",
			args: []string{
				"-client", "web:<b>s3cret</b>:http://localhost:8080/cb?next=<x>&y=1|backchannel=http://localhost:8080/bc",
				"-client", "api:api-secret:https://api.test/callback,https://api.test/again",
			},
			want: []string{"<code>web</code>", "<code>http://localhost:8080/cb?next=&lt;x&gt;&amp;y=1</code>", "<code>http://localhost:8080/bc</code>",
				"<code>api</code>", "<code>https://api.test/callback</code>", "<code>https://api.test/again</code>", "<code>https://api.test/</code>"},
			dontWant: []string{"s3cret", "api-secret", "<x>", "demo"},
		},
		{
			name: "keys, PAR and DPoP",
			args: []string{"-client", "keys::http://localhost:8080/cb|jwks=" + writeKeySet(t, jose.JSONWebKey{Key: testKey(t).Public(), KeyID: "k1"}) + "|par|dpop",
				"-client", "long:a secret of more than thirty-two bytes:http://localhost:8081/cb", "-require-par", "-dpop-nonce"},
			want: []string{"<code>keys</code>", "Authenticates with: private_key_jwt (1 key).", "Must push its authorization requests (PAR).",
				"Must send DPoP proofs", "Authenticates with: client_secret_basic, client_secret_post, client_secret_jwt.",
				"Every authorization request must be pushed", "DPoP proofs must carry the provider's nonce"},
			dontWant: []string{"thirty-two bytes", "demo"},
		},
		{
			name:       "issuer with a path",
			issuerPath: "/idp",
			want:       []string{`href="/idp/style.css"`, "<code>demo</code>"},
			dontWant:   []string{"demo-secret"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseSettings(tt.args, func(string) string { return "" }, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewUnstartedServer(nil)
			issuer := "http://" + srv.Listener.Addr().String() + tt.issuerPath
			if srv.Config.Handler, err = newHandler(cfg, issuer, key); err != nil {
				t.Fatal(err)
			}
			srv.Start()
			defer srv.Close()

			status, header, page := get(t, srv.URL+"/")
			if status != http.StatusOK || header.Get("Content-Type") != "text/html; charset=utf-8" {
				t.Fatalf("GET /: %d %s, want 200 HTML:\n%s", status, header.Get("Content-Type"), page)
			}
			discovery := issuer + "/.well-known/openid-configuration"
			want := append([]string{"<code>" + issuer + "</code>", `<a href="` + discovery + `">`, "-client id:secret:redirect_uri", "DEVIDP_CLIENTS"}, tt.want...)
			for _, s := range want {
				if !strings.Contains(page, s) {
					t.Errorf("page lacks %q:\n%s", s, page)
				}
			}
			for _, s := range tt.dontWant {
				if strings.Contains(page, s) {
					t.Errorf("page shows %q:\n%s", s, page)
				}
			}

			// The page's links work.
			if status, _, doc := get(t, discovery); status != http.StatusOK || !strings.Contains(doc, `"issuer":"`+issuer+`"`) {
				t.Errorf("GET %s: %d %s, want the discovery document", discovery, status, doc)
			}
			if status, header, _ := get(t, srv.URL+tt.issuerPath+"/style.css"); status != http.StatusOK || !strings.HasPrefix(header.Get("Content-Type"), "text/css") {
				t.Errorf("GET the style sheet: %d %s", status, header.Get("Content-Type"))
			}
			// Only / itself is the home page.
			if status, _, _ := get(t, srv.URL+"/nothing-here"); status != http.StatusNotFound {
				t.Errorf("GET /nothing-here: %d, want 404", status)
			}
		})
	}
}

func get(t *testing.T, u string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(body)
}
