// Package storeurl opens the session store a location names, such as an
// app's SESSION_STORE setting: "memory", "sqlite:PATH", a redis:// or
// rediss:// URL, or a postgres:// or postgresql:// URL. It is the one place
// that knows every store, so it links every driver; a program that uses
// one store can import that store's package alone.
package storeurl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/gologin/gologin/sessionstore"
	"github.com/gologin/gologin/sessionstore/postgresstore"
	"github.com/gologin/gologin/sessionstore/redisstore"
	"github.com/gologin/gologin/sessionstore/sqlitestore"
)

// ErrUnknown is returned for a location of no store this package knows.
var ErrUnknown = errors.New("unknown session store")

// kind is one kind of store: the prefixes of its locations and how to
// open one. Adding a store is adding a kind.
type kind struct {
	name     string
	prefixes []string
	url      bool // the location is a URL with a host, checked by Parse
	open     func(ctx context.Context, location string, log *slog.Logger) (sessionstore.Store, error)
}

var kinds = []kind{
	{"memory", []string{"memory"}, false, nil},
	{"sqlite", []string{"sqlite:"}, false, func(_ context.Context, location string, _ *slog.Logger) (sessionstore.Store, error) {
		return sqlitestore.Open(strings.TrimPrefix(location, "sqlite:"))
	}},
	{"redis", []string{"redis://", "rediss://"}, true, func(ctx context.Context, location string, log *slog.Logger) (sessionstore.Store, error) {
		return redisstore.Open(ctx, location, log)
	}},
	{"postgres", []string{"postgres://", "postgresql://"}, true, func(ctx context.Context, location string, log *slog.Logger) (sessionstore.Store, error) {
		return postgresstore.Open(ctx, location, log)
	}},
}

// Location is a parsed store location.
type Location struct {
	kind *kind
	raw  string
}

// Parse checks that location names a store: "memory", "sqlite:PATH",
// redis://host..., rediss://..., postgres://host... or postgresql://...;
// the store checks the rest when it opens. Its errors never repeat the
// location, which may carry a password.
func Parse(location string) (Location, error) {
	for i := range kinds {
		k := &kinds[i]
		for _, p := range k.prefixes {
			rest, ok := strings.CutPrefix(location, p)
			if !ok || (k.name == "memory" && rest != "") {
				continue
			}
			if k.name == "sqlite" && rest == "" {
				return Location{}, fmt.Errorf("%w: sqlite: needs a path, such as sqlite:sessions.db", ErrUnknown)
			}
			if u, err := url.Parse(location); k.url && (err != nil || u.Host == "") {
				return Location{}, fmt.Errorf("%w: a %s location needs a host, such as %shost:port", ErrUnknown, k.name, p)
			}
			return Location{kind: k, raw: location}, nil
		}
	}
	// Only the text before the colon: a URL may carry a password.
	prefix, _, _ := strings.Cut(location, ":")
	return Location{}, fmt.Errorf("%w %q: want memory, sqlite:PATH, redis://, rediss://, postgres:// or postgresql://",
		ErrUnknown, prefix)
}

// Kind is the location's kind of store: memory, sqlite, redis or
// postgres. It reveals no credentials, so it may go in logs and pages.
func (l Location) Kind() string { return l.kind.name }

// SQLitePath is the database file of a sqlite location.
func (l Location) SQLitePath() (string, bool) {
	if l.kind == nil || l.kind.name != "sqlite" {
		return "", false
	}
	return strings.TrimPrefix(l.raw, "sqlite:"), true
}

// Describe names a location for status pages and logs without revealing
// credentials: its kind, or the text before its first colon when it names
// no store.
func Describe(location string) string {
	if l, err := Parse(location); err == nil {
		return l.Kind()
	}
	kind, _, _ := strings.Cut(location, ":")
	return kind
}

// Options tune Open.
type Options struct {
	// Timeout bounds every call to a store other than memory, as
	// sessionstore.WithTimeout does. Default: sessionstore.DefaultTimeout.
	Timeout time.Duration
	// OnError, if set, is told of each failed store call, for metrics.
	OnError func(op string, err error)
	// Logger receives the warnings of a shared store that cannot be
	// reached, and go-redis's own log lines. Default: slog.Default().
	Logger *slog.Logger
}

// Open opens the store location names. A location that does not parse, a
// SQLite file that cannot be opened, or a server that refuses the
// credentials fails Open. A Redis or PostgreSQL server that cannot be
// reached does not: its calls fail, so pages answer 503 and readiness
// checks fail, while the store connects in the background.
func Open(location string, opts Options) (sessionstore.Store, error) {
	l, err := Parse(location)
	if err != nil {
		return nil, err
	}
	if l.kind.open == nil {
		// No I/O, and no failure to report: a deadline per call would only
		// cost time on every request.
		return sessionstore.NewMemory(), nil
	}
	if opts.Timeout <= 0 {
		opts.Timeout = sessionstore.DefaultTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if l.kind.name == "redis" {
		redisstore.SetLogger(opts.Logger)
	}
	// Migrating may wait for another instance's migration: allow it at
	// least DefaultTimeout even when calls get less.
	ctx, cancel := context.WithTimeout(context.Background(), max(opts.Timeout, sessionstore.DefaultTimeout))
	defer cancel()
	s, err := l.kind.open(ctx, l.raw, opts.Logger)
	if err != nil {
		return nil, err
	}
	var onError []func(string, error)
	if opts.OnError != nil {
		onError = append(onError, opts.OnError)
	}
	return sessionstore.WithTimeout(s, opts.Timeout, onError...), nil
}
