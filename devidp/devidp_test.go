package devidp_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/gologin/gologin/devidp"
	"github.com/gologin/gologin/devidp/devidptest"
	"github.com/gologin/gologin/internal/testclient"
)

// The relying parties the tests register. Their callback URLs are never
// served: the tests read the provider's redirects instead of following them.
var (
	app = devidp.Client{ID: "app", Secret: "app-secret",
		RedirectURIs: []string{"http://app.test/callback", "http://app.test/other-callback"}}
	otherApp = devidp.Client{ID: "other", Secret: "other-secret",
		RedirectURIs: []string{"http://other.test/callback"}}
)

// ada is who the tests sign in as on the provider's page.
var ada = devidp.User{Name: "Ada Lovelace", Email: "ada@example.com"}

// relyingParty is app, configured from the discovery document of a
// provider on a loopback server, as an app would be.
type relyingParty struct {
	issuer   string
	provider *oidc.Provider
	oauth    oauth2.Config
}

func newRelyingParty(t *testing.T) *relyingParty {
	t.Helper()
	srv, _ := devidptest.NewServer(t, app, otherApp)
	provider, err := oidc.NewProvider(t.Context(), srv.URL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	endpoint := provider.Endpoint()
	// A fixed style makes one token request per exchange: oauth2's
	// auto-detection retries a refused request, spending the code twice.
	endpoint.AuthStyle = oauth2.AuthStyleInHeader
	return &relyingParty{issuer: srv.URL, provider: provider, oauth: oauth2.Config{
		ClientID:     app.ID,
		ClientSecret: app.Secret,
		Endpoint:     endpoint,
		RedirectURL:  app.RedirectURIs[0],
		Scopes:       []string{oidc.ScopeOpenID, "profile", "email"},
	}}
}

// signIn sends a browser to the authorization endpoint with opts, signs in
// as ada on the provider's page, and returns the code the provider sends
// back to the callback.
func (rp *relyingParty) signIn(t *testing.T, opts ...oauth2.AuthCodeOption) string {
	t.Helper()
	browser := testclient.New(t).NoRedirects()
	state := rand.Text()
	page := browser.Get(rp.oauth.AuthCodeURL(state, opts...))
	if page.Status != http.StatusOK {
		t.Fatalf("authorization request: %d, want the sign-in page:\n%s", page.Status, page.Body)
	}
	back := callbackQuery(t, browser.Submit(page.Form(t, "/authorize"), map[string]string{"name": ada.Name, "email": ada.Email}), rp.oauth.RedirectURL)
	if back.Get("state") != state || back.Get("iss") != rp.issuer || back.Get("code") == "" {
		t.Fatalf("callback query %v: want a code, state %q and iss %q", back, state, rp.issuer)
	}
	return back.Get("code")
}

// callbackQuery returns the query of page's redirect to callback, failing
// unless page redirects there.
func callbackQuery(t *testing.T, page testclient.Page, callback string) url.Values {
	t.Helper()
	loc, err := url.Parse(page.Header.Get("Location"))
	if page.Status != http.StatusFound || err != nil {
		t.Fatalf("got %d, Location %q; want a redirect to %s:\n%s", page.Status, page.Header.Get("Location"), callback, page.Body)
	}
	if target := loc.Scheme + "://" + loc.Host + loc.Path; target != callback {
		t.Fatalf("redirected to %s, want %s", loc, callback)
	}
	return loc.Query()
}

// wantTokenError fails unless err is the token endpoint's refusal with
// HTTP status and RFC 6749 error code.
func wantTokenError(t *testing.T, err error, status int, code string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("token request: %v, want the error %q", err, code)
	}
	if re.Response.StatusCode != status || re.ErrorCode != code {
		t.Fatalf("token request: %d %q, want %d %q", re.Response.StatusCode, re.ErrorCode, status, code)
	}
}

