package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gologin/gologin/devidp/devidptest"
	"github.com/gologin/gologin/internal/cli"
	"github.com/gologin/gologin/internal/config"
)

func TestCheckConfig(t *testing.T) {
	_, idp := devidptest.NewServer(t)
	// -check-config binds nothing, so ports in use do not fail it.
	busy, busyMetrics := fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))
	occupy(t, busy)
	occupy(t, busyMetrics)

	tests := []struct {
		name    string
		env     map[string]string
		wantErr string // empty: success
		wantOut string
	}{
		{"development provider", nil, "", "embedded development provider"},
		{"reachable provider", map[string]string{"OIDC_ISSUER": idp.Issuer(), "OIDC_CLIENT_ID": "c", "OIDC_CLIENT_SECRET": "s"},
			"", "discovery document of " + idp.Issuer() + " fetched"},
		{"unreachable provider", map[string]string{"OIDC_ISSUER": "http://127.0.0.1:1", "OIDC_CLIENT_ID": "c", "OIDC_CLIENT_SECRET": "s", "PROVIDER_TIMEOUT": "2s"},
			"provider http://127.0.0.1:1", ""},
		{"invalid configuration", map[string]string{"PORT": "x", "LOG_FORMAT": "xml"}, "LOG_FORMAT", ""},
		{"development provider on all interfaces", map[string]string{"LISTEN_ADDR": ":3000"}, "LISTEN_ADDR", ""},
		{"ports in use", map[string]string{"LISTEN_ADDR": busy, "METRICS_ADDR": busyMetrics}, "", "configuration valid"},
		// The app would start and answer 503; the check says why.
		{"session store unreachable", map[string]string{"SESSION_STORE": fmt.Sprintf("redis://127.0.0.1:%d/0", freePort(t))}, "SESSION_STORE=redis", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"SESSION_STORE": "sqlite:" + filepath.Join(t.TempDir(), "s.db")}
			for k, v := range tt.env {
				env[k] = v
			}
			var out lockedBuffer // the app logs from its own goroutines too
			err := run(context.Background(), []string{"webapp", "-check-config"}, func(k string) string { return env[k] }, &out)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("got %v, want success; output:\n%s", err, out.String())
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("got %v, want an error naming %q", err, tt.wantErr)
			}
			if !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("output lacks %q:\n%s", tt.wantOut, out.String())
			}
		})
	}
}

func TestJSONLogs(t *testing.T) {
	env := map[string]string{"LOG_FORMAT": "json", "SESSION_STORE": "memory"}
	var out lockedBuffer
	if err := run(context.Background(), []string{"webapp", "-check-config"}, func(k string) string { return env[k] }, &out); err != nil {
		t.Fatal(err)
	}
	var logged int
	for _, line := range strings.Split(out.String(), "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec["level"] == nil || rec["msg"] == nil {
			t.Errorf("log line is not a JSON record: %s", line)
		}
		logged++
	}
	if logged == 0 {
		t.Fatalf("no JSON log lines in:\n%s", out.String())
	}
}

// freePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// lockedBuffer is a bytes.Buffer safe for a process to write while a test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// occupy listens on addr until the test ends, so that the app cannot. If
// something else listens there already, so much the better.
func occupy(t *testing.T, addr string) {
	if ln, err := net.Listen("tcp", addr); err == nil {
		t.Cleanup(func() { ln.Close() })
	}
}

// serve runs the app in this process with the memory store and env on a
// free loopback port until the test ends, and returns its URL and output.
func serve(t *testing.T, env map[string]string) (string, *lockedBuffer) {
	t.Helper()
	base := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	vars := map[string]string{"SESSION_STORE": "memory", "APP_BASE_URL": base, "LISTEN_ADDR": strings.TrimPrefix(base, "http://")}
	maps.Copy(vars, env)
	ctx, cancel := context.WithCancel(context.Background())
	out := new(lockedBuffer)
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"webapp"}, func(k string) string { return vars[k] }, out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run after its context ended: %v", err)
		}
	})
	for range 400 {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("run returned before serving: %v\n%s", err, out.String())
		default:
		}
		if p := get(t, base+"/healthz"); p.status == http.StatusOK {
			return base, out
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("the app never answered /healthz:\n%s", out.String())
	return "", nil
}

type response struct {
	status int
	header http.Header
	body   string
}

// get fetches url; status 0 when nothing answers.
func get(t *testing.T, url string) response {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return response{}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, string(b)}
}

