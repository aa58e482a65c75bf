package sessionstore

import (
	"context"
	"crypto/rand"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gologin/gologin/internal/testskip"
)

// openTestRedis opens a Redis store on TEST_REDIS_URL under a key prefix of
// its own, so tests share the server without seeing each other's keys, and
// deletes its keys afterwards.
func openTestRedis(t *testing.T) *Redis {
	t.Helper()
	url := serverURL(t, "TEST_REDIS_URL", "start redis-server and set it to run the Redis store tests")
	return openRedisPrefix(t, url, testRedisPrefix())
}

func testRedisPrefix() string { return "gologin-test:" + rand.Text() + ":" }

// openRedisPrefix opens a Redis store under prefix and, at cleanup, deletes
// the keys under prefix and closes the store.
func openRedisPrefix(t *testing.T, url, prefix string) *Redis {
	t.Helper()
	s, err := openRedis(url, prefix)
	if err != nil {
		t.Fatalf("openRedis: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// rand.Text is base32, so the prefix holds no glob characters.
		iter := s.client.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			s.client.Del(ctx, iter.Val())
		}
		s.Close()
	})
	return s
}

func TestRedisSurvivesReopen(t *testing.T) {
	url := serverURL(t, "TEST_REDIS_URL", "start redis-server and set it to run the Redis store tests")
	prefix := testRedisPrefix()
	b := record(t, "sid-1", "user-1", time.Now().Add(time.Hour))

	s, err := openRedis(url, prefix)
	if err != nil {
		t.Fatalf("openRedis: %v", err)
	}
	commit(t, s, "tok", b)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// A new client on the same server and prefix, as after a restart.
	s = openRedisPrefix(t, url, prefix)
	mustFind(t, s, "tok", b)
	if n, err := s.Count(context.Background()); err != nil || n != 1 {
		t.Fatalf("Count after reopen = %d, %v; want 1", n, err)
	}
	n, err := s.DeleteBySID(context.Background(), "sid-1")
	wantDeleted(t, "DeleteBySID after reopen", n, err, 1)
}

func TestRedisKeyPrefixIsolates(t *testing.T) {
	a := openTestRedis(t)
	url := os.Getenv("TEST_REDIS_URL")
	b := openRedisPrefix(t, url, testRedisPrefix())
	ctx := context.Background()

	rec := record(t, "sid-1", "user-1", time.Now().Add(time.Hour))
	commit(t, a, "tok", rec)
	if n, err := a.client.Exists(ctx, a.prefix+"session:"+hashed("tok")).Result(); err != nil || n != 1 {
		t.Fatalf("session key under the store's prefix: exists = %d, %v; want 1", n, err)
	}
	mustNotFind(t, b, "tok")
	n, err := b.DeleteBySubject(ctx, "user-1")
	wantDeleted(t, "DeleteBySubject under another prefix", n, err, 0)
	if n, err := b.Count(ctx); err != nil || n != 0 {
		t.Fatalf("Count under another prefix = %d, %v; want 0", n, err)
	}
	mustFind(t, a, "tok", rec)
}

func TestOpenRedisErrorsHideThePassword(t *testing.T) {
	for _, url := range []string{
		"redis://user:secret@127.0.0.1:notaport/0", // does not parse
		"redis://user:secret@127.0.0.1:1/0",        // nothing listens on port 1
	} {
		s, err := OpenRedis(url)
		if err == nil {
			s.Close()
			t.Fatalf("OpenRedis(%q) succeeded, want an error", url)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("OpenRedis error %q reveals the password", err)
		}
	}
}

// TestRedisOutage runs its own redis-server, stops it under a store and
// starts it again: calls must fail promptly while it is down and succeed
// once it is back, with no new store.
func TestRedisOutage(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		msg := "redis-server not on PATH: install it (apt-get install redis-server) to run the Redis outage test"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		skipped.Add("redis-server not on PATH", testskip.Services) // .ci/services installs it
		t.Skip(msg)
	}
	port := freePort(t)
	dir := t.TempDir()
	start := func() *exec.Cmd {
		t.Helper()
		cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", dir)
		if err := cmd.Start(); err != nil {
			t.Fatalf("start redis-server: %v", err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		// Listening means ready: with no persistence there is nothing to load.
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := net.Dial("tcp", "127.0.0.1:"+port)
			if err == nil {
				c.Close()
				return cmd
			}
			if time.Now().After(deadline) {
				t.Fatalf("redis-server on port %s did not start: %v", port, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	stop := func(cmd *exec.Cmd) {
		t.Helper()
		if err := cmd.Process.Kill(); err != nil {
			t.Fatalf("kill redis-server: %v", err)
		}
		cmd.Wait()
	}

	server := start()
	s, err := openRedis("redis://127.0.0.1:"+port+"/0", testRedisPrefix())
	if err != nil {
		t.Fatalf("openRedis: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	b := record(t, "sid-1", "user-1", time.Now().Add(time.Hour))
	commit(t, s, "tok", b)
	mustFind(t, s, "tok", b)

	stop(server)
	// The deadline only keeps a broken client from hanging the test; the
	// store should fail long before it, on its own short timeouts.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.Ping(ctx); err == nil {
		t.Fatal("Ping succeeded with the server down")
	}
	if got, ok, err := s.FindCtx(ctx, "tok"); err == nil || ok || got != nil {
		t.Fatalf("FindCtx with the server down = %q, found %v, err %v; want an error", got, ok, err)
	}
	if err := s.CommitCtx(ctx, "tok", b, time.Now().Add(time.Hour)); err == nil {
		t.Fatal("CommitCtx succeeded with the server down")
	}
	if _, err := s.Lock(ctx, "job", time.Minute); err == nil {
		t.Fatal("Lock succeeded with the server down")
	}

	start()
	// The same store recovers: its pool dials afresh.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := s.Ping(ctx)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ping after restart still fails: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The server kept nothing, so the session is gone, but the store works.
	mustNotFind(t, s, "tok")
	commit(t, s, "tok", b)
	mustFind(t, s, "tok", b)
	n, err := s.DeleteBySubject(context.Background(), "user-1")
	wantDeleted(t, "DeleteBySubject after restart", n, err, 1)
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}
