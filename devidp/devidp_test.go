package devidp_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
			p, err := devidp.New(devidp.Config{Issuer: issuer, Key: key, Clients: []devidp.Client{app}, PAR: true})
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
				PAR            string   `json:"pushed_authorization_request_endpoint"`
				RequirePAR     *bool    `json:"require_pushed_authorization_requests"`
				PKCEMethods    []string `json:"code_challenge_methods_supported"`
				SigningMethods []string `json:"id_token_signing_alg_values_supported"`
				ResponseModes  []string `json:"response_modes_supported"`
				GrantTypes     []string `json:"grant_types_supported"`
				AuthMethods    []string `json:"token_endpoint_auth_methods_supported"`
				AuthAlgs       []string `json:"token_endpoint_auth_signing_alg_values_supported"`
				DPoPAlgs       []string `json:"dpop_signing_alg_values_supported"`
			}
			getJSON(t, local(base+"/.well-known/openid-configuration"), &doc)
			if doc.Issuer != issuer {
				t.Errorf("issuer %q, want exactly %q", doc.Issuer, issuer)
			}
			if strings.Join(doc.PKCEMethods, " ") != "S256" || strings.Join(doc.SigningMethods, " ") != "RS256" {
				t.Errorf("code challenge methods %q, signing algorithms %q; want S256 and RS256", doc.PKCEMethods, doc.SigningMethods)
			}
			for _, adv := range []struct {
				name      string
				got, want []string
			}{
				{"response_modes_supported", doc.ResponseModes, []string{"query", "form_post"}},
				{"grant_types_supported", doc.GrantTypes, []string{"authorization_code", "refresh_token"}},
				{"token_endpoint_auth_methods_supported", doc.AuthMethods, []string{"client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt"}},
				{"token_endpoint_auth_signing_alg_values_supported", doc.AuthAlgs, []string{"RS256", "PS256", "ES256", "HS256"}},
				{"dpop_signing_alg_values_supported", doc.DPoPAlgs, []string{"ES256", "PS256", "RS256"}},
			} {
				if !slices.Equal(adv.got, adv.want) {
					t.Errorf("%s %q, want %q", adv.name, adv.got, adv.want)
				}
			}
			if doc.RequirePAR == nil || *doc.RequirePAR {
				t.Errorf("require_pushed_authorization_requests %v, want false: PAR is optional by default", doc.RequirePAR)
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
				{"pushed_authorization_request_endpoint", doc.PAR, http.MethodPost, http.StatusUnauthorized},
				{"userinfo_endpoint", doc.Userinfo, http.MethodGet, http.StatusUnauthorized}, // no access token
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

// The clients of the tests of client authentication by JWT, PAR and DPoP.
var (
	// keyApp has keys and no secret: it must use private_key_jwt. Its
	// keys are set by keyClient.
	keyApp = devidp.Client{ID: "key-app", RedirectURIs: []string{"http://key.test/callback"}}
	// hsApp's secret is long enough to key HS256 (RFC 7518 3.2), so it
	// may use client_secret_jwt.
	hsApp = devidp.Client{ID: "hs-app", Secret: "a secret of more than thirty-two bytes",
		RedirectURIs: []string{"http://hs.test/callback"}}
)

// testKeys are the signing keys of the tests' clients: keyApp registers
// the public halves of rsa and ec; stranger is registered nowhere.
var testKeys = sync.OnceValue(func() (k struct{ rsa, ec, stranger crypto.Signer }) {
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		panic(err)
	}
	if k.stranger, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		panic(err)
	}
	return k
})

// keyClient is keyApp with its public keys: the RSA key as kid rsa-1,
// the P-256 key as kid ec-1, for ES256 only.
func keyClient() devidp.Client {
	c, k := keyApp, testKeys()
	c.Keys = []jose.JSONWebKey{
		{Key: k.rsa.Public(), KeyID: "rsa-1", Use: "sig"},
		{Key: k.ec.Public(), KeyID: "ec-1", Algorithm: string(jose.ES256)},
	}
	return c
}

// idp is a provider on a loopback server, spoken to by hand, as a relying
// party that does what the libraries do not (assertions, PAR, DPoP) would.
type idp struct {
	issuer string
	meta   map[string]any
}

func startIDP(t *testing.T, cfg devidp.Config, clients ...devidp.Client) *idp {
	t.Helper()
	cfg.Clients = clients
	srv, _ := devidptest.NewServerConfig(t, cfg)
	return discover(t, srv.URL)
}

func discover(t *testing.T, issuer string) *idp {
	t.Helper()
	p := &idp{issuer: issuer}
	getJSON(t, issuer+"/.well-known/openid-configuration", &p.meta)
	return p
}

// url is the endpoint discovery names, such as "token_endpoint".
func (p *idp) url(t *testing.T, name string) string {
	t.Helper()
	u, _ := p.meta[name].(string)
	if u == "" {
		t.Fatalf("discovery has no %s", name)
	}
	return u
}

// flow is one authorization request of a client, with a fresh state,
// nonce and PKCE verifier.
type flow struct {
	client   devidp.Client
	params   url.Values
	verifier string
}

// newFlow starts a flow of c to its first redirect URI; extra are
// parameters to add or change, in pairs.
func newFlow(c devidp.Client, extra ...string) *flow {
	f := &flow{client: c, verifier: oauth2.GenerateVerifier()}
	f.params = url.Values{
		"response_type": {"code"}, "client_id": {c.ID}, "redirect_uri": {c.RedirectURIs[0]},
		"scope": {"openid profile email offline_access"}, "state": {rand.Text()}, "nonce": {rand.Text()},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(f.verifier)}, "code_challenge_method": {"S256"},
	}
	for i := 0; i+1 < len(extra); i += 2 {
		f.params.Set(extra[i], extra[i+1])
	}
	return f
}

func (f *flow) authURL(t *testing.T, p *idp) string {
	return p.url(t, "authorization_endpoint") + "?" + f.params.Encode()
}

