package app

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/gologin/gologin/internal/testclient"
	"github.com/gologin/gologin/login"
)

// This file signs in at the zitadel example provider (zitadel_test.go)
// the other ways the app can: with private_key_jwt client authentication,
// and with response_mode=form_post. zitadel's op has neither pushed
// authorization requests (RFC 9126) nor DPoP (RFC 9449): its discovery
// document cannot advertise a pushed_authorization_request_endpoint and it
// issues only Bearer tokens, so OIDC_USE_PAR and OIDC_DPOP are not tried
// here.

// zitadelUser is the example's first user, whom these tests sign in as.
const zitadelUserID, zitadelUserName = "id1", "Test User"

// zitadelSignIn starts a sign-in at the app and signs in at zitadel's login
// page as the example's first user, and returns the page the browser
// lands on.
func zitadelSignIn(t *testing.T, b *testclient.Browser, base string, idp *zitadelIdP) testclient.Page {
	t.Helper()
	user := idp.users.GetUserByID(zitadelUserID)
	if user == nil || user.FirstName+" "+user.LastName != zitadelUserName {
		t.Fatalf("zitadel's example user %s is not %q any more: %+v", zitadelUserID, zitadelUserName, user)
	}
	p := b.Get(base + "/login")
	if p.Status != http.StatusOK || !strings.HasPrefix(p.URL.String(), idp.issuer+"/login/username?") {
		t.Fatalf("GET /login: want 200 at zitadel's login page, got %d at %s:\n%s", p.Status, p.URL, p.Body)
	}
	return b.Submit(p.Form(t, "/login/username"), map[string]string{"username": user.Username, "password": user.Password})
}

// checkAssertion checks that the token endpoint's last request
// authenticated the app with a private_key_jwt assertion (RFC 7523) for
// audience, signed with the key kid, and with no secret.
func checkAssertion(t *testing.T, idp *zitadelIdP, kid, audience string) {
	t.Helper()
	req, _ := idp.lastTokenRequest()
	if req.form == nil {
		t.Fatal("zitadel's token endpoint got no request")
	}
	if req.basicAuth || req.form.Has("client_secret") {
		t.Errorf("the token request carries a secret (Basic auth %v, client_secret %q)", req.basicAuth, req.form.Get("client_secret"))
	}
	if got := req.form.Get("client_assertion_type"); got != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		t.Errorf("client_assertion_type = %q, want the JWT bearer type", got)
	}
	assertion := req.form.Get("client_assertion")
	if assertion == "" {
		t.Fatalf("the token request carries no client_assertion: %v", req.form)
	}
	header, claims := jwtPart(t, assertion, 0), jwtPart(t, assertion, 1)
	if header["alg"] != "ES256" || header["kid"] != kid {
		t.Errorf("client assertion header: want alg ES256, kid %s, got %v", kid, header)
	}
	if claims["iss"] != zitadelClientID || claims["sub"] != zitadelClientID || claims["aud"] != audience {
		t.Errorf("client assertion: want iss and sub %s, aud %s, got %v", zitadelClientID, audience, claims)
	}
	iat, _ := claims["iat"].(float64)
	exp, _ := claims["exp"].(float64)
	if jti, _ := claims["jti"].(string); jti == "" || iat == 0 || exp <= iat || exp-iat > 300 {
		t.Errorf("client assertion: want a jti and a short life, got %v", claims)
	}
}