func TestDiscovery(t *testing.T) {
	key, err := devidp.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	const origin = "https://idp.example.test"
	for _, issuer := range []string{origin, origin + "/tenant", origin + "/tenant/"} {
		t.Run(issuer, func(t *testing.T) {
			p, err := devidp.New(devidp.Config{Issuer: issuer, Key: key, Clients: []devidp.Client{app}})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(p)
			defer srv.Close()
			// The provider answers for its issuer's path whatever host
			// reaches it, as behind a reverse proxy: local turns an
			// advertised URL into one on the test server.
			local := func(u string) string { return srv.URL + strings.TrimPrefix(u, origin) }
			base := strings.TrimSuffix(issuer, "/")

			var doc struct {
				Issuer         string   `json:"issuer"`
				Authorization  string   `json:"authorization_endpoint"`
				Token          string   `json:"token_endpoint"`
				Userinfo       string   `json:"userinfo_endpoint"`
				JWKS           string   `json:"jwks_uri"`
				EndSession     string   `json:"end_session_endpoint"`
				PKCEMethods    []string `json:"code_challenge_methods_supported"`
				SigningMethods []string `json:"id_token_signing_alg_values_supported"`
			}
			getJSON(t, local(base+"/.well-known/openid-configuration"), &doc)
			if doc.Issuer != issuer {
				t.Errorf("issuer %q, want exactly %q", doc.Issuer, issuer)
			}
			if strings.Join(doc.PKCEMethods, " ") != "S256" || strings.Join(doc.SigningMethods, " ") != "RS256" {
				t.Errorf("code challenge methods %q, signing algorithms %q; want S256 and RS256", doc.PKCEMethods, doc.SigningMethods)
			}

			// Each endpoint lies under the issuer and is served there: an
			// answer of its own, not the provider's 404 page nor a redirect.
			noRedirects := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			for _, ep := range []struct {
				name, url, method string
				want              int
			}{
				{"authorization_endpoint", doc.Authorization, http.MethodGet, http.StatusBadRequest}, // no client_id
				{"token_endpoint", doc.Token, http.MethodPost, http.StatusUnauthorized},              // no client credentials
				{"userinfo_endpoint", doc.Userinfo, http.MethodGet, http.StatusUnauthorized},         // no access token
				{"jwks_uri", doc.JWKS, http.MethodGet, http.StatusOK},
				{"end_session_endpoint", doc.EndSession, http.MethodGet, http.StatusOK},
			} {
				if !strings.HasPrefix(ep.url, base+"/") {
					t.Errorf("%s %q is not under the issuer %q", ep.name, ep.url, issuer)
					continue
				}
				req, _ := http.NewRequest(ep.method, local(ep.url), nil)
				resp, err := noRedirects.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != ep.want {
					t.Errorf("%s %s (%s): %d, want %d", ep.method, ep.url, ep.name, resp.StatusCode, ep.want)
				}
			}

			var jwks jose.JSONWebKeySet
			getJSON(t, local(doc.JWKS), &jwks)
			if len(jwks.Keys) != 1 {
				t.Fatalf("JWKS has %d keys, want the signing key alone", len(jwks.Keys))
			}
			k := jwks.Keys[0]
			if pub, ok := k.Key.(*rsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) || k.Use != "sig" || k.Algorithm != "RS256" || k.KeyID == "" || !k.IsPublic() {
				t.Errorf("JWKS key %+v: want the public half of the signing key, for RS256 signatures, with a key ID", k)
			}
		})
	}
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET %s: %d %s, want 200 JSON", u, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

func TestAuthorizationCodeFlowWithPKCE(t *testing.T) {
	rp := newRelyingParty(t)
	// The provider advertises both ways for a client to authenticate.
	for _, auth := range []struct {
		name  string
		style oauth2.AuthStyle
	}{
		{"client_secret_basic", oauth2.AuthStyleInHeader},
		{"client_secret_post", oauth2.AuthStyleInParams},
	} {
		t.Run(auth.name, func(t *testing.T) {
			conf := rp.oauth
			conf.Endpoint.AuthStyle = auth.style
			verifier, nonce := oauth2.GenerateVerifier(), rand.Text()
			code := rp.signIn(t, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier))

			tok, err := conf.Exchange(t.Context(), code, oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatalf("exchange: %v", err)
			}
			raw, _ := tok.Extra("id_token").(string)
			idToken, err := rp.provider.VerifierContext(t.Context(), &oidc.Config{ClientID: app.ID}).Verify(t.Context(), raw)
			if err != nil {
				t.Fatalf("ID token: %v", err)
			}
			if idToken.Nonce != nonce {
				t.Errorf("ID token nonce %q, want %q", idToken.Nonce, nonce)
			}
			var claims struct {
				Name  string `json:"name"`
				Email string `json:"email"`
			}
			if err := idToken.Claims(&claims); err != nil {
				t.Fatal(err)
			}
			if idToken.Subject != ada.Subject() || claims.Name != ada.Name || claims.Email != ada.Email {
				t.Errorf("ID token for %s %+v, want %s %+v", idToken.Subject, claims, ada.Subject(), ada)
			}

			info, err := rp.provider.UserInfo(t.Context(), oauth2.StaticTokenSource(tok))
			if err != nil {
				t.Fatalf("userinfo: %v", err)
			}
			if info.Subject != idToken.Subject || info.Email != ada.Email {
				t.Errorf("userinfo %s %s, want the ID token's user %s %s", info.Subject, info.Email, idToken.Subject, ada.Email)
			}
		})
	}
}

