// Package sessionstore keeps web sessions server-side for scs session
// managers: the Store interface, the record Codec that indexes sessions, an
// in-process Memory store, and helpers for writing stores. The stores that
// keep sessions in a database are packages of their own, so a program
// links only the driver it uses: sqlitestore, redisstore and postgresstore;
// storeurl opens any of them from a URL, and storetest checks a Store.
//
// Every store implements scs.CtxStore and can also find sessions by the
// OpenID provider's session ID (sid) and by user (sub), which back-channel
// logout and "sign out everywhere" need. Stores learn a session's sid and sub
// from the record itself: use [Codec] as the session manager's codec and put
// the values under [SIDKey] and [SubjectKey].
package sessionstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/alexedwards/scs/v2"
)

// Keys under which a session holds the values a Store indexes.
const (
	SIDKey     = "oidc.sid" // the provider's session ID, from the ID token's sid claim
	SubjectKey = "oidc.sub" // the signed-in user's subject identifier
)

// Store is a server-side session store.
//
// The stores that keep data outside the process (SQLite, Redis,
// PostgreSQL) key each record by the SHA-256 of its token, never by the
// token itself, and lock names likewise: whoever reads the database cannot
// use what they find as a session cookie.
//
// Deleting a session revokes its token. scs keeps a private copy of the
// session for each request and writes the whole copy back with CommitCtx
// when the request ends, so a request that loaded a session before a
// logout, a back-channel logout or "sign out everywhere" would otherwise
// bring it back when it finished, letting a stolen cookie survive.
// DeleteCtx, DeleteBySID and DeleteBySubject therefore leave a tombstone
// for each token they delete, and for two minutes afterwards CommitCtx of
// that token does nothing. Every store checks for the tombstone and writes
// the session in one step that a concurrent delete cannot come between.
type Store interface {
	// CommitCtx of a revoked token does nothing and returns nil: the
	// session is gone, the request's response is already written, and the
	// client's next request is a guest's. DeleteCtx revokes the token
	// whether or not the store held it.
	scs.CtxStore
	// DeleteBySID deletes every session of the provider session sid, and
	// their auxiliary records, revoking their tokens, and reports how many
	// sessions it deleted.
	DeleteBySID(ctx context.Context, sid string) (int, error)
	// DeleteBySubject deletes every session of the user sub, and their
	// auxiliary records, revoking their tokens, and reports how many
	// sessions it deleted.
	DeleteBySubject(ctx context.Context, sub string) (int, error)
	// Lock takes the named lock, shared by every process using the store,
	// waiting until it is free or ctx ends; the lock lapses after ttl if not
	// released. It serialises work on one session, such as a token refresh.
	Lock(ctx context.Context, name string, ttl time.Duration) (unlock func(), err error)
	// TryLock is Lock without the wait: it returns ErrLocked at once when
	// the lock is held. Of several concurrent calls for a free lock, in any
	// processes sharing the store, exactly one takes it, so a lock never
	// released serves as a use-once mark, such as for a logout token's jti.
	TryLock(ctx context.Context, name string, ttl time.Duration) (unlock func(), err error)
	// Count reports how many unexpired sessions the store holds, leaving
	// out auxiliary records (AuxPrefix).
	Count(ctx context.Context) (int, error)
	// Ping reports whether the store answers.
	Ping(ctx context.Context) error
	// Close stops background work and releases the store's resources.
	Close() error
}

// RevokedFor is how long a deleted token stays revoked. It only has to
// outlast the requests that were in flight when the session was deleted,
// since only they hold a copy of the session to write back; a request that
// starts later finds no session. Two minutes is far longer than a request
// should take (each store call is bounded by its timeout), yet short enough
// that the tombstones, which then expire by themselves, stay few. Tokens
// are random and never reused, so a tombstone outliving its purpose harms
// nothing.
const RevokedFor = 2 * time.Minute

// AuxPrefix starts the tokens of auxiliary records: data kept beside a
// session under a key of its own, such as the user's OAuth tokens. Stores
// keep, index, delete and revoke them like sessions, but Count leaves them
// out.
const AuxPrefix = "aux:"