// TestMetricsListener: /metrics is served on METRICS_ADDR, uncached, and
// never on the app's listener. A busy METRICS_ADDR stops the app; a busy
// default address, as with a second instance on the machine, only costs
// the metrics, with a warning that says how to get them.
func TestMetricsListener(t *testing.T) {
	t.Run("METRICS_ADDR set", func(t *testing.T) {
		metrics := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		base, _ := serve(t, map[string]string{"METRICS_ADDR": metrics})
		p := get(t, "http://"+metrics+"/metrics")
		if p.status != http.StatusOK || !strings.Contains(p.body, "webapp_http_requests_total") {
			t.Fatalf("GET /metrics on METRICS_ADDR: %d, want the metrics:\n%.500s", p.status, p.body)
		}
		if got := p.header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("metrics Cache-Control %q, want no-store", got)
		}
		if p := get(t, base+"/metrics"); p.status != http.StatusNotFound {
			t.Errorf("GET /metrics on the app's listener: %d, want 404", p.status)
		}
	})
	t.Run("METRICS_ADDR set and busy", func(t *testing.T) {
		metrics := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		occupy(t, metrics)
		listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		env := map[string]string{"SESSION_STORE": "memory", "LISTEN_ADDR": listen, "APP_BASE_URL": "http://" + listen, "METRICS_ADDR": metrics}
		var out lockedBuffer
		err := run(context.Background(), []string{"webapp"}, func(k string) string { return env[k] }, &out)
		if err == nil || !strings.Contains(err.Error(), "METRICS_ADDR") {
			t.Fatalf("run with a busy METRICS_ADDR: %v, want an error naming METRICS_ADDR\n%s", err, out.String())
		}
		if p := get(t, "http://"+listen+"/healthz"); p.status != 0 {
			t.Errorf("the app's port answers %d after a refused start", p.status)
		}
	})
	t.Run("default address busy", func(t *testing.T) {
		occupy(t, config.DefaultMetricsAddr)
		base, out := serve(t, nil)
		if p := get(t, base+"/"); p.status != http.StatusOK || !strings.Contains(p.body, "Welcome Guest") {
			t.Fatalf("GET /: %d, want the home page", p.status)
		}
		if log := out.String(); !strings.Contains(log, "level=WARN msg=\"metrics are not served") || !strings.Contains(log, "set METRICS_ADDR") {
			t.Errorf("no warning that metrics are not served and how to set METRICS_ADDR:\n%s", log)
		}
	})
	t.Run("METRICS_ADDR off", func(t *testing.T) {
		base, out := serve(t, map[string]string{"METRICS_ADDR": "off"})
		if p := get(t, base+"/metrics"); p.status != http.StatusNotFound {
			t.Errorf("GET /metrics on the app's listener: %d, want 404", p.status)
		}
		if log := out.String(); strings.Contains(log, "serving metrics") || strings.Contains(log, "metrics are not served") {
			t.Errorf("METRICS_ADDR=off, yet the app tried to serve metrics:\n%s", log)
		}
	})
}

// TestUsage: -h, -help and --help print the usage and succeed, even with a
// broken configuration; a mistaken command line is a usage error, which
// main prints with the usage, exiting 2. The usage lists every variable of
// README's configuration table with its default, and every variable the
// configuration is read from.
// TestPrintJWKS prints the public key set of OIDC_CLIENT_KEY_FILE, as a
// user does to register the client's key with the provider.
func TestPrintJWKS(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	file := filepath.Join(t.TempDir(), "client-key.pem")
	os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	env := map[string]string{"OIDC_ISSUER": "https://op.example", "OIDC_CLIENT_ID": "app", "OIDC_CLIENT_KEY_FILE": file}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"webapp", "-print-jwks"}, func(k string) string { return env[k] }, &out); err != nil {
		t.Fatalf("-print-jwks: %v", err)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(out.Bytes(), &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("-print-jwks printed %s (%v), want a JWK set of one key", out.String(), err)
	}
	k := set.Keys[0]
	if k["kty"] != "EC" || k["alg"] != "ES256" || k["kid"] == "" || k["d"] != nil {
		t.Errorf("printed key %v: want the public EC key with alg ES256 and a kid", k)
	}
	delete(env, "OIDC_CLIENT_KEY_FILE")
	env["OIDC_CLIENT_SECRET"] = "s"
	if err := run(context.Background(), []string{"webapp", "-print-jwks"}, func(k string) string { return env[k] }, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "OIDC_CLIENT_KEY_FILE") {
		t.Errorf("-print-jwks without a key file: %v, want an error naming OIDC_CLIENT_KEY_FILE", err)
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string // empty: success
	}{
		{[]string{"-h"}, ""},
		{[]string{"-help"}, ""},
		{[]string{"--help"}, ""},
		{[]string{"-check-config", "-h"}, ""},
		{[]string{"-bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"-check-config=maybe"}, "-check-config"},
		{[]string{"serve"}, `unexpected arguments ["serve"]`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			env := map[string]string{"PORT": "not-a-port", "LOG_FORMAT": "xml"}
			var out bytes.Buffer
			err := run(context.Background(), append([]string{"webapp"}, tt.args...), func(k string) string { return env[k] }, &out)
			usage := out.String()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("got %v, want success", err)
				}
			} else {
				var uerr *cli.UsageError
				if !errors.As(err, &uerr) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want a usage error naming %q", err, tt.wantErr)
				}
				if usage != "" {
					t.Errorf("a usage error printed to stdout:\n%s", usage)
				}
				usage = uerr.Usage
			}
			checkUsage(t, usage)
		})
	}
}

