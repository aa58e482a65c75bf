// Package postgresstore is a session store that keeps sessions in a
// PostgreSQL database (github.com/jackc/pgx/v5) shared by every instance of
// an app.
package postgresstore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gologin/gologin/internal/storekit"
	"github.com/gologin/gologin/sessionstore"
)

// Store is a sessionstore.Store that keeps sessions in a PostgreSQL database shared
// by every instance of the app.
//
// It creates the tables sessions, locks, revoked and schema_migrations in
// the first schema of the connection's search_path; to keep them apart from
// other tables, give the store its own schema, e.g. with
// ?search_path=gologin in the URL.
//
// Deletes record each deleted token in the revoked table in the same
// statement as the delete, and CommitCtx does not write a revoked token's
// session; see CommitCtx for why a concurrent delete cannot slip between
// its check and its write. The purge drops expired tombstones with expired
// sessions.
type Store struct {
	sessionstore.WithoutContext
	pool *pgxpool.Pool
	done chan struct{}
	once sync.Once

	// revokeTTL is how long deletes revoke tokens: RevokedFor, except in
	// tests of tombstones' expiry.
	revokeTTL time.Duration
}

// postgresMigrations are applied in order, each once; schema_migrations
// records the versions (1-based) that have run.
var postgresMigrations = []string{
	`CREATE TABLE sessions (
		token  text PRIMARY KEY,
		data   bytea NOT NULL,
		expiry timestamptz NOT NULL,
		sid    text NOT NULL DEFAULT '',
		sub    text NOT NULL DEFAULT ''
	);
	CREATE INDEX sessions_expiry_idx ON sessions (expiry);
	CREATE INDEX sessions_sid_idx ON sessions (sid) WHERE sid <> '';
	CREATE INDEX sessions_sub_idx ON sessions (sub) WHERE sub <> '';`,
	`CREATE TABLE locks (
		name  text PRIMARY KEY,
		owner text NOT NULL,
		until timestamptz NOT NULL
	);`,
	// Tombstones of deleted tokens, until they expire by the server's clock.
	`CREATE TABLE revoked (
		token text PRIMARY KEY,
		until timestamptz NOT NULL
	);
	CREATE INDEX revoked_until_idx ON revoked (until);`,
	// Records are keyed by their token's hash from here on. Those from
	// before held the tokens themselves: they end, and their users sign in
	// again.
	`DELETE FROM sessions;
	DELETE FROM revoked;
	DELETE FROM locks;`,
}

// postgresMigrationLock is the pg_advisory_xact_lock key that serialises
// migrations, so instances starting together migrate once. Its value is
// arbitrary ("gologin" in ASCII); it only has to be the same everywhere.
const postgresMigrationLock int64 = 0x676f6c6f67696e

// postgresConnectTimeout bounds a new connection when the URL sets no
// connect_timeout (libpq's default is to wait forever).
const postgresConnectTimeout = 2 * time.Second

// Open connects to the PostgreSQL database a postgres:// or
// postgresql:// URL names, brings its schema up to date and purges expired
// sessions and tombstones every five minutes. ctx bounds the connection and
// migration. Besides libpq's parameters, the URL may set pgxpool's, such as
// pool_max_conns. A URL that does not parse, a server that refuses the
// credentials or a failed migration fails Open. A server that cannot be
// reached does not: the store's calls fail until it answers, and the
// migration is retried in the background, logging to log (slog.Default()
// if nil), so an app can start before its database.
func Open(ctx context.Context, rawURL string, log *slog.Logger) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(rawURL) // its errors redact the password
	if err != nil {
		return nil, fmt.Errorf("postgres session store: %w", err)
	}
	if _, q, _ := strings.Cut(rawURL, "?"); !strings.Contains(q, "connect_timeout") && os.Getenv("PGCONNECT_TIMEOUT") == "" {
		cfg.ConnConfig.ConnectTimeout = postgresConnectTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres session store: %w", err)
	}
	p := &Store{pool: pool, done: make(chan struct{}), revokeTTL: sessionstore.RevokedFor}
	p.WithoutContext = sessionstore.WithoutContext{ContextMethods: p}
	c := cfg.ConnConfig
	migrate := func(ctx context.Context) error {
		if err := p.migrate(ctx); err != nil {
			return fmt.Errorf("postgres session store %s:%d/%s: %w", c.Host, c.Port, c.Database, err)
		}
		return nil
	}
	if err := storekit.Connect(ctx, p.done, log, "postgres", migrate); err != nil {
		pool.Close()
		return nil, err
	}
	go storekit.PurgeEvery(5*time.Minute, p.done, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.pool.Exec(ctx, `DELETE FROM sessions WHERE expiry <= $1`, time.Now())
		p.pool.Exec(ctx, `DELETE FROM locks WHERE until <= now()`)
		p.pool.Exec(ctx, `DELETE FROM revoked WHERE until <= now()`)
	})
	return p, nil
}

