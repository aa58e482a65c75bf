// Package sqlitestore is a session store that keeps sessions in a SQLite
// database file (modernc.org/sqlite, without cgo), so they survive restarts
// and processes on one machine can share them.
package sqlitestore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver, pure Go

	"github.com/gologin/gologin/internal/storekit"
	"github.com/gologin/gologin/sessionstore"
)

// Store is a sessionstore.Store that keeps sessions in a SQLite database file, so they
// survive restarts of the process.
//
// Deletes record each deleted token in the revoked table in the same
// transaction as the delete, and CommitCtx writes a session in one
// statement only if its token is not revoked; SQLite runs one writer at a
// time, so a commit and a delete cannot interleave. The purge drops
// expired tombstones with expired sessions.
type Store struct {
	sessionstore.WithoutContext
	db *sql.DB
	// find runs on every request: prepared once, it skips SQLite's
	// parser, which costs more than the query itself.
	find *sql.Stmt
	done chan struct{}
	once sync.Once

	// revokeTTL is how long deletes revoke tokens: RevokedFor, except in
	// tests of tombstones' expiry.
	revokeTTL time.Duration
}

// sqliteMigrations are applied in order; PRAGMA user_version records how
// many have run, so opening a database is idempotent.
var sqliteMigrations = []string{
	`CREATE TABLE sessions (
		token  TEXT PRIMARY KEY,
		data   BLOB NOT NULL,
		expiry INTEGER NOT NULL,
		sid    TEXT NOT NULL DEFAULT '',
		sub    TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX sessions_expiry ON sessions(expiry);
	CREATE INDEX sessions_sid ON sessions(sid) WHERE sid <> '';
	CREATE INDEX sessions_sub ON sessions(sub) WHERE sub <> '';`,
	`CREATE TABLE locks (
		name  TEXT PRIMARY KEY,
		owner TEXT NOT NULL,
		until INTEGER NOT NULL
	);`,
	// Tombstones of deleted tokens, until (unix ms) they expire.
	`CREATE TABLE revoked (
		token TEXT PRIMARY KEY,
		until INTEGER NOT NULL
	);
	CREATE INDEX revoked_until ON revoked(until);`,
	// Records are keyed by their token's hash from here on. Those from
	// before held the tokens themselves, in a file that may have been
	// readable by others: they end, and their users sign in again.
	`DELETE FROM sessions;
	DELETE FROM revoked;
	DELETE FROM locks;`,
}

// Open opens (creating if needed) the SQLite database at path, brings
// its schema up to date and purges expired sessions and tombstones every
// five minutes, returning the freed space to the file system.
//
// The database and its -wal and -shm files are readable by their owner
// alone (mode 0600, set on files from before too), and deleted records are
// overwritten (secure_delete).
func Open(path string) (*Store, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("sqlite session store: %w", err)
		}
	}
	if err := privateFiles(path); err != nil {
		return nil, fmt.Errorf("sqlite session store: %w", err)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	// Before journal_mode, which creates the schema of a new file: a new
	// database starts with incremental vacuum; an older one is vacuumed
	// once, in prepare, to switch.
	q.Add("_pragma", "auto_vacuum(incremental)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "secure_delete(on)")
	// The path is part of a URI: escape what would end or alter it.
	escaped := strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(path)
	db, err := sql.Open("sqlite", "file:"+escaped+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite session store %s: %w", path, err)
	}
	// Connections are opened with three pragmas and a file open: keep
	// enough idle ones for concurrent requests instead of database/sql's
	// two, which under load closes and reopens connections all the time.
	db.SetMaxIdleConns(sqliteConns)
	db.SetMaxOpenConns(sqliteConns)
	s := &Store{db: db, done: make(chan struct{}), revokeTTL: sessionstore.RevokedFor}
	s.WithoutContext = sessionstore.WithoutContext{ContextMethods: s}
	if err := s.prepare(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite session store %s: %w", path, err)
	}
	go storekit.PurgeEvery(5*time.Minute, s.done, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.purge(ctx, time.Now())
	})
	return s, nil
}

