package login

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gologin/gologin/devidp"
	"github.com/gologin/gologin/internal/testclient"
)

// TestClientSecurityEndToEnd signs in, calls an API and signs out through
// the development provider with each client protection, the provider
// checking its side: private_key_jwt and client_secret_jwt assertions, a
// pushed authorization request, DPoP-bound tokens (with and without the
// provider's nonces) and the form_post response mode.
func TestClientSecurityEndToEnd(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := Thumbprint(&key.PublicKey)
	const longSecret = "a-client-secret-of-at-least-32-bytes!"
	tests := []struct {
		name string
		idp  func(cfg *devidp.Config) // the provider's side
		rp   func(cfg *Config)
		// check runs once b is signed in, before logout.
		check func(t *testing.T, rp *testRP, b *testclient.Browser)
	}{
		{name: "private_key_jwt",
			idp: func(cfg *devidp.Config) {
				cfg.Clients[0].Secret = "" // the key is its only credential
				cfg.Clients[0].Keys = []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: kid, Algorithm: "ES256", Use: "sig"}}
			},
			rp: func(cfg *Config) { cfg.ClientSecret, cfg.ClientKey, cfg.AttemptKey = "", key, make([]byte, 32) }},
		{name: "client_secret_jwt",
			idp: func(cfg *devidp.Config) { cfg.Clients[0].Secret = longSecret },
			rp:  func(cfg *Config) { cfg.ClientSecret, cfg.TokenAuthMethod = longSecret, ClientSecretJWT }},
		{name: "pushed authorization request",
			idp: func(cfg *devidp.Config) { cfg.Clients[0].RequirePAR = true },
			check: func(t *testing.T, rp *testRP, b *testclient.Browser) {
				p := b.NoRedirects().Get(rp.base + "/login")
				loc, _ := url.Parse(p.Header.Get("Location"))
				q := loc.Query()
				if len(q) != 2 || q.Get("client_id") != "app" || !strings.HasPrefix(q.Get("request_uri"), "urn:ietf:params:oauth:request_uri:") {
					t.Errorf("the browser is sent to %s; want only client_id and a request_uri", loc)
				}
			}},
		{name: "DPoP",
			idp: func(cfg *devidp.Config) { cfg.Clients[0].RequireDPoP = true },
			rp:  func(cfg *Config) { cfg.DPoP = true }},
		{name: "DPoP required by the provider alone",
			idp: func(cfg *devidp.Config) { cfg.Clients[0].RequireDPoP = true }},
		{name: "DPoP with the provider's nonces",
			idp: func(cfg *devidp.Config) { cfg.Clients[0].RequireDPoP, cfg.DPoPNonce = true, true },
			rp:  func(cfg *Config) { cfg.DPoP = true }},
		{name: "DPoP, refreshed",
			// Tokens that expire within the refresh margin are refreshed
			// before each API call, with a proof of the same key.
			idp: func(cfg *devidp.Config) { cfg.Clients[0].RequireDPoP, cfg.AccessTokenLifetime = true, 10*time.Second },
			rp: func(cfg *Config) {
				cfg.DPoP, cfg.Scopes = true, []string{"openid", "profile", "email", "offline_access"}
			},
			check: func(t *testing.T, rp *testRP, b *testclient.Browser) {
				before, _, _ := rp.auth.loadTokens(context.Background(), sessionTokenOf(t, rp, b))
				if api := b.Get(rp.base + "/api"); api.Status != http.StatusOK {
					t.Fatalf("API call after a refresh: %d %s", api.Status, api.Body)
				}
				after, _, _ := rp.auth.loadTokens(context.Background(), sessionTokenOf(t, rp, b))
				if before.tokens.RefreshToken == "" || after.tokens.AccessToken == before.tokens.AccessToken || !bytes.Equal(after.tokens.DPoPKey, before.tokens.DPoPKey) {
					t.Errorf("refresh: access token renewed %v, same DPoP key %v; want both",
						after.tokens.AccessToken != before.tokens.AccessToken, bytes.Equal(after.tokens.DPoPKey, before.tokens.DPoPKey))
				}
			}},
		{name: "form_post",
			rp: func(cfg *Config) { cfg.ResponseMode = "form_post" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rp := newRP(t, tt.rp)
			if tt.idp != nil {
				rp.idp.Reconfigure(t, tt.idp)
			}
			b := testclient.New(t)
			p := b.Get(rp.base + "/login")
			if strings.Contains(tt.name, "form_post") {
				// The provider's page posts the response back.
				p = b.Submit(p.Form(t, "/authorize"), map[string]string{"name": "Ada", "email": "ada@example.com"})
				p = b.Submit(p.Form(t, "/callback"), nil)
			} else {
				p = b.Submit(p.Form(t, "/authorize"), map[string]string{"name": "Ada", "email": "ada@example.com"})
			}
			if u, ok := rp.user(t, b); !ok || u.Email != "ada@example.com" {
				t.Fatalf("not signed in: %d %s; errors %v", p.Status, p.Body, rp.failures(t))
			}
			if tt.check != nil {
				tt.check(t, rp, b)
			}
			// An API call with the user's access token: the provider's
			// userinfo, which refuses a DPoP-bound token sent as Bearer.
			if api := b.Get(rp.base + "/api"); api.Status != http.StatusOK || !strings.Contains(api.Body, "ada@example.com") {
				t.Fatalf("API call: %d %s", api.Status, api.Body)
			}
			rec, found, err := rp.auth.loadTokens(context.Background(), sessionTokenOf(t, rp, b))
			if err != nil || !found {
				t.Fatalf("tokens record: %v %v", found, err)
			}
			if bound := rec.tokens.DPoPKey != nil && isDPoP(rec.tokens.TokenType); bound != strings.HasPrefix(tt.name, "DPoP") {
				t.Errorf("tokens bound to a DPoP key = %v (token_type %q)", bound, rec.tokens.TokenType)
			}
		})
	}
}