// checkUsage fails unless usage shows the flag and every variable.
func checkUsage(t *testing.T, usage string) {
	t.Helper()
	if !strings.HasPrefix(usage, "Usage: webapp") || !strings.Contains(usage, "\n  -check-config\n") {
		t.Fatalf("usage lacks its first line or -check-config:\n%s", usage)
	}
	// Variables are listed as flags are: "  NAME[, NAME] [(default D)]",
	// then the meaning on a line of its own.
	listed := make(map[string]string) // name: its line
	lines := strings.Split(usage, "\n")
	for i, line := range lines {
		names, ok := strings.CutPrefix(line, "  ")
		if !ok || names == "" || names[0] == ' ' || names[0] == '-' {
			continue
		}
		if i+1 == len(lines) || !strings.HasPrefix(lines[i+1], "    \t") || len(lines[i+1]) == len("    \t") {
			t.Errorf("no meaning under %q", line)
		}
		names, _, _ = strings.Cut(names, " (")
		for n := range strings.SplitSeq(names, ", ") {
			listed[n] = line
		}
	}
	for _, v := range readmeVariables(t) {
		line, ok := listed[v.name]
		if !ok {
			t.Errorf("usage does not list %s, which README's configuration table has", v.name)
		} else if v.def != "" && !strings.Contains(line, "(default "+v.def+")") {
			t.Errorf("usage gives %q, want README's default %s", line, v.def)
		}
	}
	for _, name := range configVariables() {
		if _, ok := listed[name]; !ok {
			t.Errorf("usage does not list %s, which the configuration is read from", name)
		}
	}
}

type readmeVariable struct{ name, def string }

// readmeVariables are the rows of README's configuration table: the
// variables and their defaults, when the default is a value.
func readmeVariables(t *testing.T) []readmeVariable {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(readme), "\n## Configuration\n")
	section, _, _ = strings.Cut(section, "\n## ")
	name := regexp.MustCompile("`([A-Z][A-Z0-9_]*)`")
	value := regexp.MustCompile("^`([^`]+)`$")
	var vars []readmeVariable
	for line := range strings.SplitSeq(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || !strings.HasPrefix(line, "| `") {
			continue
		}
		var def string
		if m := value.FindStringSubmatch(strings.TrimSpace(cells[2])); m != nil {
			def = m[1]
		}
		for _, m := range name.FindAllStringSubmatch(cells[1], -1) {
			vars = append(vars, readmeVariable{m[1], def})
		}
	}
	if len(vars) < 20 {
		t.Fatalf("found %d variables in README's configuration table: has its format changed?", len(vars))
	}
	return vars
}

// configVariables are the variables config.Load asks for, with each kind
// of provider.
func configVariables() []string {
	asked := make(map[string]bool)
	for _, env := range []map[string]string{
		nil,
		{"AUTH0_DOMAIN": "tenant.example.com", "AUTH0_CLIENT_ID": "a", "AUTH0_CLIENT_SECRET": "b"},
		{"OIDC_ISSUER": "https://idp.example.com", "OIDC_CLIENT_ID": "c", "OIDC_CLIENT_SECRET": "d"},
	} {
		config.Load(func(k string) string { asked[k] = true; return env[k] })
	}
	return slices.Sorted(maps.Keys(asked))
}

// TestBusyPort: when a port the app needs is taken, run fails before it
// builds the app (no request to the provider, no session store created)
// and says which variables choose the port.
func TestBusyPort(t *testing.T) {
	var requests atomic.Int64
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
	}))
	t.Cleanup(idp.Close)

	busy := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	occupy(t, busy)
	_, busyPort, _ := net.SplitHostPort(busy)
	free := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	tests := []struct {
		name string
		env  map[string]string
		want []string // in the error
	}{
		{"PORT", map[string]string{"PORT": busyPort},
			[]string{"cannot listen on " + busy + " (LISTEN_ADDR)", "set PORT or LISTEN_ADDR to a free port"}},
		{"LISTEN_ADDR", map[string]string{"PORT": "3000", "LISTEN_ADDR": busy},
			[]string{"cannot listen on " + busy + " (LISTEN_ADDR)", "set LISTEN_ADDR", "overrides PORT"}},
		{"METRICS_ADDR", map[string]string{"LISTEN_ADDR": free, "METRICS_ADDR": busy},
			[]string{"cannot listen on " + busy + " (METRICS_ADDR)", "set METRICS_ADDR", "off"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "s.db")
			env := map[string]string{
				"OIDC_ISSUER": idp.URL, "OIDC_CLIENT_ID": "c", "OIDC_CLIENT_SECRET": "s",
				"SESSION_STORE": "sqlite:" + db, "METRICS_ADDR": "off",
			}
			maps.Copy(env, tt.env)
			var out lockedBuffer
			err := run(context.Background(), []string{"webapp"}, func(k string) string { return env[k] }, &out)
			if err == nil {
				t.Fatalf("run succeeded with %s in use:\n%s", busy, out.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if n := requests.Load(); n != 0 {
				t.Errorf("the provider got %d requests from an app that could not listen", n)
			}
			if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the session store was opened by an app that could not listen (%v)", err)
			}
		})
	}
}
