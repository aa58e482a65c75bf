package login

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gologin/gologin/devidp"
	"github.com/gologin/gologin/devidp/devidptest"
	"github.com/gologin/gologin/internal/testclient"
)

// TestCallbackFailures signs in against a provider that misbehaves in one
// way per case, and checks what Callback hands to Config.ErrorHandler (the
// reason, status and user-facing message), that OnEvent hears of it, and
// that no session is signed in; or, for the faults that must be tolerated,
// that the user is signed in.
func TestCallbackFailures(t *testing.T) {
	rp := newRP(t, func(c *Config) {
		c.Timeout = 300 * time.Millisecond
		c.ClockSkew = time.Minute
	})
	f := rp.idp
	other, err := devidp.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	otherIdP, err := devidp.New(devidp.Config{Issuer: "http://127.0.0.1:1", Key: other})
	if err != nil {
		t.Fatal(err)
	}
	ourKid := kidOf(t, f.Provider())
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
		m := hmac.New(sha256.New, []byte(rpSecret))
		m.Write([]byte(in))
		return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	claims := func(edit func(c map[string]any)) devidptest.Faults { return devidptest.Faults{Claims: edit} }
	mint := func(m func(map[string]any) (string, error)) devidptest.Faults { return devidptest.Faults{Mint: m} }
	// callbackIss rewrites the iss parameter of the provider's redirects
	// to the callback; "" removes it.
	callbackIss := func(iss string) devidptest.Faults {
		return devidptest.Faults{Handlers: map[string]http.HandlerFunc{"/authorize": func(w http.ResponseWriter, r *http.Request) {
			rec := httptest.NewRecorder()
			f.Provider().ServeHTTP(rec, r)
			if loc, err := url.Parse(rec.Header().Get("Location")); err == nil && loc.Query().Has("code") {
				q := loc.Query()
				if q.Del("iss"); iss != "" {
					q.Set("iss", iss)
				}
				loc.RawQuery = q.Encode()
				rec.Header().Set("Location", loc.String())
			}
			for k, vs := range rec.Header() {
				w.Header()[k] = vs
			}
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
		}}}
	}
	const (
		signedIn   = ""
		unverified = "could not be verified"
	)

	tests := []struct {
		name     string
		faults   devidptest.Faults
		callback string // visit this callback instead of signing in
		cancel   bool   // press Cancel on the provider's page
		reason   string // signedIn, or the failure's Reason
		status   int    // of the failure
		message  string // in the failure's Message
		check    func(t *testing.T, u User)
	}{
		{name: "valid login", reason: signedIn},
		{name: "exp within clock skew", faults: claims(func(c map[string]any) { c["exp"] = now.Add(-30 * time.Second).Unix() }), reason: signedIn},
		{name: "missing state", callback: "/callback?code=abc", reason: "missing_state", status: 400, message: "missing its state"},
		{name: "wrong state", callback: "/callback?code=abc&state=not-a-state-of-this-browser", reason: "invalid_state", status: 400, message: "unknown, expired or already used"},
		{name: "provider error response", cancel: true, reason: "access_denied", status: 400, message: "You cancelled sign-in."},
		{name: "iss of another provider in the callback", faults: callbackIss("http://evil.example"), reason: "issuer_mismatch", status: 400, message: "unexpected provider"},
		{name: "no iss in the callback, though advertised", faults: callbackIss(""), reason: "issuer_mismatch", status: 400, message: "unexpected provider"},
		{name: "token endpoint refuses code", faults: devidptest.Faults{Token: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(400)
			w.Write([]byte(`{"error":"invalid_grant"}`))
		}}, reason: "code_refused", status: 400, message: "refused this sign-in (invalid_grant)"},
		{name: "token endpoint fails", faults: devidptest.Faults{Token: func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "boom", 500)
		}}, reason: "provider_failed", status: 502, message: "failed to complete the sign-in"},
		{name: "token endpoint hangs", faults: devidptest.Faults{Token: func(w http.ResponseWriter, r *http.Request) {
			// The server notices the client giving up only once the body is read.
			io.Copy(io.Discard, r.Body)
			<-r.Context().Done()
		}}, reason: "timeout", status: 504, message: "did not answer in time"},
		{name: "expired ID token", faults: claims(func(c map[string]any) {
			c["iat"], c["exp"] = now.Add(-3*time.Hour).Unix(), now.Add(-2*time.Hour).Unix()
		}), reason: "invalid_id_token", status: 400, message: unverified},
		{name: "ID token without exp", faults: claims(func(c map[string]any) { delete(c, "exp") }), reason: "invalid_id_token", status: 400, message: unverified},
		{name: "ID token without iat", faults: claims(func(c map[string]any) { delete(c, "iat") }), reason: "invalid_id_token", status: 400, message: unverified},
		{name: "ID token issued a week ago", faults: claims(func(c map[string]any) { c["iat"] = now.Add(-7 * 24 * time.Hour).Unix() }), reason: "invalid_id_token", status: 400, message: unverified},
		{name: "ID token issued in the future", faults: claims(func(c map[string]any) { c["iat"] = now.Add(time.Hour).Unix() }), reason: "invalid_id_token", status: 400, message: unverified},
		{name: "wrong audience", faults: claims(func(c map[string]any) { c["aud"] = "another-app" }), reason: "invalid_id_token", status: 400, message: unverified},
		{name: "several audiences without azp", faults: claims(func(c map[string]any) { c["aud"] = []string{"app", "another-app"} }), reason: "invalid_id_token", status: 400, message: unverified},
		{name: "azp of another client", faults: claims(func(c map[string]any) { c["azp"] = "another-app" }), reason: "invalid_id_token", status: 400, message: unverified},
		{name: "azp not a string", faults: claims(func(c map[string]any) { c["azp"] = 42 }), reason: "invalid_id_token", status: 400, message: unverified},
		{name: "auth_time not a number", faults: claims(func(c map[string]any) { c["auth_time"] = "yesterday" }), reason: "invalid_id_token", status: 400, message: unverified},
		{name: "auth_time without max_age", faults: claims(func(c map[string]any) { c["auth_time"] = now.Add(-time.Hour).Unix() }), reason: signedIn},
		{name: "wrong issuer", faults: claims(func(c map[string]any) { c["iss"] = "http://evil.example" }), reason: "invalid_id_token", status: 400, message: unverified},
		{name: "wrong nonce", faults: claims(func(c map[string]any) { c["nonce"] = "replayed-nonce" }), reason: "invalid_id_token", status: 400, message: unverified},
		{name: "missing nonce", faults: claims(func(c map[string]any) { delete(c, "nonce") }), reason: "invalid_id_token", status: 400, message: unverified},
		{name: "missing sub", faults: claims(func(c map[string]any) { delete(c, "sub") }), reason: "invalid_id_token", status: 400, message: unverified},
		{name: "sub with a NUL", faults: claims(func(c map[string]any) { c["sub"] = "partner\x00victim" }), reason: "invalid_id_token", status: 400, message: unverified},
		{name: "sid with a NUL", faults: claims(func(c map[string]any) { c["sid"] = "x\x00y" }), reason: "invalid_id_token", status: 400, message: unverified},
		{name: "signed by another key", faults: mint(otherIdP.Sign), reason: "invalid_id_token", status: 400, message: unverified},
		{name: "signed by another key under our key's kid", faults: mint(func(c map[string]any) (string, error) {
			return devidptest.Sign(other, ourKid, "JWT", c)
		}), reason: "invalid_id_token", status: 400, message: unverified},
		{name: "alg none", faults: mint(unsigned(`{"alg":"none","typ":"JWT"}`, func(string) string { return "" })), reason: "invalid_id_token", status: 400, message: unverified},
		{name: "token without kid, JWKS of one key", faults: mint(func(c map[string]any) (string, error) {
			return devidptest.Sign(f.Key(), "", "JWT", c)
		}), reason: signedIn},
		{name: "token without kid, signed by another key", faults: mint(func(c map[string]any) (string, error) {
			return devidptest.Sign(other, "", "JWT", c)
		}), reason: "invalid_id_token", status: 400, message: unverified},
		{name: "profile claims only in userinfo", faults: claims(func(c map[string]any) { delete(c, "name"); delete(c, "email") }), reason: signedIn},
		{name: "userinfo of another subject refused", faults: devidptest.Faults{
			Claims: func(c map[string]any) { delete(c, "name"); delete(c, "email") },
			Userinfo: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(`{"sub":"someone-else","name":"Mallory","email":"mallory@example.com"}`))
			},
		}, reason: "userinfo_mismatch", status: 502, message: "The sign-in provider's answers do not agree."},
		// A kid the cached keys lack makes the package refetch the JWKS.
		{name: "JWKS unavailable", faults: devidptest.Faults{
			Mint: func(c map[string]any) (string, error) { return devidptest.Sign(f.Key(), "new-key-id", "JWT", c) },
			JWKS: func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", 500) },
		}, reason: "provider_failed", status: 502, message: "failed to complete the sign-in"},
		{name: "HS256 with the client secret", faults: mint(unsigned(`{"alg":"HS256","typ":"JWT"}`, hs256)), reason: "invalid_id_token", status: 400, message: unverified},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.Set(tt.faults)
			defer f.Set(devidptest.Faults{})
			rp.reset()
			b := testclient.New(t)
			var p testclient.Page
			switch {
			case tt.callback != "":
				b.Get(rp.base + "/login") // the browser has a pending login of its own
				p = b.Get(rp.base + tt.callback)
			case tt.cancel:
				p = rp.signIn(t, b, "cancel@example.com", map[string]string{"cancel": "1"})
			default:
				p = rp.signIn(t, b, "user@example.com", nil)
			}
			if tt.reason != signedIn {
				rp.wantFailure(t, b, p, tt.reason, tt.status, tt.message)
				return
			}
			if errs := rp.failures(t); len(errs) != 0 || p.Status != http.StatusOK {
				t.Fatalf("sign-in failed: %d %v", p.Status, errs)
			}
			if !rp.sawEvent(Event{Kind: LoginSucceeded}) {
				t.Error("OnEvent was not told of the sign-in")
			}
			u, ok := rp.user(t, b)
			switch {
			case !ok:
				t.Fatal("not signed in after the callback succeeded")
			case tt.check != nil:
				tt.check(t, u)
			case u.Name != "User user@example.com" || u.Email != "user@example.com" || !strings.HasPrefix(u.Subject, "dev|"):
				t.Errorf("signed in as %q %q %q, want User user@example.com", u.Subject, u.Name, u.Email)
			}
		})
	}
}