// sqliteIncrementalVacuum is PRAGMA auto_vacuum's value for incremental.
const sqliteIncrementalVacuum = 2

// sqliteConns bounds the connections to the database file. WAL mode lets
// readers run side by side; writers take turns whatever the count.
const sqliteConns = 16

// privateFiles creates the database file at path with mode 0600 if it is
// missing, and takes group and other permissions off it and its -wal and
// -shm files if they exist. SQLite gives the -wal and -shm files it creates
// the database file's mode.
func privateFiles(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, fi.Mode().Perm()&0o600); err != nil {
				return err
			}
		}
	}
	return nil
}

// prepare migrates the schema, switches a database from before incremental
// vacuum to it, and prepares the statement of FindCtx.
func (s *Store) prepare(ctx context.Context) error {
	if err := s.migrate(ctx); err != nil {
		return err
	}
	var mode int
	if err := s.db.QueryRowContext(ctx, `PRAGMA auto_vacuum`).Scan(&mode); err != nil {
		return err
	}
	if mode != sqliteIncrementalVacuum {
		// A full VACUUM, once: the mode of a database that has tables
		// changes only through it.
		if _, err := s.db.ExecContext(ctx, `VACUUM`); err != nil {
			return err
		}
	}
	var err error
	s.find, err = s.db.PrepareContext(ctx, `SELECT data FROM sessions WHERE token = ? AND expiry > ?`)
	return err
}

// purge deletes the sessions, tombstones and locks that have expired by
// now, and gives the pages they used back to the file system: without
// that, the file would keep the size of its busiest hour.
func (s *Store) purge(ctx context.Context, now time.Time) error {
	for _, q := range []string{`DELETE FROM sessions WHERE expiry <= ?`, `DELETE FROM revoked WHERE until <= ?`, `DELETE FROM locks WHERE until <= ?`} {
		if _, err := s.db.ExecContext(ctx, q, now.UnixMilli()); err != nil {
			return err
		}
	}
	_, err := s.db.ExecContext(ctx, `PRAGMA incremental_vacuum`)
	return err
}

func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var version int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return err
	}
	if version > len(sqliteMigrations) {
		return fmt.Errorf("database schema version %d is newer than this program knows (%d)", version, len(sqliteMigrations))
	}
	for _, m := range sqliteMigrations[version:] {
		if _, err := tx.ExecContext(ctx, m); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, len(sqliteMigrations))); err != nil {
		return err
	}
	return tx.Commit()
}

// FindCtx implements scs.CtxStore.
func (s *Store) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	var b []byte
	err := s.find.QueryRowContext(ctx, sessionstore.HashToken(token), time.Now().UnixMilli()).Scan(&b)
	if err == sql.ErrNoRows {
		return nil, false, nil
	}
	return b, err == nil, err
}

// CommitCtx implements scs.CtxStore. Committing a revoked token does
// nothing: the check and the write are one statement, which SQLite runs
// as a write from its start, so no delete can come between them.
func (s *Store) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	idx, _, _ := sessionstore.ParseIndex(b) // records from other codecs are kept, unindexed
	_, err := s.db.ExecContext(ctx, `INSERT INTO sessions (token, data, expiry, sid, sub)
		SELECT ?1, ?2, ?3, ?4, ?5 WHERE NOT EXISTS (SELECT 1 FROM revoked WHERE token = ?1 AND until > ?6)
		ON CONFLICT(token) DO UPDATE SET data = excluded.data, expiry = excluded.expiry, sid = excluded.sid, sub = excluded.sub`,
		sessionstore.HashToken(token), b, expiry.UnixMilli(), idx.SID, idx.Subject, time.Now().UnixMilli())
	return err
}

// sqliteKeepLater ends a statement inserting tombstones: one already
// there is never shortened.
const sqliteKeepLater = `
	ON CONFLICT(token) DO UPDATE SET until = max(revoked.until, excluded.until)`

// DeleteCtx implements scs.CtxStore; it revokes token.
func (s *Store) DeleteCtx(ctx context.Context, token string) error {
	_, err := s.deleteRevoking(ctx, `INSERT INTO revoked (token, until) VALUES (?1, ?2)`+sqliteKeepLater,
		`DELETE FROM sessions WHERE token = ?1`, sessionstore.HashToken(token))
	return err
}

