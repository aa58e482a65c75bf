package app

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/gologin/gologin/internal/config"
	"github.com/gologin/gologin/internal/testclient"
	"github.com/gologin/gologin/login"
)

// This file signs in through an OpenID provider this repository did not
// write: the op package of github.com/zitadel/oidc, run in-process with the
// in-memory storage, users and login UI of its example server.

const zitadelClientID = "gologin-web"

// zitadelAuthPath is the example provider's authorization endpoint: it
// moves op's default /authorize to /auth (op.WithCustomAuthEndpoint), and
// the login UI returns the browser to zitadelAuthPath + "/callback".
const zitadelAuthPath = "/auth"

// zitadelIdP is the zitadel example provider on a loopback port, with a
// record of what it served.
type zitadelIdP struct {
	issuer string
	users  storage.UserStore

	mu          sync.Mutex
	hits        map[string]int // requests served, by path
	tokenBody   []byte         // the token endpoint's last response
	tokenStatus int            // and its status
	tokenReq    tokenRequest   // the token endpoint's last request
	keyLookups  []keyLookup    // the storage's GetKeyByIDAndClientID calls
}

// tokenRequest is how a client authenticated at the token endpoint.
type tokenRequest struct {
	form      url.Values // the posted form
	basicAuth bool       // an Authorization: Basic header came with it
}

// keyLookup is a call of GetKeyByIDAndClientID: op looking up the key that
// verifies a client assertion.
type keyLookup struct{ keyID, clientID string }

// lastTokenRequest returns the token endpoint's last request and the status
// it got.
func (p *zitadelIdP) lastTokenRequest() (tokenRequest, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tokenReq, p.tokenStatus
}

// lookups returns the client key lookups op made.
func (p *zitadelIdP) lookups() []keyLookup {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]keyLookup(nil), p.keyLookups...)
}

// served returns how many requests for path the provider has answered.
func (p *zitadelIdP) served(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hits[path]
}

// tokens returns the token endpoint's last response, decoded.
func (p *zitadelIdP) tokens(t *testing.T) (idToken, accessToken string) {
	t.Helper()
	p.mu.Lock()
	body := p.tokenBody
	p.mu.Unlock()
	var res struct {
		IDToken     string `json:"id_token"`
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &res); err != nil || res.IDToken == "" || res.AccessToken == "" {
		t.Fatalf("zitadel's token response: want an id_token and an access_token, got %q (%v)", body, err)
	}
	return res.IDToken, res.AccessToken
}

// record counts every request and keeps the token endpoint's requests and
// responses.
func (p *zitadelIdP) record(next http.Handler) http.Handler {
	tokenPath := op.DefaultEndpoints.Token.Relative()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.hits[r.URL.Path]++
		p.mu.Unlock()
		if r.URL.Path != tokenPath {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))
		_, _, basic := r.BasicAuth()
		tee := &teeWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(tee, r)
		p.mu.Lock()
		p.tokenReq = tokenRequest{form: form, basicAuth: basic}
		p.tokenBody, p.tokenStatus = tee.body.Bytes(), tee.status
		p.mu.Unlock()
	})
}

