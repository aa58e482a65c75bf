package login

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/gologin/gologin/devidp"
	"github.com/gologin/gologin/devidp/devidptest"
	"github.com/gologin/gologin/internal/testclient"
	"github.com/gologin/gologin/sessionstore"
)

// TestTokensRecordIsSealed stores a session's tokens: the store's bytes
// hold none of them, only the session's own token opens the record, and a
// record from before sealing is still read.
func TestTokensRecordIsSealed(t *testing.T) {
	ctx := context.Background()
	store := sessionstore.NewMemory()
	defer store.Close()
	sm := scs.New()
	sm.Store, sm.Codec = store, sessionstore.Codec{}
	a, err := New(Config{Issuer: "https://op.example", ClientID: "c", ClientSecret: "s", RedirectURL: "https://app.example/callback", Sessions: sm})
	if err != nil {
		t.Fatal(err)
	}
	toks := tokens{IDToken: "ID-TOKEN-eyJhbGciOi", AccessToken: "ACCESS-TOKEN-0123", RefreshToken: "REFRESH-TOKEN-4567", Expiry: time.Now().Add(time.Hour)}
	expiry := time.Now().Add(time.Hour)
	if err := a.saveTokens(ctx, "session-1", toks, "sid-1", "sub-1", expiry); err != nil {
		t.Fatal(err)
	}
	raw, _, _ := store.FindCtx(ctx, tokensKeyOf("session-1"))
	for _, secret := range []string{toks.IDToken, toks.AccessToken, toks.RefreshToken} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("the stored record holds %q in the clear", secret)
		}
	}
	rec, found, err := a.loadTokens(ctx, "session-1")
	if err != nil || !found || rec.tokens.AccessToken != toks.AccessToken || rec.sid != "sid-1" || rec.sub != "sub-1" {
		t.Fatalf("loadTokens = %+v, %v, %v", rec, found, err)
	}
	// Another session's token cannot open it, even moved under its key.
	store.CommitCtx(ctx, tokensKeyOf("session-2"), raw, expiry)
	if _, _, err := a.loadTokens(ctx, "session-2"); err == nil {
		t.Error("a tokens record opened with another session's token")
	}
	// A record written before sealing, tokens in the clear, is read.
	old, _ := sessionstore.Codec{}.Encode(expiry, map[string]any{tokensKey: toks, sessionstore.SIDKey: "sid-1", sessionstore.SubjectKey: "sub-1"})
	store.CommitCtx(ctx, tokensKeyOf("session-3"), old, expiry)
	if rec, found, err := a.loadTokens(ctx, "session-3"); err != nil || !found || rec.tokens.RefreshToken != toks.RefreshToken {
		t.Errorf("a record from before sealing: %+v, %v, %v", rec, found, err)
	}
}

// TestRefreshedIDTokenMustKeepTheUser refreshes a session whose provider
// then issues an ID token of another subject: the refresh is refused and
// the stored tokens stay as they were.
func TestRefreshedIDTokenMustKeepTheUser(t *testing.T) {
	rp := newRP(t, func(cfg *Config) { cfg.Scopes = []string{"openid", "profile", "email", "offline_access"} })
	rp.idp.Reconfigure(t, func(cfg *devidp.Config) { cfg.AccessTokenLifetime = 10 * time.Second })
	b := testclient.New(t)
	rp.signIn(t, b, "ada@example.com", nil)
	token := sessionTokenOf(t, rp, b)
	before, _, _ := rp.auth.loadTokens(context.Background(), token)
	rp.idp.Set(devidptest.Faults{Claims: func(c map[string]any) { c["sub"] = "someone-else" }})
	if api := b.Get(rp.base + "/api"); api.Status != http.StatusBadGateway {
		t.Fatalf("API call whose refresh brings another user's ID token: %d %s, want 502", api.Status, api.Body)
	}
	after, _, _ := rp.auth.loadTokens(context.Background(), token)
	if after.tokens.AccessToken != before.tokens.AccessToken || after.tokens.IDToken != before.tokens.IDToken {
		t.Error("the refused refresh's tokens were stored")
	}
}
