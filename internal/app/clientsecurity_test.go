package app

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/gologin/gologin/devidp"
	"github.com/gologin/gologin/internal/testclient"
	"github.com/gologin/gologin/login"
)

// TestClientSecuritySettings signs in through the app configured as an
// operator would, with OIDC_CLIENT_KEY_FILE and no secret,
// OIDC_RESPONSE_MODE=form_post, OIDC_USE_PAR and OIDC_DPOP together, the
// provider requiring each.
func TestClientSecuritySettings(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	keyFile := filepath.Join(t.TempDir(), "client-key.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	kid, _ := login.Thumbprint(&key.PublicKey)
	base, f := startFaultyProvider(t, map[string]string{
		"OIDC_CLIENT_SECRET": "", "OIDC_CLIENT_KEY_FILE": keyFile, "OIDC_RESPONSE_MODE": "form_post",
		"OIDC_USE_PAR": "true", "OIDC_DPOP": "true",
	}, func(f *faultyProvider) {
		f.Reconfigure(t, func(cfg *devidp.Config) {
			c := &cfg.Clients[0]
			c.Secret = "" // the key is the client's only credential
			c.Keys = []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: kid, Algorithm: "ES256", Use: "sig"}}
			c.RequirePAR, c.RequireDPoP = true, true
		})
	})
	b := testclient.New(t)
	p := b.NoRedirects().Get(base + "/login")
	if loc, _ := url.Parse(p.Header.Get("Location")); loc == nil || loc.Query().Get("request_uri") == "" || loc.Query().Has("state") {
		t.Fatalf("/login sends the browser to %q; want a pushed request's request_uri and no state", p.Header.Get("Location"))
	}
	p = b.Get(base + "/login")
	p = b.Submit(p.Form(t, "/authorize"), map[string]string{"name": "Ada", "email": "ada@example.com"})
	// The provider's page posts the response to the callback, across
	// origins: the app takes it without its cross-origin refusal.
	form := p.Form(t, "/callback")
	req, _ := http.NewRequest("POST", form.Action, strings.NewReader(form.Values.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// What a browser sends with a form another site's page posts.
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Origin", f.Issuer())
	resp, err := b.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "Welcome Ada!") {
		t.Fatalf("after the posted callback: %d %s:\n%s", resp.StatusCode, resp.Request.URL, body)
	}
	// The access token is DPoP-bound: the API call (the provider's
	// userinfo, which refuses it as Bearer) goes with a proof.
	if api := b.Get(base + "/userinfo"); api.Status != 200 || !strings.Contains(api.Body, "ada@example.com") {
		t.Fatalf("/userinfo with a DPoP-bound token: %d\n%s", api.Status, api.Body)
	}
	if f.Hits("/par") != 2 {
		t.Errorf("the provider's PAR endpoint got %d requests, want one per login (2)", f.Hits("/par"))
	}
}
