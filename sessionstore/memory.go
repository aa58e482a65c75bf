package sessionstore

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/gologin/gologin/internal/storekit"
)

// Memory is a Store that keeps sessions in this process. Sessions are lost
// when the process exits and are not shared between instances.
//
// Deletes record each deleted token in a map of tombstones, which CommitCtx
// consults under the same mutex, so a commit and a delete cannot interleave;
// the purge drops expired tombstones with expired sessions.
type Memory struct {
	WithoutContext
	mu      sync.RWMutex
	items   map[string]memoryItem
	bySID   map[string]map[string]struct{}
	bySub   map[string]map[string]struct{}
	revoked map[string]time.Time // token → when its tombstone expires
	done    chan struct{}
	once    sync.Once

	// revokeTTL is how long deletes revoke tokens: RevokedFor, except in
	// tests of tombstones' expiry.
	revokeTTL time.Duration

	lockMu sync.Mutex
	locks  map[string]*memoryLock // by name; the pointer tells holders apart
}

type memoryLock struct{ until time.Time }

type memoryItem struct {
	data   []byte
	expiry time.Time
	index  Index
}

// NewMemory returns an empty Memory store that purges expired sessions
// every minute until closed.
func NewMemory() *Memory {
	m := &Memory{
		items:     make(map[string]memoryItem),
		bySID:     make(map[string]map[string]struct{}),
		bySub:     make(map[string]map[string]struct{}),
		revoked:   make(map[string]time.Time),
		done:      make(chan struct{}),
		revokeTTL: RevokedFor,
		locks:     make(map[string]*memoryLock),
	}
	m.WithoutContext = WithoutContext{m}
	go storekit.PurgeEvery(time.Minute, m.done, func() { m.purge(time.Now()) })
	return m
}

// FindCtx implements scs.CtxStore.
func (m *Memory) FindCtx(_ context.Context, token string) ([]byte, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	it, ok := m.items[token]
	if !ok || !time.Now().Before(it.expiry) {
		return nil, false, nil
	}
	return it.data, true, nil
}

// CommitCtx implements scs.CtxStore. Committing a revoked token does
// nothing.
func (m *Memory) CommitCtx(_ context.Context, token string, b []byte, expiry time.Time) error {
	idx, _, _ := ParseIndex(b) // records from other codecs are kept, unindexed
	m.mu.Lock()
	defer m.mu.Unlock()
	if until, ok := m.revoked[token]; ok && time.Now().Before(until) {
		return nil
	}
	m.remove(token)
	// Keep a copy: the caller may reuse b.
	m.items[token] = memoryItem{data: append([]byte(nil), b...), expiry: expiry, index: idx}
	addTo(m.bySID, idx.SID, token)
	addTo(m.bySub, idx.Subject, token)
	return nil
}

// DeleteCtx implements scs.CtxStore; it revokes token.
func (m *Memory) DeleteCtx(_ context.Context, token string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.remove(token)
	m.revoke(token, time.Now())
	return nil
}

// DeleteBySID implements Store.
func (m *Memory) DeleteBySID(_ context.Context, sid string) (int, error) {
	return m.deleteAll(m.bySID, sid), nil
}

// DeleteBySubject implements Store.
func (m *Memory) DeleteBySubject(_ context.Context, sub string) (int, error) {
	return m.deleteAll(m.bySub, sub), nil
}

// Lock implements Store.
func (m *Memory) Lock(ctx context.Context, name string, ttl time.Duration) (func(), error) {
	return WaitLock(ctx, func() (func(), error) { return m.TryLock(ctx, name, ttl) })
}

// TryLock implements Store.
func (m *Memory) TryLock(_ context.Context, name string, ttl time.Duration) (func(), error) {
	m.lockMu.Lock()
	defer m.lockMu.Unlock()
	now := time.Now()
	if held, ok := m.locks[name]; ok && now.Before(held.until) {
		return nil, ErrLocked
	}
	mine := &memoryLock{until: now.Add(ttl)}
	m.locks[name] = mine
	return func() {
		m.lockMu.Lock()
		defer m.lockMu.Unlock()
		if m.locks[name] == mine {
			delete(m.locks, name)
		}
	}, nil
}

// Count implements Store.
func (m *Memory) Count(context.Context) (int, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	now := time.Now()
	n := 0
	for token, it := range m.items {
		if now.Before(it.expiry) && !strings.HasPrefix(token, AuxPrefix) {
			n++
		}
	}
	return n, nil
}

// Ping implements Store; memory always answers.
func (m *Memory) Ping(context.Context) error { return nil }

// Close implements Store.
func (m *Memory) Close() error {
	m.once.Do(func() { close(m.done) })
	return nil
}

func (m *Memory) deleteAll(index map[string]map[string]struct{}, key string) int {
	if key == "" {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	now := time.Now()
	for token := range index[key] {
		m.remove(token) // removes token from the set too, which range allows
		m.revoke(token, now)
		if !strings.HasPrefix(token, AuxPrefix) {
			n++
		}
	}
	return n
}

// revoke records a tombstone for token; m.mu must be held. A tombstone is
// never shortened.
func (m *Memory) revoke(token string, now time.Time) {
	if until := now.Add(m.revokeTTL); until.After(m.revoked[token]) {
		m.revoked[token] = until
	}
}

func (m *Memory) purge(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for token, it := range m.items {
		if !now.Before(it.expiry) {
			m.remove(token)
		}
	}
	for token, until := range m.revoked {
		if !now.Before(until) {
			delete(m.revoked, token)
		}
	}
	m.lockMu.Lock()
	defer m.lockMu.Unlock()
	for name, l := range m.locks {
		if !now.Before(l.until) {
			delete(m.locks, name)
		}
	}
}

// remove deletes token and its index entries; m.mu must be held.
func (m *Memory) remove(token string) {
	it, ok := m.items[token]
	if !ok {
		return
	}
	delete(m.items, token)
	removeFrom(m.bySID, it.index.SID, token)
	removeFrom(m.bySub, it.index.Subject, token)
}

func addTo(index map[string]map[string]struct{}, key, token string) {
	if key == "" {
		return
	}
	set := index[key]
	if set == nil {
		set = make(map[string]struct{})
		index[key] = set
	}
	set[token] = struct{}{}
}

func removeFrom(index map[string]map[string]struct{}, key, token string) {
	set := index[key]
	delete(set, token)
	if len(set) == 0 {
		delete(index, key)
	}
}
