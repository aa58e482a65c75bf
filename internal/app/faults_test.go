package app

import (
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gologin/gologin/devidp"
	"github.com/gologin/gologin/internal/testclient"
)

// faultyProvider wraps the development provider and misbehaves on demand:
// it rewrites the ID token's claims (re-signing them with the provider's key
// unless told otherwise), replaces any endpoint, or swaps in a provider with
// another signing key. The misbehaviour lives only here, in test code.
type faultyProvider struct {
	mu       sync.Mutex
	idp      *devidp.Provider
	key      *rsa.PrivateKey
	cfg      devidp.Config
	edit     func(claims map[string]any)
	mint     func(claims map[string]any) (string, error) // nil: sign as usual
	override map[string]http.HandlerFunc                 // by path
	hits     map[string]int                              // requests by path
}

func (f *faultyProvider) set(edit func(map[string]any), mint func(map[string]any) (string, error), override map[string]http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.edit, f.mint, f.override = edit, mint, override
}

func (f *faultyProvider) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[path]
}

func (f *faultyProvider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	idp, edit, mint, h := f.idp, f.edit, f.mint, f.override[r.URL.Path]
	f.hits[r.URL.Path]++
	f.mu.Unlock()
	switch {
	case h != nil:
		h(w, r)
		return
	case r.URL.Path != "/token":
		idp.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	idp.ServeHTTP(rec, r)
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != http.StatusOK || edit == nil {
		for _, k := range []string{"access_token", "id_token", "refresh_token"} {
			if v, ok := body[k].(string); ok {
				secrets.add(v)
			}
		}
		w.Header().Set("Content-Type", rec.Header().Get("Content-Type"))
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
		return
	}
	secrets.add(body["access_token"].(string))
	raw, _ := body["id_token"].(string)
	parts := strings.Split(raw, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	json.Unmarshal(payload, &claims)
	edit(claims)
	if mint == nil {
		mint = idp.Sign
	}
	signed, err := mint(claims)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	body["id_token"] = signed
	secrets.add(signed)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(body)
}

// rotateKey replaces the provider's signing key, as a provider's key
// rotation does; codes issued before are lost.
func (f *faultyProvider) rotateKey(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	key, err := devidp.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	cfg := f.cfg
	cfg.Key = key
	if f.idp, err = devidp.New(cfg); err != nil {
		t.Fatal(err)
	}
	f.key = key
}

// startFaultyProvider serves the app against a faultyProvider, through
// OIDC_ISSUER as with any provider. setup, when given, runs before the app
// starts.
func startFaultyProvider(t *testing.T, env map[string]string, setup ...func(*faultyProvider)) (string, *faultyProvider) {
	t.Helper()
	bases, f := startInstances(t, 1, env, setup...)
	return bases[0], f
}

// startInstances serves n apps, each with its own state, against one
// faultyProvider, and returns their base URLs.
func startInstances(t *testing.T, n int, env map[string]string, setup ...func(*faultyProvider)) ([]string, *faultyProvider) {
	t.Helper()
	var (
		servers []*httptest.Server
		bases   []string
		client  = devidp.Client{ID: "app", Secret: "app-secret"}
	)
	for range n {
		srv := httptest.NewUnstartedServer(nil)
		base := "http://" + srv.Listener.Addr().String()
		servers, bases = append(servers, srv), append(bases, base)
		client.RedirectURIs = append(client.RedirectURIs, base+"/callback")
		client.PostLogoutRedirectURIs = append(client.PostLogoutRedirectURIs, base+"/")
	}
	key, err := devidp.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	f := &faultyProvider{key: key, hits: make(map[string]int)}
	idpSrv := httptest.NewServer(f)
	t.Cleanup(idpSrv.Close)
	f.cfg = devidp.Config{Issuer: idpSrv.URL, Key: key, Clients: []devidp.Client{client}}
	if f.idp, err = devidp.New(f.cfg); err != nil {
		t.Fatal(err)
	}
	for _, fn := range setup {
		fn(f)
	}
	vars := map[string]string{"OIDC_ISSUER": idpSrv.URL, "OIDC_CLIENT_ID": "app", "OIDC_CLIENT_SECRET": "app-secret", "SESSION_STORE": "memory"}
	for k, v := range env {
		vars[k] = v
	}
	for _, srv := range servers {
		serveApp(t, srv, vars)
	}
	return bases, f
}

// signIn runs a login up to the provider's sign-in page and submits it.
func signIn(t *testing.T, b *testclient.Browser, base, email string, extra map[string]string) testclient.Page {
	t.Helper()
	p := b.Get(base + "/login")
	form := p.Form(t, "/authorize")
	set := map[string]string{"name": "User " + email, "email": email}
	for k, v := range extra {
		set[k] = v
	}
	return b.Submit(form, set)
}

func TestCallbackFailures(t *testing.T) {
	base, f := startFaultyProvider(t, map[string]string{"PROVIDER_TIMEOUT": "300ms"})
	other, err := devidp.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	otherIdP, err := devidp.New(devidp.Config{Issuer: "http://127.0.0.1:1", Key: other})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	// unsigned encodes claims as a JWT with the given header and signer.
	unsigned := func(header string, sign func(string) string) func(map[string]any) (string, error) {
		return func(c map[string]any) (string, error) {
			b, _ := json.Marshal(c)
			in := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString(b)
			return in + "." + sign(in), nil
		}
	}
	hs256 := func(in string) string {
		m := hmac.New(sha256.New, []byte("app-secret"))
		m.Write([]byte(in))
		return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}

	tests := []struct {
		name     string
		edit     func(map[string]any)
		mint     func(map[string]any) (string, error)
		override map[string]http.HandlerFunc
		callback string // visit this callback instead of signing in
		cancel   bool   // press Cancel on the provider's page
		status   int
		text     string
	}{
		{name: "valid login", edit: func(c map[string]any) {}, status: 200, text: "Welcome User"},
		{name: "exp within clock skew", edit: func(c map[string]any) { c["exp"] = now.Add(-30 * time.Second).Unix() }, status: 200, text: "Welcome User"},
		{name: "missing state", callback: "/callback?code=abc", status: 400, text: "missing its state"},
		{name: "wrong state", callback: "/callback?code=abc&state=not-a-state-of-this-browser", status: 400, text: "unknown, expired or already used"},
		{name: "provider error response", cancel: true, status: 400, text: "You cancelled sign-in."},
		{name: "token endpoint refuses code", override: token(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(400)
			w.Write([]byte(`{"error":"invalid_grant"}`))
		}), status: 400, text: "refused this sign-in (invalid_grant)"},
		{name: "token endpoint fails", override: token(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "boom", 500)
		}), status: 502, text: "failed to complete the sign-in"},
		{name: "token endpoint hangs", override: token(func(w http.ResponseWriter, r *http.Request) {
			// The server notices the client giving up only once the body is read.
			io.Copy(io.Discard, r.Body)
			<-r.Context().Done()
		}), status: 504, text: "did not answer in time"},
		{name: "expired ID token", edit: func(c map[string]any) {
			c["iat"], c["exp"] = now.Add(-3*time.Hour).Unix(), now.Add(-2*time.Hour).Unix()
		}, status: 400, text: "could not be verified"},
		{name: "ID token without exp", edit: func(c map[string]any) { delete(c, "exp") }, status: 400, text: "could not be verified"},
		{name: "ID token without iat", edit: func(c map[string]any) { delete(c, "iat") }, status: 400, text: "could not be verified"},
		{name: "ID token issued in the future", edit: func(c map[string]any) { c["iat"] = now.Add(time.Hour).Unix() }, status: 400, text: "could not be verified"},
		{name: "wrong audience", edit: func(c map[string]any) { c["aud"] = "another-app" }, status: 400, text: "could not be verified"},
		{name: "several audiences without azp", edit: func(c map[string]any) { c["aud"] = []string{"app", "another-app"} }, status: 400, text: "could not be verified"},
		{name: "azp of another client", edit: func(c map[string]any) { c["azp"] = "another-app" }, status: 400, text: "could not be verified"},
		{name: "azp not a string", edit: func(c map[string]any) { c["azp"] = 42 }, status: 400, text: "could not be verified"},
		{name: "auth_time not a number", edit: func(c map[string]any) { c["auth_time"] = "yesterday" }, status: 400, text: "could not be verified"},
		{name: "auth_time without max_age", edit: func(c map[string]any) { c["auth_time"] = now.Add(-time.Hour).Unix() }, status: 200, text: "Welcome User"},
		{name: "wrong issuer", edit: func(c map[string]any) { c["iss"] = "http://evil.example" }, status: 400, text: "could not be verified"},
		{name: "wrong nonce", edit: func(c map[string]any) { c["nonce"] = "replayed-nonce" }, status: 400, text: "could not be verified"},
		{name: "missing nonce", edit: func(c map[string]any) { delete(c, "nonce") }, status: 400, text: "could not be verified"},
		{name: "missing sub", edit: func(c map[string]any) { delete(c, "sub") }, status: 400, text: "could not be verified"},
		{name: "signed by another key", edit: func(c map[string]any) {}, mint: otherIdP.Sign, status: 400, text: "could not be verified"},
		{name: "alg none", edit: func(c map[string]any) {}, mint: unsigned(`{"alg":"none","typ":"JWT"}`, func(string) string { return "" }), status: 400, text: "could not be verified"},
		{name: "token without kid, JWKS of one key", edit: func(c map[string]any) {}, mint: func(c map[string]any) (string, error) {
			return signWithoutKid(f.key, c)
		}, status: 200, text: "Welcome User"},
		{name: "profile claims only in userinfo", edit: func(c map[string]any) { delete(c, "name"); delete(c, "email") }, status: 200, text: "Welcome User user@example.com!"},
		{name: "userinfo of another subject ignored", edit: func(c map[string]any) { delete(c, "name"); delete(c, "email") },
			override: map[string]http.HandlerFunc{"/userinfo": func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(`{"sub":"someone-else","name":"Mallory"}`))
			}}, status: 200, text: "Welcome dev|"},
		{name: "JWKS unavailable", edit: func(c map[string]any) {}, mint: func(c map[string]any) (string, error) {
			return signWithKid(f.key, "new-key-id", c)
		}, override: map[string]http.HandlerFunc{"/jwks": func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "down", 500)
		}}, status: 502, text: "failed to complete the sign-in"},
		{name: "HS256 with the client secret", edit: func(c map[string]any) {}, mint: unsigned(`{"alg":"HS256","typ":"JWT"}`, hs256), status: 400, text: "could not be verified"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.set(tt.edit, tt.mint, tt.override)
			defer f.set(nil, nil, nil)
			b := testclient.New(t)
			var p testclient.Page
			switch {
			case tt.callback != "":
				b.Get(base + "/login") // the browser has a pending login of its own
				p = b.Get(base + tt.callback)
			case tt.cancel:
				p = signIn(t, b, base, "cancel@example.com", map[string]string{"cancel": "1"})
			default:
				p = signIn(t, b, base, "user@example.com", nil)
			}
			if p.Status != tt.status || !strings.Contains(p.Body, tt.text) {
				t.Fatalf("got %d, want %d with %q:\n%s", p.Status, tt.status, tt.text, p.Body)
			}
			home := b.Get(base + "/").Body
			if signedIn := strings.Contains(home, "Log out"); signedIn != (tt.status == 200) {
				t.Fatalf("signed in = %v after a %d, want %v", signedIn, p.Status, tt.status == 200)
			}
			if tt.status != 200 && !strings.Contains(p.Body, "reference <code>") {
				t.Errorf("error page lacks a reference ID:\n%s", p.Body)
			}
		})
	}
}