func (p *Store) migrate(ctx context.Context) error {
	return pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		// Held until the transaction ends: a second instance waits here and
		// then finds the migrations applied.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, postgresMigrationLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return err
		}
		var version int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&version); err != nil {
			return err
		}
		if version > len(postgresMigrations) {
			return fmt.Errorf("database schema version %d is newer than this program knows (%d)", version, len(postgresMigrations))
		}
		for i, m := range postgresMigrations[version:] {
			// Without arguments pgx uses the simple protocol, which runs
			// a migration's several statements in one call.
			if _, err := tx.Exec(ctx, m); err != nil {
				return fmt.Errorf("migration %d: %w", version+i+1, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, version+i+1); err != nil {
				return err
			}
		}
		return nil
	})
}

// FindCtx implements scs.CtxStore.
func (p *Store) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	var b []byte
	err := p.pool.QueryRow(ctx, `SELECT data FROM sessions WHERE token = $1 AND expiry > $2`, sessionstore.HashToken(token), time.Now()).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}

// postgresRevoked is SQL that is true when the token $1 is revoked.
const postgresRevoked = `EXISTS (SELECT 1 FROM revoked WHERE token = $1 AND until > now())`

// CommitCtx implements scs.CtxStore. Committing a revoked token does
// nothing.
//
// One statement could not promise that. The write looks for a tombstone in
// the snapshot it starts with; if a delete then holds the session's row, the
// write waits for it and, once the delete has committed, writes the session
// back. So a second statement follows in the same transaction, with a new
// snapshot, and deletes the session again if its token is now revoked. A
// delete that reaches the row first is thus seen by the second statement,
// and one that reaches it after the write waits for this transaction and
// then deletes the session itself.
func (p *Store) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	idx, _, _ := sessionstore.ParseIndex(b) // records from other codecs are kept, unindexed
	token = sessionstore.HashToken(token)
	// A batch runs in one implicit transaction and one round trip.
	batch := &pgx.Batch{}
	batch.Queue(`INSERT INTO sessions (token, data, expiry, sid, sub)
		SELECT $1::text, $2::bytea, $3::timestamptz, $4::text, $5::text WHERE NOT `+postgresRevoked+`
		ON CONFLICT (token) DO UPDATE SET data = excluded.data, expiry = excluded.expiry, sid = excluded.sid, sub = excluded.sub`,
		token, b, expiry, idx.SID, idx.Subject)
	batch.Queue(`DELETE FROM sessions WHERE token = $1 AND `+postgresRevoked, token)
	return p.pool.SendBatch(ctx, batch).Close()
}

// postgresKeepLater ends a statement inserting tombstones: one already
// there is never shortened.
const postgresKeepLater = `
	ON CONFLICT (token) DO UPDATE SET until = greatest(revoked.until, excluded.until)`