func TestTokenRequestRefusesPKCEMismatch(t *testing.T) {
	rp := newRelyingParty(t)
	verifier := oauth2.GenerateVerifier()
	for _, tt := range []struct {
		name                string
		authorize, exchange []oauth2.AuthCodeOption
	}{
		{"wrong verifier", []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}, []oauth2.AuthCodeOption{oauth2.VerifierOption(oauth2.GenerateVerifier())}},
		{"no verifier", []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code := rp.signIn(t, tt.authorize...)
			_, err := rp.oauth.Exchange(t.Context(), code, tt.exchange...)
			wantTokenError(t, err, http.StatusBadRequest, "invalid_grant")
		})
	}
}

// TestAuthorizationRequestErrorsGoBackToTheClient checks requests from a
// registered client to its registered callback that the provider refuses:
// the error goes back to the callback with the state, without a sign-in page.
func TestAuthorizationRequestErrorsGoBackToTheClient(t *testing.T) {
	rp := newRelyingParty(t)
	verifier := oauth2.GenerateVerifier()
	for _, tt := range []struct {
		name string
		opts []oauth2.AuthCodeOption
		want string
	}{
		// Every client must use PKCE (RFC 9700 2.1.1).
		{"no PKCE challenge", nil, "invalid_request"},
		{"PKCE method plain", []oauth2.AuthCodeOption{
			oauth2.SetAuthURLParam("code_challenge", verifier), oauth2.SetAuthURLParam("code_challenge_method", "plain")}, "invalid_request"},
		// Without a method the challenge is plain (RFC 7636 4.3).
		{"PKCE challenge without method", []oauth2.AuthCodeOption{
			oauth2.SetAuthURLParam("code_challenge", oauth2.S256ChallengeFromVerifier(verifier))}, "invalid_request"},
		{"PKCE method unknown", []oauth2.AuthCodeOption{
			oauth2.SetAuthURLParam("code_challenge", oauth2.S256ChallengeFromVerifier(verifier)), oauth2.SetAuthURLParam("code_challenge_method", "S512")}, "invalid_request"},
		{"implicit flow", []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("response_type", "id_token")}, "unsupported_response_type"},
		{"no openid scope", []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("scope", "profile email")}, "invalid_scope"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			page := testclient.New(t).NoRedirects().Get(rp.oauth.AuthCodeURL("st4te", tt.opts...))
			back := callbackQuery(t, page, rp.oauth.RedirectURL)
			if back.Get("error") != tt.want || back.Get("state") != "st4te" || back.Has("code") {
				t.Errorf("callback query %v, want error %q with the state and no code", back, tt.want)
			}
		})
	}
}

func TestCodeWorksOnce(t *testing.T) {
	rp := newRelyingParty(t)
	verifier := oauth2.GenerateVerifier()
	code := rp.signIn(t, oauth2.S256ChallengeOption(verifier))
	if _, err := rp.oauth.Exchange(t.Context(), code, oauth2.VerifierOption(verifier)); err != nil {
		t.Fatalf("first exchange: %v", err)
	}
	_, err := rp.oauth.Exchange(t.Context(), code, oauth2.VerifierOption(verifier))
	wantTokenError(t, err, http.StatusBadRequest, "invalid_grant")
}

