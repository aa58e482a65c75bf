package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gologin/gologin/internal/cli"
	"github.com/gologin/gologin/internal/config"
	"github.com/gologin/gologin/internal/testclient"
)

func run(ctx context.Context, args []string, env map[string]string, stdout *bytes.Buffer) error {
	return cli.Run(ctx, cli.Gateway, args, func(k string) string { return env[k] }, stdout)
}

// TestUsage: -h describes the gateway and lists every variable its
// configuration is read from.
func TestUsage(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"gateway", "-h"}, nil, &out); err != nil {
		t.Fatal(err)
	}
	usage := out.String()
	if !strings.HasPrefix(usage, "Usage: gateway") || !strings.Contains(usage, "\n  -upstream string\n") {
		t.Fatalf("usage lacks its first line or -upstream:\n%s", usage)
	}
	if !strings.Contains(usage, "  PORT (default 4180)\n") {
		t.Errorf("usage does not give the gateway's default port 4180:\n%s", usage)
	}
	asked := map[string]bool{}
	config.LoadGateway(func(k string) string {
		asked[k] = true
		return map[string]string{"OIDC_ISSUER": "https://idp.example.com", "OIDC_CLIENT_ID": "c", "OIDC_CLIENT_SECRET": "d"}[k]
	})
	for k := range asked {
		if !strings.Contains(usage, "\n  "+k) {
			t.Errorf("usage does not list %s, which the configuration is read from", k)
		}
	}
}

func TestUpstreamRequired(t *testing.T) {
	err := run(context.Background(), []string{"gateway"}, map[string]string{"SESSION_STORE": "memory"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "UPSTREAM_URL") {
		t.Fatalf("without an upstream: %v, want an error naming UPSTREAM_URL", err)
	}
}

// TestProtectsTheUpstream runs the command as the README does, with
// -upstream and nothing else configured, and signs in through it to the
// upstream with the embedded development provider.
func TestProtectsTheUpstream(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "upstream says hello to %s at %s", r.Header.Get("X-Forwarded-Email"), r.URL.RequestURI())
	}))
	t.Cleanup(up.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	ln.Close()
	env := map[string]string{"LISTEN_ADDR": listen, "SESSION_STORE": "memory", "METRICS_ADDR": "off", "LOG_LEVEL": "warn"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"gateway", "-upstream", up.URL}, env, &bytes.Buffer{}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the gateway stopped with %v", err)
		}
	})
	base := "http://localhost:" + strings.Split(listen, ":")[1]
	for ready := false; !ready; {
		select {
		case err := <-done:
			t.Fatalf("the gateway stopped: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		resp, err := http.Get(base + "/_auth/healthz")
		if err == nil {
			resp.Body.Close()
			ready = resp.StatusCode == http.StatusOK
		}
	}

	b := testclient.New(t)
	p := b.Get(base + "/inbox?page=2")
	if !strings.Contains(p.Body, "Development provider") {
		t.Fatalf("a guest at /inbox: want the development provider's sign-in page, got %d at %s", p.Status, p.URL)
	}
	p = b.Submit(p.Form(t, "/authorize"), map[string]string{"name": "Ada", "email": "ada@example.com"})
	if p.Body != "upstream says hello to ada@example.com at /inbox?page=2" {
		t.Errorf("after sign-in: got %q", p.Body)
	}
}

// TestREADMEShowsTheProxyExamples keeps README.md's nginx, Traefik and
// Caddy configurations identical to examples/gateway/, where the nginx one
// is tested against a real nginx.
func TestREADMEShowsTheProxyExamples(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"nginx.conf", "traefik.yml", "Caddyfile"} {
		example, err := os.ReadFile("../../examples/gateway/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(readme, append(append([]byte("\n"), bytes.TrimRight(example, "\n")...), "\n```\n"...)) {
			t.Errorf("README.md's copy of examples/gateway/%s differs: copy the file into it", name)
		}
	}
}