// DeleteCtx implements scs.CtxStore; it revokes token. The tombstone is
// written after the delete, as in deleteWhere, so that both take their
// locks in the same order and cannot deadlock each other.
func (p *Store) DeleteCtx(ctx context.Context, token string) error {
	_, err := p.pool.Exec(ctx, `WITH d AS (DELETE FROM sessions WHERE token = $1 RETURNING 1)
		INSERT INTO revoked (token, until) SELECT $1, now() + $2::interval FROM (SELECT count(*) FROM d) AS deleted`+postgresKeepLater,
		sessionstore.HashToken(token), p.revokeTTL)
	return err
}

// DeleteBySID implements sessionstore.Store.
func (p *Store) DeleteBySID(ctx context.Context, sid string) (int, error) {
	return p.deleteWhere(ctx, `sid = $1 AND sid <> ''`, sid)
}

// DeleteBySubject implements sessionstore.Store.
func (p *Store) DeleteBySubject(ctx context.Context, sub string) (int, error) {
	return p.deleteWhere(ctx, `sub = $1 AND sub <> ''`, sub)
}

// deleteWhere deletes the sessions cond selects, expired ones included, and
// revokes their tokens in the same statement. It counts only the
// unexpired: those not yet purged were no longer sessions.
func (p *Store) deleteWhere(ctx context.Context, cond, arg string) (int, error) {
	var n int
	err := p.pool.QueryRow(ctx, `WITH d AS (DELETE FROM sessions WHERE `+cond+` RETURNING token, expiry),
		r AS (INSERT INTO revoked (token, until) SELECT token, now() + $3::interval FROM d`+postgresKeepLater+`)
		SELECT count(*) FROM d WHERE expiry > $2 AND NOT starts_with(token, $4)`, arg, time.Now(), p.revokeTTL, sessionstore.AuxPrefix).Scan(&n)
	return n, err
}

// postgresLockSQL takes the lock named $1 for owner $2 for $3, inserting
// its row or taking over one that has lapsed; one row affected means taken.
// Lapse is judged by the server's clock alone, so instances whose clocks
// disagree still agree on who holds a lock.
const postgresLockSQL = `INSERT INTO locks (name, owner, until) VALUES ($1, $2, now() + $3::interval)
	ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until WHERE locks.until <= now()`

// Lock implements sessionstore.Store.
func (p *Store) Lock(ctx context.Context, name string, ttl time.Duration) (func(), error) {
	return sessionstore.WaitLock(ctx, func() (func(), error) { return p.TryLock(ctx, name, ttl) })
}

// TryLock implements sessionstore.Store with a row in the locks table, which every
// instance using the database sees.
func (p *Store) TryLock(ctx context.Context, name string, ttl time.Duration) (func(), error) {
	name, owner := sessionstore.HashToken(name), rand.Text()
	tag, err := p.pool.Exec(ctx, postgresLockSQL, name, owner, ttl)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err() // the caller's deadline, not a database fault
		}
		return nil, err
	}
	if tag.RowsAffected() != 1 {
		return nil, sessionstore.ErrLocked
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), sessionstore.DefaultTimeout)
		defer cancel()
		p.pool.Exec(ctx, `DELETE FROM locks WHERE name = $1 AND owner = $2`, name, owner)
	}, nil
}

// Count implements sessionstore.Store.
func (p *Store) Count(ctx context.Context) (int, error) {
	var n int
	err := p.pool.QueryRow(ctx, `SELECT count(*) FROM sessions WHERE expiry > $1 AND NOT starts_with(token, $2)`,
		time.Now(), sessionstore.AuxPrefix).Scan(&n)
	return n, err
}

// Ping implements sessionstore.Store by querying the sessions table, which also catches
// a search_path or permission that no longer reaches it.
func (p *Store) Ping(ctx context.Context) error {
	_, err := p.pool.Exec(ctx, `SELECT 1 FROM sessions WHERE false`)
	return err
}

// Close implements sessionstore.Store; it stops the purge and closes the connections.
func (p *Store) Close() error {
	p.once.Do(func() {
		close(p.done)
		p.pool.Close()
	})
	return nil
}
