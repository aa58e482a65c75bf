package storeurl

import (
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gologin/gologin/internal/pgtest"
	"github.com/gologin/gologin/internal/testskip"
	"github.com/gologin/gologin/sessionstore/storetest"
)

func TestMain(m *testing.M) { testskip.Main(m, "storeurl") }

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		location string
		unknown  bool
	}{
		{location: "memory"},
		{location: "sqlite:" + filepath.Join(dir, "sessions.db")},
		{location: "mysql://user:secret@x/db", unknown: true},
		{location: "redis:/x", unknown: true},
		{location: "postgres:x", unknown: true},
		{location: "sqlite:", unknown: true},
		{location: "", unknown: true},
		{location: "Memory", unknown: true},
	}
	for _, tt := range tests {
		t.Run(tt.location, func(t *testing.T) {
			s, err := Open(tt.location, Options{Timeout: time.Second})
			if tt.unknown {
				if !errors.Is(err, ErrUnknown) {
					t.Fatalf("Open(%q) error = %v, want ErrUnknown", tt.location, err)
				}
				if s != nil {
					t.Errorf("Open(%q) returned a store with its error", tt.location)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("Open(%q) error %q reveals the password", tt.location, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(%q): %v", tt.location, err)
			}
			t.Cleanup(func() { s.Close() })
			if err := s.Ping(context.Background()); err != nil {
				t.Fatalf("Ping: %v", err)
			}
			b := storetest.Record(t, "sid-1", "user-1", time.Now().Add(time.Hour))
			storetest.Commit(t, s, "tok", b)
			storetest.MustFind(t, s, "tok", b)
		})
	}
}

// TestOpenSharedStores opens the Redis and Postgres stores through Open, as
// the app does.
func TestOpenSharedStores(t *testing.T) {
	tests := []struct {
		name     string
		location func(t *testing.T) string
	}{
		{"redis", func(t *testing.T) string {
			return testskip.ServerURL(t, "TEST_REDIS_URL", "start redis-server and set it to run the Redis store tests")
		}},
		{"postgres", func(t *testing.T) string {
			return pgtest.Schema(t, testskip.ServerURL(t, "TEST_POSTGRES_URL", "start PostgreSQL and set it to run the Postgres store tests"), "gologin_test_")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(tt.location(t), Options{Timeout: time.Second})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			if err := s.Ping(context.Background()); err != nil {
				t.Fatalf("Ping: %v", err)
			}
			// Open uses the app's key prefix on Redis: a token of this
			// test's own, deleted afterwards, keeps clear of other data.
			token := "test-open-" + rand.Text()
			b := storetest.Record(t, "sid-"+token, "user-"+token, time.Now().Add(time.Hour))
			storetest.Commit(t, s, token, b)
			storetest.MustFind(t, s, token, b)
			n, err := s.DeleteBySID(context.Background(), "sid-"+token)
			storetest.WantDeleted(t, "DeleteBySID", n, err, 1)
		})
	}
}

func TestDescribe(t *testing.T) {
	tests := map[string]string{
		"memory":                               "memory",
		"sqlite:/var/lib/gologin/sessions.db":  "sqlite",
		"redis://user:secret@cache:6379/2":     "redis",
		"rediss://:secret@cache:6380/0":        "redis",
		"postgres://app:secret@db/gologin":     "postgres",
		"postgresql://app:secret@db/gologin?x": "postgres",
		"mysql://app:secret@db/gologin":        "mysql",
	}
	for location, want := range tests {
		if got := Describe(location); got != want {
			t.Errorf("Describe(%q) = %q, want %q", location, got, want)
		}
	}
}

func TestSQLitePath(t *testing.T) {
	for location, want := range map[string]string{"sqlite:sessions.db": "sessions.db", "sqlite:/var/lib/x.db": "/var/lib/x.db", "memory": "", "redis://cache:6379/0": ""} {
		l, err := Parse(location)
		if err != nil {
			t.Fatalf("Parse(%q): %v", location, err)
		}
		if got, ok := l.SQLitePath(); got != want || ok != (want != "") {
			t.Errorf("Parse(%q).SQLitePath() = %q, %v; want %q", location, got, ok, want)
		}
	}
}
