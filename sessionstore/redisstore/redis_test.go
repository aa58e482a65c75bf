package redisstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gologin/gologin/internal/testskip"
	"github.com/gologin/gologin/sessionstore"
	"github.com/gologin/gologin/sessionstore/storetest"
)

func TestMain(m *testing.M) { testskip.Main(m, "redisstore") }

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) sessionstore.Store { return openTestRedis(t) }, storetest.Options{
		ShortenRevocation: func(s sessionstore.Store, d time.Duration) { s.(*Store).revokeTTL = d },
	})
}

// openTestRedis opens a Redis store on TEST_REDIS_URL under a key prefix of
// its own, so tests share the server without seeing each other's keys, and
// deletes its keys afterwards.
func openTestRedis(t *testing.T) *Store {
	t.Helper()
	url := testskip.ServerURL(t, "TEST_REDIS_URL", "start redis-server and set it to run the Redis store tests")
	return openRedisPrefix(t, url, testRedisPrefix())
}

func testRedisPrefix() string { return "gologin-test:" + rand.Text() + ":" }

// openRedisPrefix opens a Redis store under prefix and, at cleanup, deletes
// the keys under prefix and closes the store.
func openRedisPrefix(t *testing.T, url, prefix string) *Store {
	t.Helper()
	s, err := openRedis(context.Background(), url, prefix, nil)
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
	url := testskip.ServerURL(t, "TEST_REDIS_URL", "start redis-server and set it to run the Redis store tests")
	prefix := testRedisPrefix()
	b := storetest.Record(t, "sid-1", "user-1", time.Now().Add(time.Hour))

	s, err := openRedis(context.Background(), url, prefix, nil)
	if err != nil {
		t.Fatalf("openRedis: %v", err)
	}
	storetest.Commit(t, s, "tok", b)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// A new client on the same server and prefix, as after a restart.
	s = openRedisPrefix(t, url, prefix)
	storetest.MustFind(t, s, "tok", b)
	if n, err := s.Count(context.Background()); err != nil || n != 1 {
		t.Fatalf("Count after reopen = %d, %v; want 1", n, err)
	}
	n, err := s.DeleteBySID(context.Background(), "sid-1")
	storetest.WantDeleted(t, "DeleteBySID after reopen", n, err, 1)
}

func TestRedisKeyPrefixIsolates(t *testing.T) {
	a := openTestRedis(t)
	url := os.Getenv("TEST_REDIS_URL")
	b := openRedisPrefix(t, url, testRedisPrefix())
	ctx := context.Background()

	rec := storetest.Record(t, "sid-1", "user-1", time.Now().Add(time.Hour))
	storetest.Commit(t, a, "tok", rec)
	if n, err := a.client.Exists(ctx, a.prefix+"session:"+sessionstore.HashToken("tok")).Result(); err != nil || n != 1 {
		t.Fatalf("session key under the store's prefix: exists = %d, %v; want 1", n, err)
	}
	storetest.MustNotFind(t, b, "tok")
	n, err := b.DeleteBySubject(ctx, "user-1")
	storetest.WantDeleted(t, "DeleteBySubject under another prefix", n, err, 0)
	if n, err := b.Count(ctx); err != nil || n != 0 {
		t.Fatalf("Count under another prefix = %d, %v; want 0", n, err)
	}
	storetest.MustFind(t, a, "tok", rec)
}