// HashToken is the form in which a store that keeps data outside the
// process keeps a token or lock name: its SHA-256 in hex, after AuxPrefix
// for an auxiliary record's token so that Count can still leave those out.
// A hash without salt or stretching is enough: tokens are 256 random bits.
func HashToken(token string) string {
	prefix := ""
	if strings.HasPrefix(token, AuxPrefix) {
		prefix = AuxPrefix
	}
	sum := sha256.Sum256([]byte(token))
	return prefix + hex.EncodeToString(sum[:])
}

// IsHashed reports whether s has the form HashToken gives.
func IsHashed(s string) bool {
	s = strings.TrimPrefix(s, AuxPrefix)
	if len(s) != 2*sha256.Size {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// DefaultTimeout is a sensible bound for each store call.
const DefaultTimeout = 3 * time.Second

// WithTimeout bounds every call to s by d, so a stuck store answers with an
// error instead of holding requests forever. Each failed call is also
// reported to the onError hooks, for metrics, with the operation's name.
func WithTimeout(s Store, d time.Duration, onError ...func(op string, err error)) Store {
	t := &timeoutStore{s: s, d: d, onError: onError}
	t.WithoutContext = WithoutContext{t}
	return t
}

type timeoutStore struct {
	WithoutContext
	s       Store
	d       time.Duration
	onError []func(op string, err error)
}

func (t *timeoutStore) report(op string, err error) error {
	if err != nil {
		for _, fn := range t.onError {
			fn(op, err)
		}
	}
	return err
}

func (t *timeoutStore) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	b, found, err := t.s.FindCtx(ctx, token)
	return b, found, t.report("find", err)
}

func (t *timeoutStore) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	return t.report("commit", t.s.CommitCtx(ctx, token, b, expiry))
}

func (t *timeoutStore) DeleteCtx(ctx context.Context, token string) error {
	ctx, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	return t.report("delete", t.s.DeleteCtx(ctx, token))
}

func (t *timeoutStore) DeleteBySID(ctx context.Context, sid string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	n, err := t.s.DeleteBySID(ctx, sid)
	return n, t.report("delete_by_sid", err)
}

func (t *timeoutStore) DeleteBySubject(ctx context.Context, sub string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	n, err := t.s.DeleteBySubject(ctx, sub)
	return n, t.report("delete_by_subject", err)
}

// Lock bounds the wait for the lock by the longer of the store timeout and
// ttl: a holder may keep the lock up to ttl, and waiting less would fail
// callers whose turn was coming. The lock itself lasts until unlocked or
// ttl, and stores bound their own unlock calls.
func (t *timeoutStore) Lock(ctx context.Context, name string, ttl time.Duration) (func(), error) {
	ctx, cancel := context.WithTimeout(ctx, max(t.d, ttl))
	defer cancel()
	unlock, err := t.s.Lock(ctx, name, ttl)
	return unlock, t.report("lock", err)
}

func (t *timeoutStore) TryLock(ctx context.Context, name string, ttl time.Duration) (func(), error) {
	ctx, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	unlock, err := t.s.TryLock(ctx, name, ttl)
	if errors.Is(err, ErrLocked) {
		return nil, err // an answer, not a failure of the store
	}
	return unlock, t.report("lock", err)
}

func (t *timeoutStore) Count(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	n, err := t.s.Count(ctx)
	return n, t.report("count", err)
}

func (t *timeoutStore) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	return t.report("ping", t.s.Ping(ctx))
}

func (t *timeoutStore) Close() error { return t.s.Close() }

// ContextMethods are the methods of scs.CtxStore that take a context.
type ContextMethods interface {
	FindCtx(ctx context.Context, token string) ([]byte, bool, error)
	CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error
	DeleteCtx(ctx context.Context, token string) error
}

// WithoutContext gives a store scs.Store's methods, Find, Commit and
// Delete, which scs.CtxStore also requires, as calls of its context
// methods with context.Background(). Embed it in a store and set it to
// the store itself.
type WithoutContext struct{ ContextMethods }

// Find implements scs.Store.
func (w WithoutContext) Find(token string) ([]byte, bool, error) {
	return w.FindCtx(context.Background(), token)
}

// Commit implements scs.Store.
func (w WithoutContext) Commit(token string, b []byte, expiry time.Time) error {
	return w.CommitCtx(context.Background(), token, b, expiry)
}

// Delete implements scs.Store.
func (w WithoutContext) Delete(token string) error {
	return w.DeleteCtx(context.Background(), token)
}