// DeleteBySID implements sessionstore.Store.
func (s *Store) DeleteBySID(ctx context.Context, sid string) (int, error) {
	return s.deleteWhere(ctx, `sid = ?1 AND sid <> ''`, sid)
}

// DeleteBySubject implements sessionstore.Store.
func (s *Store) DeleteBySubject(ctx context.Context, sub string) (int, error) {
	return s.deleteWhere(ctx, `sub = ?1 AND sub <> ''`, sub)
}

// deleteWhere deletes and revokes the sessions cond selects with arg as ?1.
func (s *Store) deleteWhere(ctx context.Context, cond, arg string) (int, error) {
	// The WHERE clause also keeps SQLite from reading ON CONFLICT as a
	// join's ON.
	return s.deleteRevoking(ctx, `INSERT INTO revoked (token, until) SELECT token, ?2 FROM sessions WHERE `+cond+sqliteKeepLater,
		`DELETE FROM sessions WHERE `+cond, arg)
}

// deleteRevoking runs revoke, which records tombstones (?1 is arg, ?2 their
// expiry), and then del (?1 is arg) in one transaction, and reports how
// many sessions, not auxiliary records, del deleted.
func (s *Store) deleteRevoking(ctx context.Context, revoke, del, arg string) (int, error) {
	// The first statement writes, so the transaction holds SQLite's write
	// lock from its start: no commit can come between the two.
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, revoke, arg, time.Now().Add(s.revokeTTL).UnixMilli()); err != nil {
		return 0, err
	}
	// Sessions are counted, auxiliary records only deleted.
	rows, err := tx.QueryContext(ctx, del+` RETURNING substr(token, 1, ?2) = ?3`, arg, len(sessionstore.AuxPrefix), sessionstore.AuxPrefix)
	if err != nil {
		return 0, err
	}
	n := 0
	for rows.Next() {
		var aux bool
		if err := rows.Scan(&aux); err != nil {
			rows.Close()
			return 0, err
		}
		if !aux {
			n++
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	return n, tx.Commit()
}

// Lock implements sessionstore.Store.
func (s *Store) Lock(ctx context.Context, name string, ttl time.Duration) (func(), error) {
	return sessionstore.WaitLock(ctx, func() (func(), error) { return s.TryLock(ctx, name, ttl) })
}

// TryLock implements sessionstore.Store with a row in the locks table, which every
// process sharing the database file sees: inserted, or taken over once its
// until has passed; one row affected means taken.
func (s *Store) TryLock(ctx context.Context, name string, ttl time.Duration) (func(), error) {
	name, owner, now := sessionstore.HashToken(name), rand.Text(), time.Now()
	res, err := s.db.ExecContext(ctx, `INSERT INTO locks (name, owner, until) VALUES (?1, ?2, ?3)
		ON CONFLICT(name) DO UPDATE SET owner = excluded.owner, until = excluded.until WHERE locks.until <= ?4`,
		name, owner, now.Add(ttl).UnixMilli(), now.UnixMilli())
	if err != nil {
		return nil, err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return nil, sessionstore.ErrLocked
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), sessionstore.DefaultTimeout)
		defer cancel()
		s.db.ExecContext(ctx, `DELETE FROM locks WHERE name = ? AND owner = ?`, name, owner)
	}, nil
}

// Count implements sessionstore.Store.
func (s *Store) Count(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM sessions WHERE expiry > ? AND substr(token, 1, ?) <> ?`,
		time.Now().UnixMilli(), len(sessionstore.AuxPrefix), sessionstore.AuxPrefix).Scan(&n)
	return n, err
}

// Ping implements sessionstore.Store by running a query, which also catches a database
// file that has become unreadable.
func (s *Store) Ping(ctx context.Context) error {
	var n int
	return s.db.QueryRowContext(ctx, `SELECT count(*) FROM sessions WHERE token = ''`).Scan(&n)
}

// Close implements sessionstore.Store.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		close(s.done)
		err = s.db.Close()
	})
	return err
}