func TestOpenErrorsHideThePassword(t *testing.T) {
	// A URL that does not parse fails Open.
	if s, err := Open(context.Background(), "redis://user:secret@127.0.0.1:notaport/0", nil); err == nil {
		s.Close()
		t.Fatal("Open of a URL that does not parse succeeded, want an error")
	} else if strings.Contains(err.Error(), "secret") {
		t.Errorf("Open error %q reveals the password", err)
	}
	// A server that cannot be reached does not, and its warnings and the
	// store's errors keep the password to themselves.
	var logged bytes.Buffer
	s, err := Open(context.Background(), "redis://user:secret@127.0.0.1:1/0", slog.New(slog.NewTextHandler(&logged, nil)))
	if err != nil {
		t.Fatalf("Open with the server unreachable: %v, want a store that connects later", err)
	}
	defer s.Close()
	perr := s.Ping(context.Background())
	if perr == nil {
		t.Fatal("Ping succeeded with nothing listening")
	}
	if strings.Contains(perr.Error(), "secret") || strings.Contains(logged.String(), "secret") {
		t.Errorf("the password shows in %q or the log:\n%s", perr, logged.String())
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
		testskip.Skipped.Add("redis-server not on PATH", testskip.Services) // .ci/services installs it
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

	// Opened before its server starts, the store answers errors, then
	// connects by itself, clearing records of the old format.
	s, err := openRedis(context.Background(), "redis://127.0.0.1:"+port+"/0", testRedisPrefix(), nil)
	if err != nil {
		t.Fatalf("openRedis with the server down: %v, want a store that connects later", err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Ping(context.Background()); err == nil {
		t.Fatal("Ping succeeded before the server started")
	}
	server := start()
	waitFor(t, func() error {
		if err := s.Ping(context.Background()); err != nil {
			return err
		}
		return s.client.Get(context.Background(), s.prefix+"format").Err()
	})
	b := storetest.Record(t, "sid-1", "user-1", time.Now().Add(time.Hour))
	storetest.Commit(t, s, "tok", b)
	storetest.MustFind(t, s, "tok", b)

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
	waitFor(t, func() error { return s.Ping(context.Background()) })
	// The server kept nothing, so the session is gone, but the store works.
	storetest.MustNotFind(t, s, "tok")
	storetest.Commit(t, s, "tok", b)
	storetest.MustFind(t, s, "tok", b)
	n, err := s.DeleteBySubject(context.Background(), "user-1")
	storetest.WantDeleted(t, "DeleteBySubject after restart", n, err, 1)
}

// waitFor calls ok until it succeeds, failing t after ten seconds.
func waitFor(t *testing.T, ok func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := ok()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing after 10s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
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

// TestEndsSessionsKeptInTheClear writes a session as the program did
// before keys held hashes of tokens: opening the store deletes it, since
// its token may have been read by others, and new sessions work.
func TestEndsSessionsKeptInTheClear(t *testing.T) {
	ctx := context.Background()
	url := testskip.ServerURL(t, "TEST_REDIS_URL", "start redis-server and set it to run the Redis store tests")
	prefix := testRedisPrefix()
	s := openRedisPrefix(t, url, prefix)
	const token = "clear-token-0123456789abcdefghijklmnopqrstu"
	b := storetest.Record(t, "sid-1", "user-1", time.Now().Add(time.Hour))
	if err := s.client.Del(ctx, s.prefix+"format").Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.client.HSet(ctx, s.sessionKey(token), "data", b, "sid", "sid-1", "sub", "user-1").Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.client.ZAdd(ctx, s.expiriesKey(), redis.Z{Score: float64(time.Now().Add(time.Hour).UnixMilli()), Member: token}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.client.SAdd(ctx, s.prefix+"sid:sid-1", token).Err(); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = openRedisPrefix(t, url, prefix)
	storetest.MustNotFind(t, s, token)
	if n, err := s.Count(ctx); err != nil || n != 0 {
		t.Errorf("Count after the upgrade = %d, %v; want 0", n, err)
	}
	if n, _ := s.client.Exists(ctx, s.sessionKey(token)).Result(); n != 0 {
		t.Error("the session kept under its token itself is still there")
	}
	if in, _ := s.client.SIsMember(ctx, s.prefix+"sid:sid-1", token).Result(); in {
		t.Error("an index set still lists the token itself")
	}
	storetest.Commit(t, s, token, b)
	storetest.MustFind(t, s, token, b)
}

// TestKeepsNoTokens reads every key and set member under the store's
// prefix after a session, its tokens record and a lock: the session token
// appears nowhere, only its hash.
func TestKeepsNoTokens(t *testing.T) {
	ctx := context.Background()
	s := openTestRedis(t)
	storetest.KeepsNoTokens(t, s, func() string {
		var out strings.Builder
		iter := s.client.Scan(ctx, 0, s.prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			key := iter.Val()
			out.WriteString(key + "\n")
			members, _ := s.client.SMembers(ctx, key).Result()
			zmembers, _ := s.client.ZRange(ctx, key, 0, -1).Result()
			out.WriteString(strings.Join(append(members, zmembers...), "\n"))
		}
		return out.String()
	})
}