// teeWriter keeps a copy of what it writes.
type teeWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (w *teeWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

func (w *teeWriter) Write(b []byte) (int, error) {
	w.body.Write(b)
	return w.ResponseWriter.Write(b)
}

// zitadelStorage is the example storage with post-logout redirect URIs and
// client keys. The example's storage.Client cannot register post-logout
// redirect URIs (its PostLogoutRedirectURIs always returns none, and the
// glob list that would allow some is unexported), so without this
// end_session refuses every post_logout_redirect_uri as invalid. Nor can
// it make a web client private_key_jwt (its auth method is unexported,
// WebClient's is client_secret_basic), and the example looks up assertion
// keys only among its own service users. Every other method is the
// example's.
type zitadelStorage struct {
	*storage.Storage
	postLogout map[string][]string         // by client ID
	keys       map[string]*jose.JSONWebKey // public keys of private_key_jwt clients, by client ID
	idp        *zitadelIdP                 // records the key lookups
}

func (s zitadelStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil {
		return nil, err
	}
	zc := zitadelClient{Client: c, postLogout: s.postLogout[id]}
	if s.keys[id] != nil {
		zc.authMethod = oidc.AuthMethodPrivateKeyJWT
	}
	return zc, nil
}

// GetKeyByIDAndClientID is where op's JWTProfileVerifier finds the key
// that verifies a client assertion (op.JWTProfileKeyStorage): the one
// registered for the assertion's issuer, if its key ID is the assertion's.
func (s zitadelStorage) GetKeyByIDAndClientID(ctx context.Context, keyID, clientID string) (*jose.JSONWebKey, error) {
	s.idp.mu.Lock()
	s.idp.keyLookups = append(s.idp.keyLookups, keyLookup{keyID: keyID, clientID: clientID})
	s.idp.mu.Unlock()
	k, ok := s.keys[clientID]
	if !ok {
		return s.Storage.GetKeyByIDAndClientID(ctx, keyID, clientID)
	}
	if k.KeyID != keyID {
		return nil, fmt.Errorf("client %s has no key %q", clientID, keyID)
	}
	return k, nil
}

// zitadelClient is an example client with post-logout redirect URIs and,
// if authMethod is set, another token endpoint authentication method.
type zitadelClient struct {
	op.Client
	postLogout []string
	authMethod oidc.AuthMethod
}

func (c zitadelClient) PostLogoutRedirectURIs() []string { return c.postLogout }

func (c zitadelClient) AuthMethod() oidc.AuthMethod {
	if c.authMethod != "" {
		return c.authMethod
	}
	return c.Client.AuthMethod()
}

// zitadelOptions are the ways the app may sign in at zitadel.
type zitadelOptions struct {
	// clientKey, if set, registers the app with zitadel as a
	// private_key_jwt client with the key's public half (login.PublicJWKS),
	// and gives the app the key in a PEM file, OIDC_CLIENT_KEY_FILE, and no
	// OIDC_CLIENT_SECRET.
	clientKey crypto.Signer
	// issuerAudience sets OIDC_ASSERTION_AUDIENCE=issuer: client
	// assertions have aud = the issuer, as zitadel requires.
	issuerAudience bool
	// responseMode is OIDC_RESPONSE_MODE.
	responseMode string
	// upstream, if set, makes the app the gateway in front of it.
	upstream string
}

// startZitadelAndApp serves the zitadel example provider and the app, each
// on its own loopback port, and returns the app's base URL. The app signs in
// with the provider (OIDC_ISSUER, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET), where
// it is a confidential web client registered with the app's callback and
// home URLs. Each side must know the other's URL before it starts, so this
// picks both addresses first; otherwise it sets the app up as startApp does.
func startZitadelAndApp(t *testing.T) (string, *zitadelIdP) {
	t.Helper()
	return startZitadelAndAppWith(t, zitadelOptions{})
}

// startZitadelAndAppWith is startZitadelAndApp with the client and sign-in
// of o.
func startZitadelAndAppWith(t *testing.T, o zitadelOptions) (string, *zitadelIdP) {
	t.Helper()
	idpSrv := httptest.NewUnstartedServer(nil)
	appSrv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + idpSrv.Listener.Addr().String()
	base := "http://" + appSrv.Listener.Addr().String()
	// With a client key, zitadel still has a secret for the client, which
	// the app is never told: a sign-in shows that the assertion did it.
	secret := rand.Text()

	prefix := "" // of the routes: the gateway's are under /_auth
	if o.upstream != "" {
		prefix = "/_auth"
	}
	idp := &zitadelIdP{issuer: issuer, users: storage.NewUserStore(issuer), hits: map[string]int{}}
	// A client map of our own, rather than storage.RegisterClients, which
	// writes a package-level map shared by every storage.
	clients := map[string]*storage.Client{
		zitadelClientID: storage.WebClient(zitadelClientID, secret, base+prefix+"/callback"),
	}
	st := zitadelStorage{
		Storage:    storage.NewStorageWithClients(idp.users, clients),
		postLogout: map[string][]string{zitadelClientID: {base + prefix + "/"}},
		keys:       map[string]*jose.JSONWebKey{},
		idp:        idp,
	}
	vars := map[string]string{
		"APP_BASE_URL":       base,
		"SESSION_STORE":      "sqlite:" + filepath.Join(t.TempDir(), "sessions.db"),
		"OIDC_ISSUER":        issuer,
		"OIDC_CLIENT_ID":     zitadelClientID,
		"OIDC_CLIENT_SECRET": secret,
		"OIDC_RESPONSE_MODE": o.responseMode,
		"UPSTREAM_URL":       o.upstream,
	}
	if o.clientKey != nil {
		// Registered as the login package says to: its PublicJWKS.
		doc, err := login.PublicJWKS(o.clientKey, "")
		var set jose.JSONWebKeySet
		if err == nil {
			err = json.Unmarshal(doc, &set)
		}
		if err != nil || len(set.Keys) != 1 {
			t.Fatalf("the client's public JWKS: %v, %s", err, doc)
		}
		st.keys[zitadelClientID] = &set.Keys[0]
		der, err := x509.MarshalPKCS8PrivateKey(o.clientKey)
		if err != nil {
			t.Fatal(err)
		}
		keyFile := filepath.Join(t.TempDir(), "client-key.pem")
		if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		vars["OIDC_CLIENT_KEY_FILE"] = keyFile
		delete(vars, "OIDC_CLIENT_SECRET")
	}
	if o.issuerAudience {
		vars["OIDC_ASSERTION_AUDIENCE"] = "issuer"
	}
	// A nil logger leaves slog's default alone (the example would replace
	// it for the whole process); the example's request log goes there.
	idpSrv.Config.Handler = idp.record(exampleop.SetupServer(issuer, st, nil, false))
	idpSrv.Start()
	t.Cleanup(idpSrv.Close)

	load := config.Load
	if o.upstream != "" {
		load = config.LoadGateway
	}
	cfg, err := load(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Provider != config.OIDC {
		t.Fatalf("provider kind = %q, want %q", cfg.Provider, config.OIDC)
	}
	a, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	appSrv.Config.Handler = a
	appSrv.Start()
	t.Cleanup(func() {
		appSrv.Close()
		a.Close()
	})
	return base, idp
}

// jwtClaims decodes a JWT's payload without verifying it (the app has
// verified it already).
func jwtClaims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	return jwtPart(t, jwt, 1)
}

// jwtPart decodes part i of a JWS in compact form (0 the header, 1 the
// payload) without verifying it.
func jwtPart(t *testing.T, jwt string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS in compact form: %q", jwt)
	}
	part, err := base64.RawURLEncoding.DecodeString(parts[i])
	var m map[string]any
	if err == nil {
		err = json.Unmarshal(part, &m)
	}
	if err != nil {
		t.Fatalf("JWS part %d: %v", i, err)
	}
	return m
}

