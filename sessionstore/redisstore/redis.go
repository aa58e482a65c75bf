// Package redisstore is a session store that keeps sessions in a Redis
// server (github.com/redis/go-redis/v9) shared by every instance of an app.
package redisstore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gologin/gologin/internal/storekit"
	"github.com/gologin/gologin/sessionstore"
)

// Store is a sessionstore.Store that keeps sessions in a Redis server shared by every
// instance of the app. Redis expires sessions itself, so there is no purge.
//
// Keys, all under a prefix so the app can share a Redis with others, where
// <token> is the hash of a session's token:
//
//	session:<token>  hash {data, sid, sub}, expiring with the session
//	sid:<sid>        set of the tokens of sid's sessions
//	sub:<sub>        set of the tokens of sub's sessions
//	expiries         sorted set of every token, scored by its expiry (ms)
//	lock:<name>      owner of a held Lock (name hashed), expiring with the lock
//	revoked:<token>  tombstone of a deleted token, expiring by itself
//	format           2 once keys hold hashes of tokens (see dropClearTokens)
//
// Deletes set a tombstone for each token they delete, in the same script,
// and the commit script does nothing for a token that has one; Redis runs
// one script at a time, so a commit and a delete cannot interleave.
//
// The index sets live at least as long as their newest session. A set may
// still list a token whose session has expired or moved to another sid or
// sub; deletes check each session's own fields before acting, so a stale
// entry is never trusted. The scripts compute some key names themselves,
// which a single Redis allows but Redis Cluster does not: this store needs
// one Redis server (or a primary with replicas), version 5 or newer.
type Store struct {
	sessionstore.WithoutContext
	client *redis.Client
	prefix string
	once   sync.Once
	err    error         // from the first Close
	done   chan struct{} // closed by Close: stops connecting

	// revokeTTL is how long deletes revoke tokens: RevokedFor, except in
	// tests of tombstones' expiry.
	revokeTTL time.Duration
}

// defaultRedisPrefix starts every key the store writes.
const defaultRedisPrefix = "gologin:"

// Timeouts for the Redis client, short so that an outage is answered in
// about a second instead of go-redis's defaults (5 s dials and reads, each
// retried). A URL's own dial_timeout, read_timeout, write_timeout,
// pool_timeout or max_retries wins.
const (
	redisDialTimeout = time.Second
	redisIOTimeout   = time.Second
	redisPoolTimeout = time.Second
	// One retry lets a command that met a connection the server has since
	// closed (after a Redis restart, say) succeed on a fresh one.
	redisMaxRetries = 1
)

// Open connects to the Redis server a redis:// or rediss:// URL names
// (redis://[user:pass@]host:port/db) and checks that it answers, within
// ctx. A URL that does not parse or a server that refuses the credentials
// fails Open. A server that cannot be reached does not: the store's calls
// fail until it answers, and the check goes on in the background, logging
// to log (slog.Default() if nil), so an app can start before its Redis.
func Open(ctx context.Context, url string, log *slog.Logger) (*Store, error) {
	return openRedis(ctx, url, defaultRedisPrefix, log)
}

// openRedis is Open with the key prefix as a parameter, so tests can
// share one server without seeing each other's keys.
func openRedis(ctx context.Context, rawURL, prefix string, log *slog.Logger) (*Store, error) {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		// url.Error repeats the URL, password included: keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("redis session store: %w", err)
	}
	if opt.DialTimeout == 0 {
		opt.DialTimeout = redisDialTimeout
	}
	// One dial per attempt: go-redis otherwise tries five times with
	// backoff before failing a command, which multiplies an outage's wait.
	opt.DialerRetries = 1
	if opt.ReadTimeout == 0 {
		opt.ReadTimeout = redisIOTimeout
	}
	if opt.WriteTimeout == 0 {
		opt.WriteTimeout = redisIOTimeout
	}
	if opt.PoolTimeout == 0 {
		opt.PoolTimeout = redisPoolTimeout
	}
	if opt.MaxRetries == 0 {
		opt.MaxRetries = redisMaxRetries
	}
	// Let the caller's deadline (WithTimeout's, in the app) cut a command
	// short too, not only the socket timeouts above.
	opt.ContextTimeoutEnabled = true

	r := &Store{client: redis.NewClient(opt), prefix: prefix, revokeTTL: sessionstore.RevokedFor, done: make(chan struct{})}
	r.WithoutContext = sessionstore.WithoutContext{ContextMethods: r}
	// Checked at once, the server's answer shows a wrong address or
	// password at startup rather than on the first request.
	connect := func(ctx context.Context) error {
		err := r.Ping(ctx)
		if err == nil {
			err = r.dropClearTokens(ctx)
		}
		if err != nil {
			return fmt.Errorf("redis session store %s db %d: %w", opt.Addr, opt.DB, err)
		}
		return nil
	}
	if err := storekit.Connect(ctx, r.done, log, "redis", connect); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// SetLogger sends go-redis's own log lines, such as those of failed