func TestReplayedCallbackNeverChangesTheUser(t *testing.T) {
	base, _ := startFaultyProvider(t, nil)

	// Ada signs in; her callback URL is captured on the way.
	ada := testclient.New(t)
	p := ada.Get(base + "/login")
	stop := ada.NoRedirects().Submit(p.Form(t, "/authorize"), map[string]string{"name": "Ada", "email": "ada@example.com"})
	adaCallback := stop.Header.Get("Location")
	if p := ada.Get(adaCallback); !strings.Contains(p.Body, "Welcome Ada!") {
		t.Fatalf("Ada's sign-in failed:\n%s", p.Body)
	}

	// Mallory starts her own login and keeps its callback unused.
	mallory := testclient.New(t)
	p = mallory.Get(base + "/login")
	stop = mallory.NoRedirects().Submit(p.Form(t, "/authorize"), map[string]string{"name": "Mallory", "email": "mallory@example.com"})
	malloryCallback := stop.Header.Get("Location")

	// Ada starts a login; Mallory's code is pasted into Ada's own callback:
	// the state is Ada's, but the code was issued for Mallory's PKCE verifier.
	p = mallory.Get(base + "/login")
	stop = mallory.NoRedirects().Submit(p.Form(t, "/authorize"), map[string]string{"name": "Mallory", "email": "mallory@example.com"})
	malloryCode, _ := url.Parse(stop.Header.Get("Location"))
	adaLogin, _ := url.Parse(ada.NoRedirects().Get(base + "/login").Header.Get("Location"))
	swapped := base + "/callback?" + url.Values{"state": {adaLogin.Query().Get("state")}, "code": {malloryCode.Query().Get("code")}}.Encode()

	for _, tc := range []struct {
		name     string
		b        *testclient.Browser
		callback string
		want     string
	}{
		{"Mallory's code with Ada's state", ada, swapped, "Welcome Ada!"},
		{"Ada's callback again in Ada's browser", ada, adaCallback, "Welcome Ada!"},
		{"Mallory's callback in Ada's browser", ada, malloryCallback, "Welcome Ada!"},
		{"Ada's callback in a fresh browser", testclient.New(t), adaCallback, "Welcome Guest"},
	} {
		p := tc.b.Get(tc.callback)
		if p.Status != http.StatusBadRequest {
			t.Errorf("%s: got %d, want 400", tc.name, p.Status)
		}
		if home := tc.b.Get(base + "/").Body; !strings.Contains(home, tc.want) {
			t.Errorf("%s: home page lacks %q:\n%s", tc.name, tc.want, home)
		}
	}
}

