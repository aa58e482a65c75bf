package app

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gologin/gologin/internal/testclient"
	"github.com/gologin/gologin/internal/testskip"
)

// redisServer is a private redis-server with persistence, so that what it
// held before it stopped is there when it starts again.
type redisServer struct {
	t    *testing.T
	port int
	dir  string
	cmd  *exec.Cmd
}

func startRedisServer(t *testing.T) *redisServer {
	t.Helper()
	r, path := newRedisServer(t)
	r.start(path)
	return r
}

// newRedisServer is a redis-server on a free port, not started yet, and
// the path of the program.
func newRedisServer(t *testing.T) (*redisServer, string) {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server not found: CI must run the Redis outage test")
		}
		testskip.Skipped.Add("redis-server not found", testskip.Services)
		t.Skip("redis-server not found: install Debian's redis-server to run the Redis outage test")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r := &redisServer{t: t, port: port, dir: t.TempDir()}
	t.Cleanup(r.stop)
	return r, path
}

func (r *redisServer) start(path string) {
	r.t.Helper()
	r.cmd = exec.Command(path, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--dir", r.dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	// Wait until it accepts connections (bounded: a readiness poll, not a
	// timed assertion).
	for range 500 {
		if c, err := net.Dial("tcp", r.addr()); err == nil {
			c.Write([]byte("PING\r\n"))
			buf := make([]byte, 7)
			n, _ := c.Read(buf)
			c.Close()
			if strings.HasPrefix(string(buf[:n]), "+PONG") {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.t.Fatal("redis-server did not start")
}

func (r *redisServer) stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		r.cmd = nil
	}
}

func (r *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// TestRedisOutage stops Redis under a signed-in user: pages answer 503 and
// /readyz fails; when Redis is back the app recovers by itself, and the
// session written before the outage is still there.
func TestRedisOutage(t *testing.T) {
	redis := startRedisServer(t)
	base, _ := startApp(t, map[string]string{"SESSION_STORE": "redis://" + redis.addr() + "/0"})
	b := testclient.New(t)
	signInDev(t, b, base, "/login", "Ada", "ada@example.com")
	if p := b.Get(base + "/readyz"); p.Status != http.StatusOK {
		t.Fatalf("/readyz with Redis up: %d", p.Status)
	}

	redis.stop()
	p := b.Get(base + "/")
	if p.Status != http.StatusServiceUnavailable || !strings.Contains(p.Body, "session storage") {
		t.Fatalf("home page with Redis down: want a 503 page, got %d:\n%s", p.Status, p.Body)
	}
	if p := b.Get(base + "/readyz"); p.Status != http.StatusServiceUnavailable || !strings.Contains(p.Body, `"unavailable"`) {
		t.Fatalf("/readyz with Redis down: want 503, got %d %s", p.Status, p.Body)
	}
	if p := b.Get(base + "/healthz"); p.Status != http.StatusOK {
		t.Fatalf("/healthz with Redis down: %d, want 200 (the process is alive)", p.Status)
	}

	path, _ := exec.LookPath("redis-server")
	redis.start(path)
	// The client reconnects on its own; the first request may still meet
	// a dropped connection from before.
	var home testclient.Page
	for range 50 {
		if home = b.Get(base + "/"); home.Status == http.StatusOK {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(home.Body, "Welcome Ada!") {
		t.Fatalf("after Redis came back: want the session from before the outage, got %d:\n%s", home.Status, home.Body)
	}
	if p := b.Get(base + "/readyz"); p.Status != http.StatusOK {
		t.Fatalf("/readyz after Redis came back: %d", p.Status)
	}
}

// TestStartsBeforeTheStore starts the app while its Redis is down, as an
// orchestrator may: it serves, answering 503 and failing /readyz, and once
// Redis starts it signs users in without a restart.
func TestStartsBeforeTheStore(t *testing.T) {
	redis, path := newRedisServer(t)
	base, _ := startApp(t, map[string]string{"SESSION_STORE": "redis://" + redis.addr() + "/0"})
	b := testclient.New(t)
	if p := b.Get(base + "/readyz"); p.Status != http.StatusServiceUnavailable {
		t.Fatalf("/readyz before Redis started: %d, want 503", p.Status)
	}
	if p := b.Get(base + "/healthz"); p.Status != http.StatusOK {
		t.Fatalf("/healthz before Redis started: %d, want 200 (the process is alive)", p.Status)
	}

	redis.start(path)
	var ready testclient.Page
	for range 100 {
		if ready = b.Get(base + "/readyz"); ready.Status == http.StatusOK {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if ready.Status != http.StatusOK {
		t.Fatalf("/readyz after Redis started: %d %s", ready.Status, ready.Body)
	}
	if p := signInDev(t, b, base, "/login", "Ada", "ada@example.com"); !strings.Contains(p.Body, "Welcome Ada!") {
		t.Fatalf("sign-in once Redis is up: got %d:\n%s", p.Status, p.Body)
	}
}