// kidOf is the key ID with which idp signs.
func kidOf(t *testing.T, idp *devidp.Provider) string {
	t.Helper()
	raw, err := idp.Sign(map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil || jws.Signatures[0].Header.KeyID == "" {
		t.Fatalf("the provider's token %q names no key: %v", raw, err)
	}
	return jws.Signatures[0].Header.KeyID
}

// TestReplayedCallbackNeverChangesTheUser: a callback URL works once, only
// in the browser that started its login, and a code works only with the
// PKCE verifier of the login it was issued for.
func TestReplayedCallbackNeverChangesTheUser(t *testing.T) {
	rp := newRP(t, nil)
	base := rp.base

	// Ada signs in; her callback URL is captured on the way.
	ada := testclient.New(t)
	p := ada.Get(base + "/login")
	stop := ada.NoRedirects().Submit(p.Form(t, "/authorize"), map[string]string{"name": "Ada", "email": "ada@example.com"})
	adaCallback := stop.Header.Get("Location")
	ada.Get(adaCallback)
	if u, ok := rp.user(t, ada); !ok || u.Name != "Ada" {
		t.Fatalf("Ada's sign-in failed: %+v %v", u, rp.failures(t))
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
	swapped := base + "/callback?" + url.Values{
		"state": {adaLogin.Query().Get("state")}, "code": {malloryCode.Query().Get("code")}, "iss": {malloryCode.Query().Get("iss")},
	}.Encode()

	for _, tc := range []struct {
		name     string
		b        *testclient.Browser
		callback string
		reason   string
		want     string // the user signed in afterwards; "": none
	}{
		{"Mallory's code with Ada's state", ada, swapped, "code_refused", "Ada"},
		{"Ada's callback again in Ada's browser", ada, adaCallback, "invalid_state", "Ada"},
		{"Mallory's callback in Ada's browser", ada, malloryCallback, "invalid_state", "Ada"},
		{"Ada's callback in a fresh browser", testclient.New(t), adaCallback, "invalid_state", ""},
	} {
		rp.reset()
		p := tc.b.Get(tc.callback)
		if e := rp.onlyError(t); p.Status != http.StatusBadRequest || e.Status != http.StatusBadRequest || e.Reason != tc.reason {
			t.Errorf("%s: got %d, %s %d; want 400, %s", tc.name, p.Status, e.Reason, e.Status, tc.reason)
		}
		if u, _ := rp.user(t, tc.b); u.Name != tc.want {
			t.Errorf("%s: signed in as %q, want %q", tc.name, u.Name, tc.want)
		}
	}
}

// TestDiscoveryOfAnotherIssuer: a discovery document naming another
// issuer makes the provider unavailable: Login fails with
// provider_unavailable (503) and ProviderStatus names the impostor.
func TestDiscoveryOfAnotherIssuer(t *testing.T) {
	rp := newRP(t, nil)
	rp.idp.Set(devidptest.Faults{Handlers: map[string]http.HandlerFunc{"/.well-known/openid-configuration": func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		rp.idp.Provider().ServeHTTP(rec, r)
		var doc map[string]any
		json.Unmarshal(rec.Body.Bytes(), &doc)
		doc["issuer"] = "https://impostor.example"
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(doc)
	}}})
	b := testclient.New(t)
	p := b.Get(rp.base + "/login")
	if e := rp.onlyError(t); p.Status != http.StatusServiceUnavailable || e.Reason != "provider_unavailable" || e.Status != http.StatusServiceUnavailable {
		t.Fatalf("/login with a discovery document of another issuer: got %d, %s %d; want 503 provider_unavailable", p.Status, e.Reason, e.Status)
	}
	if ready, err := rp.auth.ProviderStatus(); ready || err == nil || !strings.Contains(err.Error(), "impostor.example") {
		t.Fatalf("ProviderStatus = %v, %v; want unavailable, naming the impostor", ready, err)
	}
}
