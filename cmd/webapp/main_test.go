package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gologin/gologin/devidp/devidptest"
	"github.com/gologin/gologin/internal/config"
)

func TestCheckConfig(t *testing.T) {
	_, idp := devidptest.NewServer(t)

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