func TestProviderUnavailable(t *testing.T) {
	// Nothing listens on the issuer: the app still serves, /login says so.
	base, _ := startApp(t, map[string]string{
		"OIDC_ISSUER": "http://127.0.0.1:1", "OIDC_CLIENT_ID": "app", "OIDC_CLIENT_SECRET": "s", "SESSION_STORE": "memory",
	})
	b := testclient.New(t)
	if p := b.Get(base + "/"); p.Status != 200 || !strings.Contains(p.Body, "Welcome Guest") {
		t.Fatalf("home with the provider down: %d", p.Status)
	}
	if p := b.Get(base + "/login"); p.Status != http.StatusServiceUnavailable || !strings.Contains(p.Body, "cannot reach the sign-in provider") {
		t.Fatalf("/login with the provider down: got %d:\n%s", p.Status, p.Body)
	}
	if p := b.Get(base + "/readyz"); p.Status != 200 || !strings.Contains(p.Body, `"state":"unavailable"`) {
		t.Fatalf("/readyz with the provider down: want 200 reporting it unavailable, got %d %s", p.Status, p.Body)
	}
}

// token replaces the token endpoint.
func token(h http.HandlerFunc) map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{"/token": h}
}

func signWithKid(key *rsa.PrivateKey, kid string, claims map[string]any) (string, error) {
	return signTyped(key, kid, "JWT", claims)
}