// TestZitadelPrivateKeyJWT signs in with a client key (OIDC_CLIENT_KEY_FILE,
// no OIDC_CLIENT_SECRET) at zitadel, which verifies the client's assertion
// with the public key registered for it (op.JWTProfileKeyStorage, here
// zitadelStorage.GetKeyByIDAndClientID).
//
// zitadel takes an assertion only if its aud is zitadel's issuer
// (op.VerifyJWTAssertion checks oidc.CheckAudience against the issuer,
// before it looks up the key), and the app's assertions have the token
// endpoint's URL (login's default, OpenID Connect Core 9): signing in
// fails. With the issuer as aud (OIDC_ASSERTION_AUDIENCE=issuer, as
// login.Auth0 sets it), the same sign-in succeeds.
func TestZitadelPrivateKeyJWT(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kid, err := login.Thumbprint(key.Public())
	if err != nil {
		t.Fatal(err)
	}

	t.Run("token endpoint audience refused", func(t *testing.T) {
		base, idp := startZitadelAndAppWith(t, zitadelOptions{clientKey: key})
		b := testclient.New(t)
		p := zitadelSignIn(t, b, base, idp)
		if p.Status != http.StatusBadRequest || p.URL.Path != "/callback" ||
			!strings.Contains(p.Body, "Sign-in failed") || !strings.Contains(p.Body, "refused this sign-in (invalid_grant)") {
			t.Fatalf("signing in with aud = the token endpoint: want the app's 400 page saying zitadel refused it, got %d at %s:\n%s", p.Status, p.URL, p.Body)
		}
		checkAssertion(t, idp, kid, idp.issuer+op.DefaultEndpoints.Token.Relative())
		_, status := idp.lastTokenRequest()
		idp.mu.Lock()
		body := string(idp.tokenBody)
		idp.mu.Unlock()
		if want := `Audience must contain client_id \"` + idp.issuer + `\"`; status != http.StatusBadRequest || !strings.Contains(body, want) {
			t.Errorf("zitadel's token response: want 400 saying %s, got %d %s", want, status, body)
		}
		if l := idp.lookups(); len(l) != 0 {
			t.Errorf("zitadel looked up client keys %v; it refuses the audience before that", l)
		}
		if p := b.Get(base + "/"); !strings.Contains(p.Body, "Welcome Guest") {
			t.Errorf("after the refused sign-in: want Welcome Guest, got:\n%s", p.Body)
		}
	})

	t.Run("issuer audience", func(t *testing.T) {
		base, idp := startZitadelAndAppWith(t, zitadelOptions{clientKey: key, issuerAudience: true})
		b := testclient.New(t)
		p := zitadelSignIn(t, b, base, idp)
		if p.Status != http.StatusOK || p.URL.String() != base+"/" || !strings.Contains(p.Body, "Welcome "+zitadelUserName+"!") {
			t.Fatalf("after signing in at zitadel: want Welcome %s! at %s/, got %d at %s:\n%s", zitadelUserName, base, p.Status, p.URL, p.Body)
		}
		checkAssertion(t, idp, kid, idp.issuer)
		if _, status := idp.lastTokenRequest(); status != http.StatusOK {
			t.Errorf("zitadel's token endpoint answered %d, want 200", status)
		}
		// zitadel verified the assertion with the client's registered key.
		if got, want := idp.lookups(), []keyLookup{{keyID: kid, clientID: zitadelClientID}}; !slices.Equal(got, want) {
			t.Errorf("zitadel's client key lookups: got %v, want %v", got, want)
		}
		idToken, _ := idp.tokens(t)
		if c := jwtClaims(t, idToken); c["sub"] != zitadelUserID || c["azp"] != zitadelClientID {
			t.Errorf("ID token: want sub %s, azp %s, got %v", zitadelUserID, zitadelClientID, c)
		}
		p = b.Get(base + "/profile")
		if p.Status != http.StatusOK || !strings.Contains(p.Body, "<h1>"+zitadelUserName+"</h1>") {
			t.Errorf("GET /profile: want 200 with %s, got %d:\n%s", zitadelUserName, p.Status, p.Body)
		}
	})
}