// signInAnswer opens authURL in a new browser, signs in as ada on the
// provider's page (or presses button, such as "cancel"), and returns the
// provider's answer.
func signInAnswer(t *testing.T, authURL string, button string) testclient.Page {
	t.Helper()
	browser := testclient.New(t).NoRedirects()
	page := browser.Get(authURL)
	if page.Status != http.StatusOK {
		t.Fatalf("authorization request: %d, want the sign-in page:\n%s", page.Status, page.Body)
	}
	set := map[string]string{"name": ada.Name, "email": ada.Email}
	if button != "" {
		set[button] = "1"
	}
	return browser.Submit(page.Form(t, "/authorize"), set)
}

// code signs in through f directly and returns the code for it.
func (f *flow) code(t *testing.T, p *idp) string {
	t.Helper()
	return f.codeFrom(t, p, signInAnswer(t, f.authURL(t, p), ""))
}

func (f *flow) codeFrom(t *testing.T, p *idp, answer testclient.Page) string {
	t.Helper()
	back := callbackQuery(t, answer, f.client.RedirectURIs[0])
	if back.Get("code") == "" || back.Get("state") != f.params.Get("state") || back.Get("iss") != p.issuer {
		t.Fatalf("callback query %v: want a code, the state and iss %s", back, p.issuer)
	}
	return back.Get("code")
}

// exchange is the token request for code, without client authentication.
func (f *flow) exchange(code string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {f.client.RedirectURIs[0]}, "code_verifier": {f.verifier}}
}

// reply is a JSON answer of the provider.
type reply struct {
	status int
	header http.Header
	body   map[string]any
}

func (r reply) str(key string) string { s, _ := r.body[key].(string); return s }

// post posts form to u with header.
func post(t *testing.T, u string, form url.Values, header http.Header) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, req)
}

func do(t *testing.T, req *http.Request) reply {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := reply{status: resp.StatusCode, header: resp.Header}
	if err := json.NewDecoder(resp.Body).Decode(&r.body); err != nil {
		t.Fatalf("%s %s: %d, not JSON: %v", req.Method, req.URL, resp.StatusCode, err)
	}
	return r
}

// want fails unless r has status and, if code is set, the error code.
func (r reply) want(t *testing.T, status int, code string) {
	t.Helper()
	if r.status != status || r.str("error") != code {
		t.Fatalf("got %d %v; want %d %q", r.status, r.body, status, code)
	}
}

// with returns form with the pairs kv added: client credentials and such.
func with(form url.Values, kv ...string) url.Values {
	out := url.Values{}
	for k, vs := range form {
		out[k] = vs
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out.Set(kv[i], kv[i+1])
	}
	return out
}

// basic is the Authorization header of client_secret_basic.
func basic(id, secret string) http.Header {
	h := http.Header{}
	h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret))))
	return h
}

