package login

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/gologin/gologin/devidp/devidptest"
	"github.com/gologin/gologin/sessionstore"
)

// failOnce is a store whose first DeleteBySID fails, as in an outage.
type failOnce struct {
	*sessionstore.Memory
	failed bool
}

func (f *failOnce) DeleteBySID(ctx context.Context, sid string) (int, error) {
	if !f.failed {
		f.failed = true
		return 0, errors.New("store down")
	}
	return f.Memory.DeleteBySID(ctx, sid)
}

// TestBackchannelRetryAfterStoreFailure: a logout token whose first
// delivery met a store outage (503) works when the provider retries it.
func TestBackchannelRetryAfterStoreFailure(t *testing.T) {
	_, idp := devidptest.NewServer(t)
	store := &failOnce{Memory: sessionstore.NewMemory()}
	sm := scs.New()
	sm.Store = store
	sm.Codec = sessionstore.Codec{}
	a, err := New(Config{Issuer: idp.Issuer(), ClientID: "app", RedirectURL: "http://app.test/callback", Sessions: sm, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := sessionstore.Codec{}.Encode(time.Now().Add(time.Hour), map[string]any{sessionstore.SIDKey: "sid-1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	store.CommitCtx(ctx, "session-1", rec, time.Now().Add(time.Hour))

	now := time.Now()
	tok, err := idp.Sign(map[string]any{
		"iss": idp.Issuer(), "aud": "app", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": rand.Text(), "sid": "sid-1",
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	post := func() int {
		req := httptest.NewRequest("POST", "/backchannel-logout", strings.NewReader(url.Values{"logout_token": {tok}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		a.BackchannelLogout(w, req)
		return w.Code
	}
	if got := post(); got != http.StatusServiceUnavailable {
		t.Fatalf("first delivery during the outage: %d, want 503", got)
	}
	if got := post(); got != http.StatusOK {
		t.Fatalf("the provider's retry: %d, want 200", got)
	}
	if _, found, _ := store.FindCtx(ctx, "session-1"); found {
		t.Fatal("the session survived the retried logout")
	}
	if got := post(); got != http.StatusBadRequest {
		t.Fatalf("a replay after success: %d, want 400", got)
	}
}
