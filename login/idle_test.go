package login

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/gologin/gologin/sessionstore"
)

// countingStore counts commits, which are writes to the store.
type countingStore struct {
	*sessionstore.Memory
	mu      sync.Mutex
	commits int
}

func (c *countingStore) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	c.mu.Lock()
	c.commits++
	c.mu.Unlock()
	return c.Memory.CommitCtx(ctx, token, b, expiry)
}

func (c *countingStore) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.commits
}

func TestIdleTimeout(t *testing.T) {
	for _, withMiddleware := range []bool{true, false} {
		t.Run(map[bool]string{true: "ExpireIdle", false: "User alone"}[withMiddleware], func(t *testing.T) {
			testIdleTimeout(t, withMiddleware)
		})
	}
}

// testIdleTimeout signs in and makes requests at intervals, with
// ExpireIdle in the chain or with only the handler's call of User.
func testIdleTimeout(t *testing.T, withMiddleware bool) {
	store := &countingStore{Memory: sessionstore.NewMemory()}
	defer store.Close()
	sm := scs.New()
	sm.Store = store
	sm.Codec = sessionstore.Codec{}
	sm.Lifetime = 7 * 24 * time.Hour
	// Fake time starts now: the store itself expires records by the real clock.
	now := time.Now()
	a, err := New(Config{Issuer: "https://idp.example", ClientID: "c", RedirectURL: "https://app.example/callback",
		Sessions: sm, IdleTimeout: time.Hour, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	// signin stands for a successful callback.
	mux.HandleFunc("/signin", func(w http.ResponseWriter, r *http.Request) {
		sm.Put(r.Context(), userKey, User{Subject: "u1", Name: "Ada"})
		sm.Put(r.Context(), sinceKey, now)
		a.touch(r.Context(), now)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if u, ok := a.User(r); ok {
			w.Write([]byte(u.Name))
		}
	})
	h := sm.LoadAndSave(mux)
	if withMiddleware {
		h = sm.LoadAndSave(a.ExpireIdle(mux))
	}

	var cookie *http.Cookie
	get := func(path string) string {
		req := httptest.NewRequest("GET", path, nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		for _, c := range rec.Result().Cookies() {
			cookie = c
		}
		return rec.Body.String()
	}
	get("/signin")
	writes := store.count()

	steps := []struct {
		advance    time.Duration
		signedIn   bool
		wantWrites int // new store writes caused by this request
	}{
		{10 * time.Second, true, 0}, // page views within a minute do not write
		{20 * time.Second, true, 0},
		{40 * time.Second, true, 1}, // over a minute since the last write: refresh
		{59 * time.Minute, true, 1}, // just inside the idle timeout
		{61 * time.Minute, false, 0},
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		got := get("/") == "Ada"
		if got != s.signedIn {
			t.Fatalf("step %d (+%s): signed in = %v, want %v", i, s.advance, got, s.signedIn)
		}
		if n := store.count() - writes; s.signedIn && n != s.wantWrites {
			t.Errorf("step %d (+%s): %d store writes, want %d", i, s.advance, n, s.wantWrites)
		}
		writes = store.count()
	}
}

func TestAbsoluteLifetime(t *testing.T) {
	store := sessionstore.NewMemory()
	defer store.Close()
	sm := scs.New()
	sm.Store = store
	sm.Codec = sessionstore.Codec{}
	sm.Lifetime = 2 * time.Hour
	now := time.Now()
	a, err := New(Config{Issuer: "https://idp.example", ClientID: "c", RedirectURL: "https://app.example/callback",
		Sessions: sm, IdleTimeout: time.Hour, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, err := sm.Load(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	sm.Put(ctx, userKey, User{Subject: "u1"})
	sm.Put(ctx, sinceKey, now)
	a.touch(ctx, now)
	var elapsed time.Duration
	for _, step := range []struct {
		advance  time.Duration
		signedIn bool
	}{{50 * time.Minute, true}, {50 * time.Minute, true}, {50 * time.Minute, false}} {
		now = now.Add(step.advance)
		elapsed += step.advance
		var signedIn bool
		a.ExpireIdle(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, signedIn = a.User(r)
		})).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil).WithContext(ctx))
		if signedIn != step.signedIn {
			t.Fatalf("active every 50 minutes, %s after sign-in: signed in = %v, want %v", elapsed, signedIn, step.signedIn)
		}
		if d := sm.Deadline(ctx); signedIn && d.After(now.Add(time.Hour)) {
			t.Errorf("deadline %s beyond the idle limit", d)
		}
	}
}