func TestZitadelEndToEnd(t *testing.T) {
	base, idp := startZitadelAndApp(t)
	b := testclient.New(t)

	// The example's first user. Its username names the issuer's host, so it
	// comes from the store; the name, email and sub are what the provider
	// says about the user, and what the app must show.
	const wantName, wantEmail, wantSub = "Test User", "test-user@zitadel.ch", "id1"
	user := idp.users.GetUserByID(wantSub)
	if user == nil || user.FirstName+" "+user.LastName != wantName || user.Email != wantEmail {
		t.Fatalf("zitadel's example user %s is not %q <%s> any more: %+v", wantSub, wantName, wantEmail, user)
	}

	p := b.Get(base + "/")
	if p.Status != http.StatusOK || !strings.Contains(p.Body, "Welcome Guest") {
		t.Fatalf("guest home page: want 200 with Welcome Guest, got %d:\n%s", p.Status, p.Body)
	}

	// /login sends the browser to zitadel's authorization endpoint, which
	// sends it on to the example's login UI.
	p = b.Get(base + "/login")
	if p.Status != http.StatusOK || !strings.HasPrefix(p.URL.String(), idp.issuer+"/login/username?") {
		t.Fatalf("GET /login: want 200 at zitadel's login page %s/login/username, got %d at %s:\n%s", idp.issuer, p.Status, p.URL, p.Body)
	}
	if n := idp.served(zitadelAuthPath); n != 1 {
		t.Errorf("zitadel's authorization endpoint %s served %d requests, want 1", zitadelAuthPath, n)
	}
	login := p.Form(t, "/login/username")
	if login.Method != "POST" || login.Values.Get("id") == "" {
		t.Fatalf("zitadel's login form: want a POST carrying the auth request id, got %+v", login)
	}

	// A wrong password keeps the browser on zitadel's page.
	p = b.Submit(login, map[string]string{"username": user.Username, "password": "not-" + user.Password})
	if p.Status != http.StatusOK || !strings.HasPrefix(p.URL.String(), idp.issuer+"/") || !strings.Contains(p.Body, "username or password wrong") {
		t.Fatalf("wrong password: want zitadel's login page with its error, got %d at %s:\n%s", p.Status, p.URL, p.Body)
	}
	if idp.served(op.DefaultEndpoints.Token.Relative()) != 0 {
		t.Fatal("wrong password: the app redeemed a code")
	}

	p = b.Submit(p.Form(t, "/login/username"), map[string]string{"username": user.Username, "password": user.Password})
	if p.Status != http.StatusOK || p.URL.String() != base+"/" {
		t.Fatalf("after signing in at zitadel: want 200 at %s/, got %d at %s:\n%s", base, p.Status, p.URL, p.Body)
	}
	if !strings.Contains(p.Body, "Welcome "+wantName+"!") {
		t.Fatalf("home page after sign-in: want Welcome %s!, got:\n%s", wantName, p.Body)
	}
	for _, path := range []string{zitadelAuthPath + "/callback", op.DefaultEndpoints.Token.Relative()} {
		if n := idp.served(path); n != 1 {
			t.Errorf("zitadel served %s %d times during sign-in, want once", path, n)
		}
	}

	// zitadel leaves the profile and email claims out of an ID token issued
	// with an access token (OpenID Connect Core 5.4; the example's web client
	// does not set IDTokenUserinfoClaimsAssertion): the name and email the
	// app shows come from userinfo, so this exercises the app's userinfo
	// fallback (login.needsUserinfo and mergeUserinfo).
	idToken, accessToken := idp.tokens(t)
	claims := jwtClaims(t, idToken)
	if claims["sub"] != wantSub || claims["iss"] != idp.issuer || claims["azp"] != zitadelClientID {
		t.Errorf("ID token: want sub %s, iss %s and azp %s, got %v", wantSub, idp.issuer, zitadelClientID, claims)
	}
	for _, k := range []string{"name", "email", "preferred_username"} {
		if _, ok := claims[k]; ok {
			t.Errorf("ID token carries %s; this test expects zitadel to keep profile claims for userinfo: %v", k, claims)
		}
	}
	if n := idp.served(op.DefaultEndpoints.Userinfo.Relative()); n != 1 {
		t.Errorf("zitadel's userinfo endpoint served %d requests during sign-in, want 1 (the app's fallback)", n)
	}

	p = b.Get(base + "/profile")
	if p.Status != http.StatusOK || p.URL.String() != base+"/profile" {
		t.Fatalf("GET /profile: want 200 at /profile, got %d at %s:\n%s", p.Status, p.URL, p.Body)
	}
	for _, want := range []string{
		"<h1>" + wantName + "</h1>",
		"<p>" + wantEmail + "</p>",
		`<th scope="row">sub</th><td>` + wantSub + `</td>`,
		`<th scope="row">email</th><td>` + wantEmail + `</td>`,
		`<th scope="row">email_verified</th><td>true</td>`,
		`<th scope="row">name</th><td>` + wantName + `</td>`,
		`<th scope="row">preferred_username</th><td>` + user.Username + `</td>`,
		`<th scope="row">iss</th><td>` + idp.issuer + `</td>`,
	} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("profile page lacks %s:\n%s", want, p.Body)
		}
	}
	if strings.Contains(p.Body, "eyJ") {
		t.Errorf("profile page shows a raw token:\n%s", p.Body)
	}

	// The access token the app holds works at zitadel until logout.
	userinfoStatus := func() int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, idp.issuer+op.DefaultEndpoints.Userinfo.Relative(), nil)
		req.Header.Set("Authorization", "Bearer "+accessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("userinfo: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := userinfoStatus(); s != http.StatusOK {
		t.Fatalf("userinfo with the app's access token before logout: %d, want 200", s)
	}

	// Logout: the app ends its session and sends the browser to zitadel's
	// end_session endpoint with the ID token as hint and its home page as
	// the way back.
	logout := p.Form(t, "/logout")
	if logout.Method != "POST" || logout.Values.Get("csrf_token") == "" {
		t.Fatalf("logout form: want POST with a csrf_token, got %+v", logout)
	}
	step := b.NoRedirects()
	p = step.Submit(logout, nil)
	loc, err := url.Parse(p.Header.Get("Location"))
	if p.Status != http.StatusSeeOther || err != nil {
		t.Fatalf("POST /logout: want 303 to zitadel's end_session, got %d to %q", p.Status, p.Header.Get("Location"))
	}
	endSession := idp.issuer + op.DefaultEndpoints.EndSession.Relative()
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != endSession {
		t.Fatalf("POST /logout redirects to %s, want zitadel's end_session endpoint %s", loc, endSession)
	}
	q := loc.Query()
	for k, want := range map[string]string{
		"client_id":                zitadelClientID,
		"post_logout_redirect_uri": base + "/",
		"id_token_hint":            idToken,
	} {
		if got := q.Get(k); got != want {
			t.Errorf("end_session request %s = %q, want %q", k, got, want)
		}
	}

	p = step.Get(loc.String())
	if p.Status != http.StatusFound || p.Header.Get("Location") != base+"/" {
		t.Fatalf("zitadel's end_session: want 302 back to %s/, got %d to %q:\n%s", base, p.Status, p.Header.Get("Location"), p.Body)
	}
	p = b.Get(p.Header.Get("Location"))
	if p.Status != http.StatusOK || p.URL.String() != base+"/" || !strings.Contains(p.Body, "Welcome Guest") {
		t.Fatalf("after logout: want Welcome Guest at %s/, got %d at %s:\n%s", base, p.Status, p.URL, p.Body)
	}

	// zitadel ended its side too: it knew the user from id_token_hint and
	// revoked the tokens it had issued to the app for them.
	if s := userinfoStatus(); s == http.StatusOK {
		t.Errorf("userinfo with the app's access token after logout: 200, want it refused")
	}
	// And the app's session is gone: its logout form no longer works.
	if p := b.Submit(logout, nil); p.Status != http.StatusForbidden {
		t.Errorf("replayed logout form: got %d, want 403", p.Status)
	}
}