// TestZitadelFormPost signs in with OIDC_RESPONSE_MODE=form_post: zitadel
// answers the authorization request with a page whose form the browser
// posts, cross-origin, to the app's /callback; the code never appears in
// a URL.
func TestZitadelFormPost(t *testing.T) {
	base, idp := startZitadelAndAppWith(t, zitadelOptions{responseMode: "form_post"})
	b := testclient.New(t)
	step := b.NoRedirects()

	// The app asks for form_post, and keeps the attempt in a cookie that a
	// cross-site POST carries: SameSite=None, hence Secure, even on http.
	p := step.Get(base + "/login")
	loc, err := url.Parse(p.Header.Get("Location"))
	if p.Status != http.StatusFound || err != nil || loc.Path != zitadelAuthPath {
		t.Fatalf("GET /login: want 302 to zitadel's %s, got %d to %q", zitadelAuthPath, p.Status, p.Header.Get("Location"))
	}
	if got := loc.Query().Get("response_mode"); got != "form_post" {
		t.Errorf("authorization request response_mode = %q, want form_post", got)
	}
	state := loc.Query().Get("state")
	var attempt *http.Cookie
	for _, c := range (&http.Response{Header: p.Header}).Cookies() {
		if strings.HasPrefix(c.Name, "login_tx_") {
			attempt = c
		}
	}
	if attempt == nil || attempt.SameSite != http.SameSiteNoneMode || !attempt.Secure || !attempt.HttpOnly {
		t.Fatalf("GET /login: want an attempt cookie with SameSite=None; Secure; HttpOnly, got %v", p.Header["Set-Cookie"])
	}
	// Go's cookie jar, like browsers, treats loopback as a secure origin
	// (net/http/cookiejar's secureMatch): the Secure cookie goes to
	// http://127.0.0.1. It does not apply SameSite at all, so this test
	// cannot tell whether a browser would send the cookie with the post.
	appURL, _ := url.Parse(base + "/callback")
	if !slices.ContainsFunc(b.Client.Jar.Cookies(appURL), func(c *http.Cookie) bool { return c.Name == attempt.Name }) {
		t.Fatalf("the cookie jar will not send the Secure attempt cookie %s to %s", attempt.Name, appURL)
	}

	p = b.Get(loc.String())
	if p.Status != http.StatusOK || !strings.HasPrefix(p.URL.String(), idp.issuer+"/login/username?") {
		t.Fatalf("zitadel's authorization endpoint: want its login page, got %d at %s:\n%s", p.Status, p.URL, p.Body)
	}
	user := idp.users.GetUserByID(zitadelUserID)
	p = b.Submit(p.Form(t, "/login/username"), map[string]string{"username": user.Username, "password": user.Password})

	// zitadel's answer: a page that posts the code and state to the
	// callback as soon as it loads.
	if p.Status != http.StatusOK || !strings.HasPrefix(p.URL.String(), idp.issuer+zitadelAuthPath+"/callback?") ||
		!strings.Contains(p.Body, "document.forms[0].submit()") {
		t.Fatalf("after signing in at zitadel: want its self-posting form page, got %d at %s:\n%s", p.Status, p.URL, p.Body)
	}
	if strings.Contains(p.URL.RawQuery, "code=") {
		t.Errorf("the code is in a URL: %s", p.URL)
	}
	form := p.Form(t, "/callback")
	if form.Action != base+"/callback" || form.Method != "POST" || form.Values.Get("code") == "" || form.Values.Get("state") != state {
		t.Fatalf("zitadel's form_post form: want a POST of code and state %s to %s/callback, got %+v", state, base, form)
	}
	tokenPath := op.DefaultEndpoints.Token.Relative()

	// The code and state are no good to a browser without the attempt
	// cookie, or as a query: the app asked for a post.
	if p := testclient.New(t).Submit(form, nil); p.Status != http.StatusBadRequest || !strings.Contains(p.Body, "Sign-in expired") {
		t.Errorf("form_post response from another browser: want 400 Sign-in expired, got %d:\n%s", p.Status, p.Body)
	}
	if p := b.Get(base + "/callback?" + form.Values.Encode()); p.Status != http.StatusBadRequest ||
		!strings.Contains(p.Body, "did not come the way it was asked for") {
		t.Errorf("GET /callback with the code: want 400 wrong response mode, got %d:\n%s", p.Status, p.Body)
	}
	if n := idp.served(tokenPath); n != 0 {
		t.Fatalf("the app redeemed the code %d times before the browser posted it", n)
	}

	// The browser posts the form as a browser would: cross-origin, from
	// zitadel's page (Origin and Fetch Metadata, which the app's
	// cross-origin protection reads).
	req, err := http.NewRequest(http.MethodPost, form.Action, strings.NewReader(form.Values.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", idp.issuer)
	req.Header.Set("Sec-Fetch-Site", "same-site")
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	resp, err := b.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != base+"/" || !strings.Contains(string(body), "Welcome "+zitadelUserName+"!") {
		t.Fatalf("after posting zitadel's form: want Welcome %s! at %s/, got %d at %s:\n%s", zitadelUserName, base, resp.StatusCode, resp.Request.URL, body)
	}
	if n := idp.served(tokenPath); n != 1 {
		t.Errorf("zitadel's token endpoint served %d requests, want 1", n)
	}
	if slices.ContainsFunc(b.Client.Jar.Cookies(appURL), func(c *http.Cookie) bool { return c.Name == attempt.Name }) {
		t.Errorf("the attempt cookie %s outlived the sign-in", attempt.Name)
	}
	p = b.Get(base + "/profile")
	if p.Status != http.StatusOK || !strings.Contains(p.Body, "<h1>"+zitadelUserName+"</h1>") {
		t.Errorf("GET /profile: want 200 with %s, got %d:\n%s", zitadelUserName, p.Status, p.Body)
	}
}