// signTyped signs claims with key, naming kid (unless empty) and typ in
// the header.
func signTyped(key *rsa.PrivateKey, kid, typ string, claims map[string]any) (string, error) {
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ))
	sk := jose.SigningKey{Algorithm: jose.RS256, Key: key}
	if kid != "" {
		sk.Key = jose.JSONWebKey{Key: key, KeyID: kid}
	}
	signer, err := jose.NewSigner(sk, opts)
	if err != nil {
		return "", err
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

func signWithoutKid(key *rsa.PrivateKey, claims map[string]any) (string, error) {
	return signWithKid(key, "", claims)
}

func TestKeyRotation(t *testing.T) {
	base, f := startFaultyProvider(t, nil)
	if p := signIn(t, testclient.New(t), base, "before@example.com", nil); !strings.Contains(p.Body, "Welcome User before@example.com!") {
		t.Fatalf("sign-in before the rotation failed:\n%s", p.Body)
	}
	f.rotateKey(t)
	if p := signIn(t, testclient.New(t), base, "after@example.com", nil); !strings.Contains(p.Body, "Welcome User after@example.com!") {
		t.Fatalf("sign-in after the key rotation failed:\n%s", p.Body)
	}
}

func TestUnknownKeyIDsCannotFloodTheProvider(t *testing.T) {
	base, f := startFaultyProvider(t, nil)
	n := 0
	f.set(func(map[string]any) {}, func(c map[string]any) (string, error) {
		n++
		return signWithKid(f.key, fmt.Sprintf("made-up-%d", n), c)
	}, nil)
	for i := range 20 {
		if p := signIn(t, testclient.New(t), base, "flood@example.com", nil); p.Status != http.StatusBadRequest {
			t.Fatalf("login %d with an unknown kid: got %d, want 400", i, p.Status)
		}
	}
	// The limiter allows a burst of 3 fetches, then one every 10 s.
	if got := f.count("/jwks"); got > 5 {
		t.Errorf("20 tokens with unknown kids made %d JWKS requests, want at most 5", got)
	}
}

func TestDiscoveryIssuerMismatch(t *testing.T) {
	base, _ := startFaultyProvider(t, nil, func(f *faultyProvider) {
		f.set(nil, nil, map[string]http.HandlerFunc{"/.well-known/openid-configuration": func(w http.ResponseWriter, r *http.Request) {
			rec := httptest.NewRecorder()
			f.idp.ServeHTTP(rec, r)
			var doc map[string]any
			json.Unmarshal(rec.Body.Bytes(), &doc)
			doc["issuer"] = "https://impostor.example"
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(doc)
		}})
	})
	b := testclient.New(t)
	if p := b.Get(base + "/login"); p.Status != http.StatusServiceUnavailable {
		t.Fatalf("/login with a discovery document of another issuer: got %d, want 503:\n%s", p.Status, p.Body)
	}
	if p := b.Get(base + "/readyz"); p.Status != http.StatusOK || !strings.Contains(p.Body, `"state":"unavailable"`) {
		t.Fatalf("/readyz: want 200 with the provider unavailable, got %d %s", p.Status, p.Body)
	}
	if !strings.Contains(suiteLog.String(), "impostor.example") {
		t.Fatal("the log does not name the mismatched issuer")
	}
}