// TestFormPostCallbackChecks posts callbacks as a provider's form_post page
// would: one with another login's state is refused and signs nobody in;
// an error the provider posts shows as the failure; a GET callback, the
// other response mode, is refused.
func TestFormPostCallbackChecks(t *testing.T) {
	rp := newRP(t, func(cfg *Config) { cfg.ResponseMode = "form_post" })
	b := testclient.New(t)
	p := b.Get(rp.base + "/login")
	p = b.Submit(p.Form(t, "/authorize"), map[string]string{"name": "Ada", "email": "ada@example.com"})
	posted := p.Form(t, "/callback")
	if posted.Values.Get("code") == "" || posted.Values.Get("state") == "" {
		t.Fatalf("the provider's form_post page posts %v; want a code and the state", posted.Values)
	}

	wrong := posted
	wrong.Values = url.Values{"code": {posted.Values.Get("code")}, "state": {"another-login's-state"}, "iss": {rp.idp.Issuer()}}
	rp.reset()
	rp.wantFailure(t, b, b.Submit(wrong, nil), "invalid_state", http.StatusBadRequest, "")

	rp.reset()
	denied := posted
	denied.Values = url.Values{"error": {"access_denied"}, "state": {posted.Values.Get("state")}, "iss": {rp.idp.Issuer()}}
	rp.wantFailure(t, b, b.Submit(denied, nil), "access_denied", http.StatusBadRequest, "You cancelled sign-in.")

	rp.reset()
	q := url.Values{"code": {"c"}, "state": {posted.Values.Get("state")}}
	rp.wantFailure(t, b, b.Get(rp.base+"/callback?"+q.Encode()), "wrong_response_mode", http.StatusBadRequest, "")
}

// sessionTokenOf is b's session cookie at rp.
func sessionTokenOf(t *testing.T, rp *testRP, b *testclient.Browser) string {
	t.Helper()
	u, _ := url.Parse(rp.base)
	for _, c := range b.Client.Jar.Cookies(u) {
		if c.Name == rp.auth.cfg.Sessions.Cookie.Name {
			return c.Value
		}
	}
	t.Fatal("no session cookie")
	return ""
}

func TestTokenTypeIsCaseInsensitive(t *testing.T) {
	for _, tt := range []string{"DPoP", "dpop", "DPOP"} {
		if !isDPoP(tt) {
			t.Errorf("token_type %q not taken for DPoP", tt)
		}
	}
	for _, tt := range []string{"Bearer", "bearer", ""} {
		if isDPoP(tt) {
			t.Errorf("token_type %q taken for DPoP", tt)
		}
	}
}