// signJWT signs claims with key by alg, naming kid and typ in the header
// unless empty; embed puts the public key in a jwk header, as DPoP does.
func signJWT(t *testing.T, alg jose.SignatureAlgorithm, key any, kid, typ string, embed bool, claims map[string]any) string {
	t.Helper()
	opts := &jose.SignerOptions{EmbedJWK: embed}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	sk := jose.SigningKey{Algorithm: alg, Key: key}
	if kid != "" {
		sk.Key = jose.JSONWebKey{Key: key, KeyID: kid}
	}
	signer, err := jose.NewSigner(sk, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// assertionClaims are good claims of a client assertion of client for aud.
func assertionClaims(client, aud string) map[string]any {
	now := time.Now()
	return map[string]any{"iss": client, "sub": client, "aud": aud, "jti": rand.Text(),
		"iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix()}
}

// assertionForm is form with the client assertion a.
func assertionForm(form url.Values, a string) url.Values {
	return with(form, "client_assertion_type", devidp.JWTBearerAssertionType, "client_assertion", a)
}

func TestClientAssertion(t *testing.T) {
	p := startIDP(t, devidp.Config{PAR: true}, app, keyClient(), hsApp)
	k := testKeys()
	token := p.url(t, "token_endpoint")
	ago := func(d time.Duration) int64 { return time.Now().Add(-d).Unix() }
	for _, tt := range []struct {
		name   string
		client devidp.Client
		alg    jose.SignatureAlgorithm
		key    any // signs the assertion; nil: none, the client authenticates otherwise
		kid    string
		claims func(c map[string]any) // edits good claims
		form   func(f url.Values) url.Values
		header http.Header
		want   string // error code; empty: accepted
	}{
		{name: "private_key_jwt RS256 by kid", client: keyApp, alg: jose.RS256, key: k.rsa, kid: "rsa-1"},
		{name: "private_key_jwt PS256 by kid", client: keyApp, alg: jose.PS256, key: k.rsa, kid: "rsa-1"},
		{name: "private_key_jwt ES256 without kid", client: keyApp, alg: jose.ES256, key: k.ec},
		{name: "aud the issuer", client: keyApp, alg: jose.ES256, key: k.ec, kid: "ec-1",
			claims: func(c map[string]any) { c["aud"] = p.issuer }},
		{name: "aud a list with the token endpoint", client: keyApp, alg: jose.ES256, key: k.ec, kid: "ec-1",
			claims: func(c map[string]any) { c["aud"] = []string{"https://elsewhere.test", token} }},
		{name: "client_id sent too", client: keyApp, alg: jose.ES256, key: k.ec, kid: "ec-1",
			form: func(f url.Values) url.Values { return with(f, "client_id", keyApp.ID) }},
		{name: "client_secret_jwt", client: hsApp, alg: jose.HS256, key: []byte(hsApp.Secret)},

		{name: "wrong aud", client: keyApp, alg: jose.ES256, key: k.ec, kid: "ec-1",
			claims: func(c map[string]any) { c["aud"] = "https://elsewhere.test" }, want: "invalid_client"},
		// The PAR endpoint is an audience at the PAR endpoint alone.
		{name: "aud the PAR endpoint", client: keyApp, alg: jose.ES256, key: k.ec, kid: "ec-1",
			claims: func(c map[string]any) { c["aud"] = p.url(t, "pushed_authorization_request_endpoint") }, want: "invalid_client"},
		{name: "expired", client: keyApp, alg: jose.ES256, key: k.ec, kid: "ec-1",
			claims: func(c map[string]any) { c["iat"], c["exp"] = ago(2*time.Minute), ago(time.Minute) }, want: "invalid_client"},
		{name: "too long-lived", client: keyApp, alg: jose.ES256, key: k.ec, kid: "ec-1",
			claims: func(c map[string]any) { c["exp"] = time.Now().Add(10 * time.Minute).Unix() }, want: "invalid_client"},
		{name: "too long-lived without iat", client: keyApp, alg: jose.ES256, key: k.ec, kid: "ec-1",
			claims: func(c map[string]any) { delete(c, "iat"); c["exp"] = time.Now().Add(10 * time.Minute).Unix() }, want: "invalid_client"},
		{name: "too long-lived from iat", client: keyApp, alg: jose.ES256, key: k.ec, kid: "ec-1",
			claims: func(c map[string]any) { c["iat"] = ago(4 * time.Minute) }, want: "invalid_client"},
		{name: "no exp", client: keyApp, alg: jose.ES256, key: k.ec, kid: "ec-1",
			claims: func(c map[string]any) { delete(c, "exp") }, want: "invalid_client"},
		{name: "no jti", client: keyApp, alg: jose.ES256, key: k.ec, kid: "ec-1",
			claims: func(c map[string]any) { delete(c, "jti") }, want: "invalid_client"},
		{name: "wrong key", client: keyApp, alg: jose.ES256, key: k.stranger, kid: "ec-1", want: "invalid_client"},
		{name: "wrong key without kid", client: keyApp, alg: jose.ES256, key: k.stranger, want: "invalid_client"},
		{name: "unknown kid", client: keyApp, alg: jose.ES256, key: k.ec, kid: "ec-2", want: "invalid_client"},
		// ec-1 is registered for ES256 alone.
		{name: "key used with another algorithm", client: keyApp, alg: jose.RS256, key: k.rsa, kid: "ec-1", want: "invalid_client"},
		{name: "iss another client", client: keyApp, alg: jose.ES256, key: k.ec, kid: "ec-1",
			claims: func(c map[string]any) { c["iss"] = app.ID }, want: "invalid_client"},
		{name: "iss not sub", client: keyApp, alg: jose.ES256, key: k.ec, kid: "ec-1",
			claims: func(c map[string]any) { c["sub"] = app.ID }, want: "invalid_client"},
		{name: "client_id another client", client: keyApp, alg: jose.ES256, key: k.ec, kid: "ec-1",
			form: func(f url.Values) url.Values { return with(f, "client_id", app.ID) }, want: "invalid_client"},
		{name: "wrong assertion type", client: keyApp, alg: jose.ES256, key: k.ec, kid: "ec-1",
			form: func(f url.Values) url.Values { return with(f, "client_assertion_type", "jwt") }, want: "invalid_client"},
		{name: "assertion and Basic secret", client: hsApp, alg: jose.HS256, key: []byte(hsApp.Secret),
			header: basic(hsApp.ID, hsApp.Secret), want: "invalid_client"},
		{name: "client_secret_jwt with a wrong secret", client: hsApp, alg: jose.HS256,
			key: []byte("another secret of thirty-two bytes or more"), want: "invalid_client"},
		// HS256 keys must be as long as the hash (RFC 7518 3.2); "app-secret" is not.
		{name: "client_secret_jwt with a short secret", client: app, alg: jose.HS256,
			key: []byte(strings.Repeat(app.Secret, 4)), want: "invalid_client"},
		{name: "client_secret_jwt for a client without secret", client: keyApp, alg: jose.HS256,
			key: []byte(hsApp.Secret), want: "invalid_client"},
		{name: "unsigned", client: keyApp, want: "invalid_client",
			form: func(f url.Values) url.Values {
				claims, _ := json.Marshal(assertionClaims(keyApp.ID, token))
				return assertionForm(f, base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`))+"."+base64.RawURLEncoding.EncodeToString(claims)+".")
			}},
		// A client with keys and no secret must sign.
		{name: "no assertion, empty secret", client: keyApp, want: "invalid_client",
			form: func(f url.Values) url.Values { return with(f, "client_id", keyApp.ID, "client_secret", "") }},
		{name: "no assertion, Basic with empty secret", client: keyApp, header: basic(keyApp.ID, ""), want: "invalid_client"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFlow(tt.client)
			form := f.exchange(f.code(t, p))
			if tt.key != nil {
				claims := assertionClaims(tt.client.ID, token)
				if tt.claims != nil {
					tt.claims(claims)
				}
				form = assertionForm(form, signJWT(t, tt.alg, tt.key, tt.kid, "", false, claims))
			}
			if tt.form != nil {
				form = tt.form(form)
			}
			r := post(t, token, form, tt.header)
			if tt.want != "" {
				r.want(t, http.StatusUnauthorized, tt.want)
				return
			}
			r.want(t, http.StatusOK, "")
			claims, err := devidptest.Claims(r.str("id_token"))
			if err != nil || claims["aud"] != tt.client.ID {
				t.Errorf("ID token claims %v (%v), want aud %s", claims, err, tt.client.ID)
			}
		})
	}
}

// TestClientAssertionWorksOnce replays a client assertion: its jti is
// spent by the first request, even one refused for its code.
func TestClientAssertionWorksOnce(t *testing.T) {
	p := startIDP(t, devidp.Config{PAR: true}, keyClient())
	token := p.url(t, "token_endpoint")
	a := signJWT(t, jose.ES256, testKeys().ec, "ec-1", "", false, assertionClaims(keyApp.ID, token))
	f := newFlow(keyApp)
	post(t, token, assertionForm(f.exchange("not-a-code"), a), nil).want(t, http.StatusBadRequest, "invalid_grant")
	post(t, token, assertionForm(f.exchange(f.code(t, p)), a), nil).want(t, http.StatusUnauthorized, "invalid_client")
}

// push posts the authorization request of f to the PAR endpoint.
func (f *flow) push(t *testing.T, p *idp, auth url.Values, header http.Header) reply {
	t.Helper()
	form := with(f.params)
	for k, vs := range auth {
		form[k] = vs
	}
	return post(t, p.url(t, "pushed_authorization_request_endpoint"), form, header)
}

// pushed pushes f with the client's secret in Basic, and returns the
// request_uri.
func (f *flow) pushed(t *testing.T, p *idp) string {
	t.Helper()
	r := f.push(t, p, nil, basic(f.client.ID, f.client.Secret))
	r.want(t, http.StatusCreated, "")
	uri := r.str("request_uri")
	if !strings.HasPrefix(uri, "urn:ietf:params:oauth:request_uri:") || r.body["expires_in"] != 60.0 {
		t.Fatalf("PAR answer %v: want a request_uri urn:ietf:params:oauth:request_uri:... that expires in 60 s", r.body)
	}
	return uri
}

// requestURIAuthURL is the authorization request that uses a pushed one.
func requestURIAuthURL(t *testing.T, p *idp, clientID, requestURI string, more url.Values) string {
	q := with(more, "client_id", clientID, "request_uri", requestURI)
	return p.url(t, "authorization_endpoint") + "?" + q.Encode()
}

// wantErrorPage fails unless page is the provider's 400 page with title,
// not a redirect.
func wantErrorPage(t *testing.T, page testclient.Page, title string) {
	t.Helper()
	if page.Status != http.StatusBadRequest || page.Header.Get("Location") != "" || !strings.Contains(page.Body, title) {
		t.Fatalf("got %d, Location %q; want the 400 page %q and no redirect:\n%s", page.Status, page.Header.Get("Location"), title, page.Body)
	}
}

func TestPushedAuthorizationRequest(t *testing.T) {
	p := startIDP(t, devidp.Config{PAR: true}, app, otherApp, keyClient())
	token := p.url(t, "token_endpoint")

	t.Run("end to end", func(t *testing.T) {
		f := newFlow(app)
		uri := f.pushed(t, p)
		// Parameters beside request_uri are ignored: those pushed count.
		authURL := requestURIAuthURL(t, p, app.ID, uri, url.Values{
			"redirect_uri": {app.RedirectURIs[1]}, "state": {"forged"}, "scope": {"openid"}, "response_mode": {"form_post"}})
		code := f.codeFrom(t, p, signInAnswer(t, authURL, ""))
		r := post(t, token, f.exchange(code), basic(app.ID, app.Secret))
		r.want(t, http.StatusOK, "")
		claims, err := devidptest.Claims(r.str("id_token"))
		if err != nil || claims["nonce"] != f.params.Get("nonce") || r.str("refresh_token") == "" {
			t.Errorf("token answer %v, ID token %v: want the pushed nonce and scope (offline_access)", r.body, claims)
		}
		// The request_uri worked once.
		wantErrorPage(t, testclient.New(t).NoRedirects().Get(authURL), "Sign-in request not found")
	})

	t.Run("pushed with private_key_jwt", func(t *testing.T) {
		f := newFlow(keyApp)
		par := p.url(t, "pushed_authorization_request_endpoint")
		for _, aud := range []string{par, p.issuer, token} {
			a := signJWT(t, jose.ES256, testKeys().ec, "ec-1", "", false, assertionClaims(keyApp.ID, aud))
			r := f.push(t, p, assertionForm(nil, a), nil)
			r.want(t, http.StatusCreated, "")
			if aud == par {
				f.codeFrom(t, p, signInAnswer(t, requestURIAuthURL(t, p, keyApp.ID, r.str("request_uri"), nil), ""))
			}
		}
	})

	t.Run("assertion reused at the PAR endpoint", func(t *testing.T) {
		a := assertionForm(nil, signJWT(t, jose.ES256, testKeys().ec, "ec-1", "", false,
			assertionClaims(keyApp.ID, p.url(t, "pushed_authorization_request_endpoint"))))
		newFlow(keyApp).push(t, p, a, nil).want(t, http.StatusCreated, "")
		newFlow(keyApp).push(t, p, a, nil).want(t, http.StatusUnauthorized, "invalid_client")
	})

	t.Run("refused pushes", func(t *testing.T) {
		for _, tt := range []struct {
			name   string
			params []string // changes to a good request, in pairs
			auth   url.Values
			header http.Header
			status int
			want   string
		}{
			{name: "unauthenticated", auth: url.Values{"client_id": {app.ID}}, status: http.StatusUnauthorized, want: "invalid_client"},
			{name: "wrong secret", header: basic(app.ID, "guess"), status: http.StatusUnauthorized, want: "invalid_client"},
			{name: "assertion for elsewhere", status: http.StatusUnauthorized, want: "invalid_client",
				auth: assertionForm(nil, signJWT(t, jose.ES256, testKeys().ec, "ec-1", "", false, assertionClaims(keyApp.ID, "https://elsewhere.test")))},
			{name: "another client's client_id", params: []string{"client_id", otherApp.ID}, status: http.StatusBadRequest, want: "invalid_request"},
			{name: "unregistered callback", params: []string{"redirect_uri", "http://attacker.test/callback"}, status: http.StatusBadRequest, want: "invalid_request"},
			{name: "no PKCE", params: []string{"code_challenge", ""}, status: http.StatusBadRequest, want: "invalid_request"},
			{name: "PKCE plain", params: []string{"code_challenge_method", "plain"}, status: http.StatusBadRequest, want: "invalid_request"},
			{name: "no openid scope", params: []string{"scope", "profile"}, status: http.StatusBadRequest, want: "invalid_scope"},
			{name: "implicit flow", params: []string{"response_type", "id_token"}, status: http.StatusBadRequest, want: "unsupported_response_type"},
			{name: "unknown response_mode", params: []string{"response_mode", "fragment"}, status: http.StatusBadRequest, want: "invalid_request"},
			{name: "request_uri pushed", params: []string{"request_uri", "urn:ietf:params:oauth:request_uri:x"}, status: http.StatusBadRequest, want: "invalid_request"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				c := app
				if tt.auth.Has("client_assertion") {
					c = keyApp
				}
				f := newFlow(c, tt.params...)
				header := tt.header
				if header == nil && tt.auth == nil {
					header = basic(app.ID, app.Secret)
				}
				f.push(t, p, tt.auth, header).want(t, tt.status, tt.want)
			})
		}
	})

	t.Run("refused request_uri", func(t *testing.T) {
		browser := testclient.New(t).NoRedirects()
		opened := newFlow(app).pushed(t, p)
		if page := browser.Get(requestURIAuthURL(t, p, app.ID, opened, nil)); page.Status != http.StatusOK {
			t.Fatalf("first use of a request_uri: %d, want the sign-in page", page.Status)
		}
		others := newFlow(otherApp).pushed(t, p)
		for _, tt := range []struct{ name, clientID, uri string }{
			{"unknown", app.ID, "urn:ietf:params:oauth:request_uri:nothing-pushed"},
			{"not a pushed request's", app.ID, "https://app.test/request.jwt"},
			{"already used", app.ID, opened},
			{"another client's", app.ID, others},
			{"without client_id", "", newFlow(app).pushed(t, p)},
		} {
			t.Run(tt.name, func(t *testing.T) {
				wantErrorPage(t, browser.Get(requestURIAuthURL(t, p, tt.clientID, tt.uri, nil)), "Sign-in request not found")
			})
		}
		// Another client's attempt left the request_uri to its client.
		back := callbackQuery(t, signInAnswer(t, requestURIAuthURL(t, p, otherApp.ID, others, nil), ""), otherApp.RedirectURIs[0])
		if back.Get("code") == "" {
			t.Errorf("callback %v: want a code for the request_uri's own client", back)
		}
	})

	t.Run("sign-in form of a request_uri not opened", func(t *testing.T) {
		// The sign-in form names the request_uri; posting it without
		// opening it at the authorization endpoint is refused.
		page := testclient.New(t).NoRedirects().PostForm(p.url(t, "authorization_endpoint"), url.Values{
			"client_id": {app.ID}, "request_uri": {newFlow(app).pushed(t, p)}, "name": {ada.Name}, "email": {ada.Email}})
		wantErrorPage(t, page, "Sign-in request not found")
	})
}

// TestRequestURIExpires moves the provider's clock past a request_uri's
// minute.
func TestRequestURIExpires(t *testing.T) {
	key, err := devidp.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	var skew atomic.Int64
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()
	prov, err := devidp.New(devidp.Config{Issuer: issuer, Key: key, Clients: []devidp.Client{app}, PAR: true})
	if err != nil {
		t.Fatal(err)
	}
	devidp.SetClock(prov, func() time.Time { return time.Now().Add(time.Duration(skew.Load())) })
	srv.Config.Handler = prov
	srv.Start()
	defer srv.Close()
	p := discover(t, issuer)

	uri := newFlow(app).pushed(t, p)
	skew.Store(int64(devidp.RequestURILifetime + time.Second))
	wantErrorPage(t, testclient.New(t).NoRedirects().Get(requestURIAuthURL(t, p, app.ID, uri, nil)), "Sign-in request not found")
}

func TestRequirePAR(t *testing.T) {
	strict := app
	strict.ID, strict.RequirePAR = "strict", true
	for _, tt := range []struct {
		name        string
		cfg         devidp.Config
		client      devidp.Client
		advertised  bool
		directOther bool // otherApp may still send direct requests
	}{
		{name: "provider-wide", cfg: devidp.Config{RequirePAR: true}, client: app, advertised: true},
		{name: "one client", client: strict, directOther: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := startIDP(t, tt.cfg, tt.client, otherApp)
			if got := p.meta["require_pushed_authorization_requests"]; got != tt.advertised {
				t.Errorf("require_pushed_authorization_requests %v, want %v", got, tt.advertised)
			}
			f := newFlow(tt.client)
			wantRefused := func(t *testing.T, answer testclient.Page) {
				t.Helper()
				back := callbackQuery(t, answer, tt.client.RedirectURIs[0])
				if back.Get("error") != "invalid_request" || back.Has("code") || back.Get("state") != f.params.Get("state") {
					t.Errorf("callback query %v, want invalid_request with the state and no code", back)
				}
			}
			// The client and callback are registered: the refusal goes
			// back to them.
			wantRefused(t, testclient.New(t).NoRedirects().Get(f.authURL(t, p)))
			// So does a sign-in form forged from the parameters.
			wantRefused(t, testclient.New(t).NoRedirects().PostForm(p.url(t, "authorization_endpoint"),
				with(f.params, "name", ada.Name, "email", ada.Email)))
			// Pushed, the same request works.
			f.codeFrom(t, p, signInAnswer(t, requestURIAuthURL(t, p, tt.client.ID, f.pushed(t, p), nil), ""))

			o := newFlow(otherApp)
			page := testclient.New(t).NoRedirects().Get(o.authURL(t, p))
			if (page.Status == http.StatusOK) != tt.directOther {
				t.Errorf("direct request of another client: %d, want the sign-in page: %v", page.Status, tt.directOther)
			}
		})
	}
}

// dpopProof is a DPoP proof by key (ES256, jwk embedded) for a request
// with method htm to htu; edit changes its claims, and its header with
// the keys "typ" and "alg".
func dpopProof(t *testing.T, key crypto.Signer, htm, htu string, edit func(c map[string]any)) string {
	t.Helper()
	c := map[string]any{"jti": rand.Text(), "htm": htm, "htu": htu, "iat": time.Now().Unix(), "typ": "dpop+jwt", "alg": "ES256"}
	if edit != nil {
		edit(c)
	}
	typ, alg := c["typ"].(string), jose.SignatureAlgorithm(c["alg"].(string))
	delete(c, "typ")
	delete(c, "alg")
	return signJWT(t, alg, key, "", typ, true, c)
}

// ath is a proof's hash of an access token.
func ath(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func dpopHeader(proofs ...string) http.Header {
	h := http.Header{}
	for _, p := range proofs {
		h.Add("DPoP", p)
	}
	return h
}

// userinfo calls the userinfo endpoint with the Authorization header auth
// and the DPoP proofs.
func userinfo(t *testing.T, p *idp, auth string, proofs ...string) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, p.url(t, "userinfo_endpoint"), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = dpopHeader(proofs...)
	req.Header.Set("Authorization", auth)
	return do(t, req)
}

// wantChallenge fails unless r is userinfo's 401 with a DPoP challenge of
// error code.
func (r reply) wantChallenge(t *testing.T, code string) {
	t.Helper()
	if ch := r.header.Get("WWW-Authenticate"); r.status != http.StatusUnauthorized || !strings.HasPrefix(ch, `DPoP error="`+code+`"`) {
		t.Fatalf("got %d, WWW-Authenticate %q; want 401 with DPoP error=%q", r.status, ch, code)
	}
}

func TestDPoP(t *testing.T) {
	dpopApp := otherApp
	dpopApp.RequireDPoP = true
	p := startIDP(t, devidp.Config{}, app, dpopApp)
	k := testKeys()
	tokenURL, userinfoURL := p.url(t, "token_endpoint"), p.url(t, "userinfo_endpoint")
	appAuth := basic(app.ID, app.Secret)

	// bound gets tokens bound to k.ec for a sign-in of app.
	bound := func(t *testing.T) reply {
		t.Helper()
		f := newFlow(app)
		h := dpopHeader(dpopProof(t, k.ec, "POST", tokenURL, nil))
		h.Set("Authorization", appAuth.Get("Authorization"))
		r := post(t, tokenURL, f.exchange(f.code(t, p)), h)
		r.want(t, http.StatusOK, "")
		if r.str("token_type") != "DPoP" {
			t.Fatalf("token_type %q, want DPoP", r.str("token_type"))
		}
		return r
	}

	t.Run("bound token at userinfo", func(t *testing.T) {
		tok := bound(t).str("access_token")
		r := userinfo(t, p, "DPoP "+tok, dpopProof(t, k.ec, "GET", userinfoURL, func(c map[string]any) { c["ath"] = ath(tok) }))
		r.want(t, http.StatusOK, "")
		if r.str("sub") != ada.Subject() {
			t.Errorf("userinfo %v, want ada's", r.body)
		}
	})

	t.Run("refused at userinfo", func(t *testing.T) {
		tok := bound(t).str("access_token")
		bearer := func() string {
			f := newFlow(app)
			return post(t, tokenURL, f.exchange(f.code(t, p)), appAuth).str("access_token")
		}()
		good := func(c map[string]any) { c["ath"] = ath(tok) }
		for _, tt := range []struct {
			name   string
			auth   string
			proofs func() []string
			want   string
		}{
			{"bound token as Bearer", "Bearer " + tok, func() []string { return nil }, "invalid_token"},
			{"bound token as Bearer with a proof", "Bearer " + tok, func() []string {
				return []string{dpopProof(t, k.ec, "GET", userinfoURL, good)}
			}, "invalid_token"},
			{"no proof", "DPoP " + tok, func() []string { return nil }, "invalid_dpop_proof"},
			{"two proofs", "DPoP " + tok, func() []string {
				return []string{dpopProof(t, k.ec, "GET", userinfoURL, good), dpopProof(t, k.ec, "GET", userinfoURL, good)}
			}, "invalid_dpop_proof"},
			{"wrong htu", "DPoP " + tok, func() []string { return []string{dpopProof(t, k.ec, "GET", tokenURL, good)} }, "invalid_dpop_proof"},
			{"wrong htm", "DPoP " + tok, func() []string { return []string{dpopProof(t, k.ec, "POST", userinfoURL, good)} }, "invalid_dpop_proof"},
			{"wrong ath", "DPoP " + tok, func() []string {
				return []string{dpopProof(t, k.ec, "GET", userinfoURL, func(c map[string]any) { c["ath"] = ath(bearer) })}
			}, "invalid_dpop_proof"},
			{"no ath", "DPoP " + tok, func() []string { return []string{dpopProof(t, k.ec, "GET", userinfoURL, nil)} }, "invalid_dpop_proof"},
			{"another key", "DPoP " + tok, func() []string { return []string{dpopProof(t, k.stranger, "GET", userinfoURL, good)} }, "invalid_dpop_proof"},
			{"typ JWT", "DPoP " + tok, func() []string {
				return []string{dpopProof(t, k.ec, "GET", userinfoURL, func(c map[string]any) { good(c); c["typ"] = "JWT" })}
			}, "invalid_dpop_proof"},
			{"stale iat", "DPoP " + tok, func() []string {
				return []string{dpopProof(t, k.ec, "GET", userinfoURL, func(c map[string]any) { good(c); c["iat"] = time.Now().Add(-5 * time.Minute).Unix() })}
			}, "invalid_dpop_proof"},
			{"unbound token as DPoP", "DPoP " + bearer, func() []string {
				return []string{dpopProof(t, k.ec, "GET", userinfoURL, func(c map[string]any) { c["ath"] = ath(bearer) })}
			}, "invalid_token"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				userinfo(t, p, tt.auth, tt.proofs()...).wantChallenge(t, tt.want)
			})
		}
		// The refusals spent nothing: a good proof works.
		userinfo(t, p, "DPoP "+tok, dpopProof(t, k.ec, "GET", userinfoURL, good)).want(t, http.StatusOK, "")
	})

	t.Run("proof reused at userinfo", func(t *testing.T) {
		tok := bound(t).str("access_token")
		proof := dpopProof(t, k.ec, "GET", userinfoURL, func(c map[string]any) { c["ath"] = ath(tok) })
		userinfo(t, p, "DPoP "+tok, proof).want(t, http.StatusOK, "")
		userinfo(t, p, "DPoP "+tok, proof).wantChallenge(t, "invalid_dpop_proof")
	})

	t.Run("refused at the token endpoint", func(t *testing.T) {
		used := dpopProof(t, k.ec, "POST", tokenURL, nil)
		f := newFlow(app)
		post(t, tokenURL, f.exchange(f.code(t, p)), with2(appAuth, dpopHeader(used))).want(t, http.StatusOK, "")
		for _, tt := range []struct {
			name   string
			client devidp.Client
			proofs []string
		}{
			{"wrong htu", app, []string{dpopProof(t, k.ec, "POST", userinfoURL, nil)}},
			{"wrong htm", app, []string{dpopProof(t, k.ec, "GET", tokenURL, nil)}},
			{"reused jti", app, []string{used}},
			{"private key in the jwk", app, []string{func() string {
				// go-jose embeds public keys only; this header holds d.
				opts := (&jose.SignerOptions{}).WithType("dpop+jwt").WithHeader("jwk", jose.JSONWebKey{Key: k.ec})
				signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.ec}, opts)
				if err != nil {
					t.Fatal(err)
				}
				payload, _ := json.Marshal(map[string]any{"jti": rand.Text(), "htm": "POST", "htu": tokenURL, "iat": time.Now().Unix()})
				jws, err := signer.Sign(payload)
				if err != nil {
					t.Fatal(err)
				}
				out, _ := jws.CompactSerialize()
				if header, _ := base64.RawURLEncoding.DecodeString(strings.Split(out, ".")[0]); !strings.Contains(string(header), `"d":`) {
					t.Fatalf("proof header %s holds no private key", header)
				}
				return out
			}()}},
			{"not signed by its jwk", app, []string{func() string {
				parts := strings.Split(dpopProof(t, k.ec, "POST", tokenURL, nil), ".")
				other := strings.Split(dpopProof(t, k.stranger, "POST", tokenURL, nil), ".")
				return parts[0] + "." + parts[1] + "." + other[2]
			}()}},
			{"no proof for a client that requires DPoP", dpopApp, nil},
		} {
			t.Run(tt.name, func(t *testing.T) {
				f := newFlow(tt.client)
				code := f.code(t, p)
				auth := basic(tt.client.ID, tt.client.Secret)
				post(t, tokenURL, f.exchange(code), with2(auth, dpopHeader(tt.proofs...))).want(t, http.StatusBadRequest, "invalid_dpop_proof")
				// The refusal left the code: a good proof redeems it.
				r := post(t, tokenURL, f.exchange(code), with2(auth, dpopHeader(dpopProof(t, k.ec, "POST", tokenURL, nil))))
				r.want(t, http.StatusOK, "")
			})
		}
	})

	t.Run("htu ignores query and default port", func(t *testing.T) {
		f := newFlow(app)
		u, _ := url.Parse(tokenURL)
		u.Host = strings.ToUpper(u.Hostname()) + ":" + u.Port()
		u.RawQuery = "x=1"
		post(t, tokenURL, f.exchange(f.code(t, p)), with2(appAuth, dpopHeader(dpopProof(t, k.ec, "POST", u.String(), nil)))).want(t, http.StatusOK, "")
	})

	t.Run("refresh", func(t *testing.T) {
		refresh := bound(t).str("refresh_token")
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}
		post(t, tokenURL, form, appAuth).want(t, http.StatusBadRequest, "invalid_dpop_proof")
		post(t, tokenURL, form, with2(appAuth, dpopHeader(dpopProof(t, k.stranger, "POST", tokenURL, nil)))).want(t, http.StatusBadRequest, "invalid_grant")
		// The refused attempts left the refresh token to the key's holder.
		r := post(t, tokenURL, form, with2(appAuth, dpopHeader(dpopProof(t, k.ec, "POST", tokenURL, nil))))
		r.want(t, http.StatusOK, "")
		if r.str("token_type") != "DPoP" {
			t.Errorf("refreshed token_type %q, want DPoP", r.str("token_type"))
		}
		// It rotated, as refresh tokens do.
		post(t, tokenURL, form, with2(appAuth, dpopHeader(dpopProof(t, k.ec, "POST", tokenURL, nil)))).want(t, http.StatusBadRequest, "invalid_grant")
	})
}

// with2 merges headers.
func with2(hs ...http.Header) http.Header {
	out := http.Header{}
	for _, h := range hs {
		for k, vs := range h {
			out[k] = append(out[k], vs...)
		}
	}
	return out
}

// TestDPoPNonce follows the nonce retries of RFC 9449 8 and 9, with a
// client assertion that is resent as is in the retry.
func TestDPoPNonce(t *testing.T) {
	p := startIDP(t, devidp.Config{DPoPNonce: true}, keyClient())
	k := testKeys()
	tokenURL, userinfoURL := p.url(t, "token_endpoint"), p.url(t, "userinfo_endpoint")
	f := newFlow(keyApp)
	form := assertionForm(f.exchange(f.code(t, p)), signJWT(t, jose.ES256, k.ec, "ec-1", "", false, assertionClaims(keyApp.ID, tokenURL)))

	r := post(t, tokenURL, form, dpopHeader(dpopProof(t, k.ec, "POST", tokenURL, nil)))
	r.want(t, http.StatusBadRequest, "use_dpop_nonce")
	nonce := r.header.Get("DPoP-Nonce")
	if nonce == "" {
		t.Fatal("use_dpop_nonce without a DPoP-Nonce header")
	}
	withNonce := func(extra func(c map[string]any)) func(c map[string]any) {
		return func(c map[string]any) {
			c["nonce"] = nonce
			if extra != nil {
				extra(c)
			}
		}
	}
	post(t, tokenURL, form, dpopHeader(dpopProof(t, k.ec, "POST", tokenURL, func(c map[string]any) { c["nonce"] = "stale" }))).
		want(t, http.StatusBadRequest, "use_dpop_nonce")
	r = post(t, tokenURL, form, dpopHeader(dpopProof(t, k.ec, "POST", tokenURL, withNonce(nil))))
	r.want(t, http.StatusOK, "")
	if r.str("token_type") != "DPoP" || r.header.Get("DPoP-Nonce") == "" {
		t.Fatalf("token_type %q, DPoP-Nonce %q: want DPoP and the nonce", r.str("token_type"), r.header.Get("DPoP-Nonce"))
	}
	tok := r.str("access_token")

	r = userinfo(t, p, "DPoP "+tok, dpopProof(t, k.ec, "GET", userinfoURL, func(c map[string]any) { c["ath"] = ath(tok) }))
	r.wantChallenge(t, "use_dpop_nonce")
	if nonce = r.header.Get("DPoP-Nonce"); nonce == "" {
		t.Fatal("use_dpop_nonce without a DPoP-Nonce header")
	}
	userinfo(t, p, "DPoP "+tok, dpopProof(t, k.ec, "GET", userinfoURL, withNonce(func(c map[string]any) { c["ath"] = ath(tok) }))).
		want(t, http.StatusOK, "")
}

// formPostAnswer checks that page is a form_post answer to callback and
// returns the fields it posts.
func formPostAnswer(t *testing.T, page testclient.Page, callback string) url.Values {
	t.Helper()
	if page.Status != http.StatusOK || page.Header.Get("Location") != "" || !strings.HasPrefix(page.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("got %d %s, Location %q; want a 200 HTML page:\n%s", page.Status, page.Header.Get("Content-Type"), page.Header.Get("Location"), page.Body)
	}
	form := page.Form(t, callback)
	if form.Action != callback || form.Method != http.MethodPost {
		t.Errorf("form %s %s, want POST %s", form.Method, form.Action, callback)
	}
	if !strings.Contains(page.Body, `<button type="submit">Continue</button>`) {
		t.Error("no Continue button: the page needs script to go on")
	}
	// The page's script, and only it, may run.
	scripts := regexp.MustCompile(`(?s)<script>(.*?)</script>`).FindAllStringSubmatch(page.Body, -1)
	if len(scripts) != 1 || strings.Contains(page.Body, "<script ") || regexp.MustCompile(`\son[a-z]+=`).MatchString(page.Body) {
		t.Fatalf("want one inline script and no other:\n%s", page.Body)
	}
	sum := sha256.Sum256([]byte(scripts[0][1]))
	csp := page.Header.Get("Content-Security-Policy")
	if want := "script-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "';"; !strings.Contains(csp, want) || strings.Contains(csp, "unsafe") {
		t.Errorf("Content-Security-Policy %q, want %q and no unsafe source", csp, want)
	}
	if !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q, want default-src 'none'", csp)
	}
	return form.Values
}

func TestFormPost(t *testing.T) {
	p := startIDP(t, devidp.Config{PAR: true}, app)
	callback := app.RedirectURIs[0]
	// The state is the client's: any text, which the page must escape.
	state := `"><script>alert(1)</script>&amp;`
	for _, tt := range []struct {
		name   string
		params []string
		button string // "cancel", or empty to sign in
		pushed bool
		want   string // the error; empty: a code
	}{
		{name: "signed in"},
		{name: "pushed", pushed: true},
		{name: "cancelled", button: "cancel", want: "access_denied"},
		{name: "no openid scope", params: []string{"scope", "profile"}, want: "invalid_scope"},
		{name: "no PKCE", params: []string{"code_challenge", ""}, want: "invalid_request"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFlow(app, append([]string{"response_mode", "form_post", "state", state}, tt.params...)...)
			authURL := f.authURL(t, p)
			if tt.pushed {
				authURL = requestURIAuthURL(t, p, app.ID, f.pushed(t, p), nil)
			}
			var page testclient.Page
			if tt.want == "" || tt.button != "" {
				page = signInAnswer(t, authURL, tt.button)
			} else {
				page = testclient.New(t).NoRedirects().Get(authURL)
			}
			if strings.Contains(page.Body, "<script>alert") {
				t.Fatalf("the state is not escaped:\n%s", page.Body)
			}
			got := formPostAnswer(t, page, callback)
			if got.Get("state") != state || got.Get("iss") != p.issuer {
				t.Errorf("posted %v, want state %q and iss %q", got, state, p.issuer)
			}
			if tt.want != "" {
				// access_denied needs no description: the user pressed Cancel.
				if got.Get("error") != tt.want || got.Has("code") || (got.Get("error_description") == "") != (tt.want == "access_denied") {
					t.Errorf("posted %v, want error %q, a description unless access_denied, and no code", got, tt.want)
				}
				return
			}
			if len(got) != 3 || got.Get("code") == "" {
				t.Fatalf("posted %v, want code, state and iss alone", got)
			}
			post(t, p.url(t, "token_endpoint"), f.exchange(got.Get("code")), basic(app.ID, app.Secret)).want(t, http.StatusOK, "")
		})
	}

	for _, mode := range []string{"fragment", "web_message", "FORM_POST"} {
		t.Run("response_mode "+mode, func(t *testing.T) {
			f := newFlow(app, "response_mode", mode)
			back := callbackQuery(t, testclient.New(t).NoRedirects().Get(f.authURL(t, p)), callback)
			if back.Get("error") != "invalid_request" || back.Has("code") || back.Get("state") != f.params.Get("state") {
				t.Errorf("callback query %v, want invalid_request with the state", back)
			}
		})
	}
}