// connections in its pool, to log instead of the standard logger's output.
// It affects every go-redis client in the process.
func SetLogger(log *slog.Logger) { redis.SetLogger(slogPrintf{log}) }

// slogPrintf is go-redis's logging interface over a slog.Logger.
type slogPrintf struct{ log *slog.Logger }

func (l slogPrintf) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, "redis client", "message", fmt.Sprintf(format, v...))
}

// redisFormat is the value of the format key: keys hold hashes of tokens.
const redisFormat = "2"

// dropClearTokens deletes, once per Redis, the records written before keys
// held hashes of tokens: they carry the tokens themselves, and their users
// sign in again. It deletes only keys and members that are not hashes, so
// it harms nothing if instances run it together; that includes the index
// sets' members.
func (r *Store) dropClearTokens(ctx context.Context) error {
	format, err := r.client.Get(ctx, r.prefix+"format").Result()
	if err == nil && format == redisFormat {
		return nil
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	for _, kind := range []string{"session:", "revoked:"} {
		iter := r.client.Scan(ctx, 0, r.prefix+kind+"*", 1000).Iterator()
		for iter.Next(ctx) {
			if key := iter.Val(); !sessionstore.IsHashed(strings.TrimPrefix(key, r.prefix+kind)) {
				if err := r.client.Del(ctx, key).Err(); err != nil {
					return err
				}
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
	}
	// The index sets' members that are tokens themselves.
	for _, kind := range []string{"sid:", "sub:"} {
		sets := r.client.Scan(ctx, 0, r.prefix+kind+"*", 1000).Iterator()
		for sets.Next(ctx) {
			members := r.client.SScan(ctx, sets.Val(), 0, "*", 1000).Iterator()
			for members.Next(ctx) {
				if m := members.Val(); !sessionstore.IsHashed(m) {
					if err := r.client.SRem(ctx, sets.Val(), m).Err(); err != nil {
						return err
					}
				}
			}
			if err := members.Err(); err != nil {
				return err
			}
		}
		if err := sets.Err(); err != nil {
			return err
		}
	}
	iter := r.client.ZScan(ctx, r.expiriesKey(), 0, "*", 1000).Iterator()
	for i := 0; iter.Next(ctx); i++ {
		// ZSCAN yields member, score, member, score...
		if member := iter.Val(); i%2 == 0 && !sessionstore.IsHashed(member) {
			if err := r.client.ZRem(ctx, r.expiriesKey(), member).Err(); err != nil {
				return err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	return r.client.Set(ctx, r.prefix+"format", redisFormat, 0).Err()
}

func (r *Store) sessionKey(token string) string { return r.prefix + "session:" + token }
func (r *Store) revokedKey(token string) string { return r.prefix + "revoked:" + token }
func (r *Store) expiriesKey() string            { return r.prefix + "expiries" }

// revokeMillis is how long deletes revoke tokens, in the whole
// milliseconds PX needs.
func (r *Store) revokeMillis() int64 { return max(r.revokeTTL.Milliseconds(), 1) }

// redisRevoke is Lua that defines revoke(key, ttl), which sets the
// tombstone key to expire in ttl ms, never shortening one.
const redisRevoke = `
local function revoke(key, ttl)
	if redis.call('PTTL', key) < ttl then
		redis.call('SET', key, '1', 'PX', ttl)
	end
end
`

// redisNow is Lua that sets now to the server's clock in milliseconds. The
// scripts judge expiry by the server's clock because that is the clock
// Redis expires keys by.
const redisNow = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// redisCommit stores a session and moves its token between index sets in
// one step, so no reader sees a session indexed under both its old and new
// sid or under neither. It does nothing for a revoked token.
//
// KEYS: session key, expiries, revoked key. ARGV: token, data, sid, sub,
// expiry (unix ms), prefix, sessionstore.AuxPrefix.
var redisCommit = redis.NewScript(`
if redis.call('EXISTS', KEYS[3]) == 1 then
	return 0 -- deleted while the caller held a copy: it stays deleted
end
` + redisNow + `
local skey, zkey = KEYS[1], KEYS[2]
local token, data, sid, sub, prefix = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[6]
local exp = tonumber(ARGV[5])
local expired = exp <= now
local old = redis.call('HMGET', skey, 'sid', 'sub')
local oldSid, oldSub = old[1] or '', old[2] or ''
if oldSid ~= '' and (expired or oldSid ~= sid) then
	redis.call('SREM', prefix .. 'sid:' .. oldSid, token)
end
if oldSub ~= '' and (expired or oldSub ~= sub) then
	redis.call('SREM', prefix .. 'sub:' .. oldSub, token)
end
-- Forget sessions that have expired since the last commit, so the sorted
-- set does not grow without bound.
redis.call('ZREMRANGEBYSCORE', zkey, '-inf', now)
if expired then
	-- Committing an expiry in the past ends the session, as scs expects.
	redis.call('DEL', skey)
	redis.call('ZREM', zkey, token)
	return 0
end
redis.call('HSET', skey, 'data', data, 'sid', sid, 'sub', sub)
redis.call('PEXPIREAT', skey, exp)
-- Auxiliary records are not sessions: Count leaves them out.
if string.sub(token, 1, #ARGV[7]) ~= ARGV[7] then
	redis.call('ZADD', zkey, exp, token)
end
-- An index set must outlive every session it lists, or DeleteBySID would
-- miss a live session; it only ever gets later.
local function index(key)
	redis.call('SADD', key, token)
	local ttl = redis.call('PTTL', key)
	if ttl < 0 or now + ttl < exp then
		redis.call('PEXPIREAT', key, exp)
	end
end
if sid ~= '' then index(prefix .. 'sid:' .. sid) end
if sub ~= '' then index(prefix .. 'sub:' .. sub) end
return 1
`)

// redisDelete deletes a session and its index entries and revokes its
// token, whether or not the session existed.
//
// KEYS: session key, expiries, revoked key. ARGV: token, prefix, how long
// to revoke (ms).
var redisDelete = redis.NewScript(redisRevoke + `
revoke(KEYS[3], tonumber(ARGV[3]))
local rec = redis.call('HMGET', KEYS[1], 'sid', 'sub')
if rec[1] and rec[1] ~= '' then redis.call('SREM', ARGV[2] .. 'sid:' .. rec[1], ARGV[1]) end
if rec[2] and rec[2] ~= '' then redis.call('SREM', ARGV[2] .. 'sub:' .. rec[2], ARGV[1]) end
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('DEL', KEYS[1])
`)

// redisDeleteIndexed deletes every session an index set lists whose own
// field still has the set's value, then the set, and returns how many
// sessions it deleted. Sessions that have expired are already gone and so
// are not counted. It revokes the tokens of the sessions it deletes and of
// those that have expired, as the other stores do: a request that loaded
// one just in time could still write it back. (The set lists a token until
// its session is deleted or moves to another sid or sub.)
//
// Auxiliary records are deleted too but not counted.
//
// KEYS: index set, expiries. ARGV: field ("sid" or "sub"), value, prefix,
// how long to revoke (ms), AuxPrefix.
var redisDeleteIndexed = redis.NewScript(redisRevoke + `
local field, value, prefix, ttl, aux = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local n = 0
for _, token in ipairs(redis.call('SMEMBERS', KEYS[1])) do
	local skey = prefix .. 'session:' .. token
	local rec = redis.call('HMGET', skey, 'sid', 'sub')
	local sid, sub = rec[1] or '', rec[2] or ''
	local match = (field == 'sid' and sid == value) or (field == 'sub' and sub == value)
	-- Every stored session has a sid field, maybe '': none means expired.
	if match or not rec[1] then
		revoke(prefix .. 'revoked:' .. token, ttl)
	end
	if match then
		if sid ~= '' then redis.call('SREM', prefix .. 'sid:' .. sid, token) end
		if sub ~= '' then redis.call('SREM', prefix .. 'sub:' .. sub, token) end
		redis.call('ZREM', KEYS[2], token)
		local deleted = redis.call('DEL', skey)
		if string.sub(token, 1, #aux) ~= aux then n = n + deleted end
	end
end
redis.call('DEL', KEYS[1])
return n
`)

// redisCount counts the unexpired sessions in the expiries sorted set.
//
// KEYS: expiries.
var redisCount = redis.NewScript(redisNow + `
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
`)

// redisUnlock deletes a lock only if it still holds the owner's value, so
// an unlock after the lock lapsed cannot release someone else's lock.
//
// KEYS: lock key. ARGV: owner.
var redisUnlock = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0
`)

// FindCtx implements scs.CtxStore.
func (r *Store) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	b, err := r.client.HGet(ctx, r.sessionKey(sessionstore.HashToken(token)), "data").Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}

// CommitCtx implements scs.CtxStore. Committing a revoked token does
// nothing.
func (r *Store) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	idx, _, _ := sessionstore.ParseIndex(b) // records from other codecs are kept, unindexed
	token = sessionstore.HashToken(token)
	return redisCommit.Run(ctx, r.client,
		[]string{r.sessionKey(token), r.expiriesKey(), r.revokedKey(token)},
		token, b, idx.SID, idx.Subject, expiry.UnixMilli(), r.prefix, sessionstore.AuxPrefix).Err()
}

// DeleteCtx implements scs.CtxStore; it revokes token.
func (r *Store) DeleteCtx(ctx context.Context, token string) error {
	token = sessionstore.HashToken(token)
	return redisDelete.Run(ctx, r.client,
		[]string{r.sessionKey(token), r.expiriesKey(), r.revokedKey(token)},
		token, r.prefix, r.revokeMillis()).Err()
}

// DeleteBySID implements sessionstore.Store.
func (r *Store) DeleteBySID(ctx context.Context, sid string) (int, error) {
	return r.deleteIndexed(ctx, "sid", sid)
}

// DeleteBySubject implements sessionstore.Store.
func (r *Store) DeleteBySubject(ctx context.Context, sub string) (int, error) {
	return r.deleteIndexed(ctx, "sub", sub)
}

func (r *Store) deleteIndexed(ctx context.Context, field, value string) (int, error) {
	if value == "" {
		return 0, nil // unindexed sessions have no set; "" names none of them
	}
	n, err := redisDeleteIndexed.Run(ctx, r.client,
		[]string{r.prefix + field + ":" + value, r.expiriesKey()}, field, value, r.prefix, r.revokeMillis(), sessionstore.AuxPrefix).Int()
	return n, err
}

// Lock implements sessionstore.Store.
func (r *Store) Lock(ctx context.Context, name string, ttl time.Duration) (func(), error) {
	return sessionstore.WaitLock(ctx, func() (func(), error) { return r.TryLock(ctx, name, ttl) })
}

// TryLock implements sessionstore.Store with a key set only if absent (SET NX PX),
// which every process using the server sees; Redis deletes it when ttl
// passes.
func (r *Store) TryLock(ctx context.Context, name string, ttl time.Duration) (func(), error) {
	key := r.prefix + "lock:" + sessionstore.HashToken(name)
	owner := rand.Text()
	ttl = max(ttl, time.Millisecond) // PX needs a positive count of milliseconds
	ok, err := r.client.SetNX(ctx, key, owner, ttl).Result()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err() // the caller's deadline, not a Redis fault
		}
		return nil, err
	}
	if !ok {
		return nil, sessionstore.ErrLocked
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), sessionstore.DefaultTimeout)
		defer cancel()
		redisUnlock.Run(ctx, r.client, []string{key}, owner)
	}, nil
}

// Count implements sessionstore.Store from the expiries sorted set, in O(log n): a SCAN
// of session keys would walk the whole keyspace on every call.
func (r *Store) Count(ctx context.Context) (int, error) {
	return redisCount.Run(ctx, r.client, []string{r.expiriesKey()}).Int()
}

// Ping implements sessionstore.Store.
func (r *Store) Ping(ctx context.Context) error {
	return r.client.Ping(ctx).Err()
}

// Close implements sessionstore.Store; it closes the client's connections.
func (r *Store) Close() error {
	r.once.Do(func() {
		close(r.done)
		r.err = r.client.Close()
	})
	return r.err
}