// TestZitadelThroughGateway signs in to an upstream app through the
// gateway at zitadel's provider: back to the first page, with the identity
// zitadel gives (partly from userinfo) in the upstream's headers.
func TestZitadelThroughGateway(t *testing.T) {
	up := startUpstream(t)
	base, idp := startZitadelAndAppWith(t, zitadelOptions{upstream: up.URL})
	user := idp.users.GetUserByID("id1")
	b := testclient.New(t)
	p := b.Get(base + "/report?q=1")
	if !strings.HasPrefix(p.URL.String(), idp.issuer+"/login/username?") {
		t.Fatalf("a guest at /report: want zitadel's login page, got %d at %s", p.Status, p.URL)
	}
	s := upstreamSaw(t, b.Submit(p.Form(t, "/login/username"), map[string]string{"username": user.Username, "password": user.Password}))
	want := map[string]string{"X-Forwarded-User": "id1", "X-Forwarded-Email": "test-user@zitadel.ch",
		"X-Forwarded-Preferred-Username": user.Username}
	for k, v := range want {
		if got := s.Header.Get(k); got != v {
			t.Errorf("upstream got %s: %q, want %q", k, got, v)
		}
	}
	if s.URI != "/report?q=1" {
		t.Errorf("upstream got %s, want /report?q=1", s.URI)
	}
}