// TestAuthorizationRequestRefusesUnknownClientOrCallback checks that a
// request naming an unknown client or a callback its client did not
// register gets an error page: redirecting there would make the provider
// an open redirector, and could hand a code to an attacker's site.
func TestAuthorizationRequestRefusesUnknownClientOrCallback(t *testing.T) {
	rp := newRelyingParty(t)
	for _, tt := range []struct {
		name, method string
		params       url.Values
		wantPage     string
	}{
		{"unknown client", http.MethodGet, url.Values{"client_id": {"nobody"}}, "Unknown application"},
		{"another client's callback", http.MethodGet, url.Values{"redirect_uri": otherApp.RedirectURIs}, "Unregistered callback"},
		{"callback on another host", http.MethodGet, url.Values{"redirect_uri": {"http://attacker.test/callback"}}, "Unregistered callback"},
		{"callback with dot segments", http.MethodGet, url.Values{"redirect_uri": {app.RedirectURIs[0] + "/../../attacker"}}, "Unregistered callback"},
		{"callback with a query", http.MethodGet, url.Values{"redirect_uri": {app.RedirectURIs[0] + "?next=http://attacker.test/"}}, "Unregistered callback"},
		{"no callback", http.MethodGet, url.Values{"redirect_uri": nil}, "Unregistered callback"},
		// A forged sign-in form is checked as the request was.
		{"sign-in form with another callback", http.MethodPost, url.Values{"redirect_uri": {"http://attacker.test/callback"}, "name": {ada.Name}, "email": {ada.Email}}, "Unregistered callback"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			authURL, _ := url.Parse(rp.oauth.AuthCodeURL("st4te", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
			params := authURL.Query()
			for k, v := range tt.params {
				params[k] = v
			}
			browser := testclient.New(t).NoRedirects()
			var page testclient.Page
			if tt.method == http.MethodPost {
				authURL.RawQuery = ""
				page = browser.PostForm(authURL.String(), params)
			} else {
				authURL.RawQuery = params.Encode()
				page = browser.Get(authURL.String())
			}
			if page.Status != http.StatusBadRequest || page.Header.Get("Location") != "" || !strings.Contains(page.Body, tt.wantPage) {
				t.Fatalf("got %d, Location %q; want a 400 page %q and no redirect:\n%s", page.Status, page.Header.Get("Location"), tt.wantPage, page.Body)
			}
		})
	}
}

// TestTokenRequestRefusesWrongClientOrCallback redeems a good code with
// the wrong client credentials or callback.
func TestTokenRequestRefusesWrongClientOrCallback(t *testing.T) {
	rp := newRelyingParty(t)
	for _, tt := range []struct {
		name       string
		change     func(*oauth2.Config)
		wantStatus int
		wantError  string
	}{
		{"wrong secret in Basic", func(c *oauth2.Config) { c.ClientSecret = "guess" }, http.StatusUnauthorized, "invalid_client"},
		{"wrong secret in the form", func(c *oauth2.Config) {
			c.ClientSecret, c.Endpoint.AuthStyle = "guess", oauth2.AuthStyleInParams
		}, http.StatusUnauthorized, "invalid_client"},
		{"no secret", func(c *oauth2.Config) { c.ClientSecret, c.Endpoint.AuthStyle = "", oauth2.AuthStyleInParams }, http.StatusUnauthorized, "invalid_client"},
		{"unknown client", func(c *oauth2.Config) { c.ClientID = "nobody" }, http.StatusUnauthorized, "invalid_client"},
		{"another client", func(c *oauth2.Config) { c.ClientID, c.ClientSecret = otherApp.ID, otherApp.Secret }, http.StatusBadRequest, "invalid_grant"},
		// Registered, but not the callback the code was issued for.
		{"another callback", func(c *oauth2.Config) { c.RedirectURL = app.RedirectURIs[1] }, http.StatusBadRequest, "invalid_grant"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			verifier := oauth2.GenerateVerifier()
			code := rp.signIn(t, oauth2.S256ChallengeOption(verifier))
			conf := rp.oauth
			tt.change(&conf)
			_, err := conf.Exchange(t.Context(), code, oauth2.VerifierOption(verifier))
			wantTokenError(t, err, tt.wantStatus, tt.wantError)
		})
	}
}
