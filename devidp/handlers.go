package devidp

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/go-jose/go-jose/v4"
)

const crypto256 = crypto.SHA256

var scopesSupported = []string{"openid", "profile", "email", "offline_access"}

func (p *Provider) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                         p.issuer,
		"authorization_endpoint":                         p.endpoint("/authorize"),
		"token_endpoint":                                 p.endpoint("/token"),
		"userinfo_endpoint":                              p.endpoint("/userinfo"),
		"jwks_uri":                                       p.endpoint("/jwks"),
		"end_session_endpoint":                           p.endpoint("/logout"),
		"response_types_supported":                       []string{"code"},
		"response_modes_supported":                       []string{"query"},
		"grant_types_supported":                          []string{"authorization_code"},
		"subject_types_supported":                        []string{"public"},
		"id_token_signing_alg_values_supported":          []string{"RS256"},
		"scopes_supported":                               scopesSupported,
		"token_endpoint_auth_methods_supported":          []string{"client_secret_basic", "client_secret_post"},
		"code_challenge_methods_supported":               []string{"S256"},
		"claims_supported":                               []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "sid", "name", "email", "email_verified", "picture"},
		"authorization_response_iss_parameter_supported": true,
	})
}

func (p *Provider) handleJWKS(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, p.jwks)
}

// authRequest is a validated authorization request (OpenID Connect Core 3.1.2.1).
type authRequest struct {
	ClientID, RedirectURI, State, Nonce, Scope, Challenge string
}

// parseAuthRequest validates the request parameters. A bad client or
// redirect URI is shown as a page (redirecting would be an open redirect);
// other problems go back to the client as an error response.
func (p *Provider) parseAuthRequest(w http.ResponseWriter, r *http.Request, form url.Values) (authRequest, bool) {
	ar := authRequest{
		ClientID:    form.Get("client_id"),
		RedirectURI: form.Get("redirect_uri"),
		State:       form.Get("state"),
		Nonce:       form.Get("nonce"),
		Scope:       form.Get("scope"),
		Challenge:   form.Get("code_challenge"),
	}
	c, ok := p.clients[ar.ClientID]
	if !ok {
		p.page(w, http.StatusBadRequest, "error", errorPage{Title: "Unknown application", Message: "The application that sent you here is not registered with the development provider (unknown client_id)."})
		return ar, false
	}
	if !slices.Contains(c.RedirectURIs, ar.RedirectURI) {
		p.page(w, http.StatusBadRequest, "error", errorPage{Title: "Unregistered callback", Message: "The application asked to return to a callback URL that is not registered for it (redirect_uri)."})
		return ar, false
	}
	var problem string
	switch {
	case form.Get("response_type") != "code":
		problem = "unsupported_response_type"
	case !slices.Contains(strings.Fields(ar.Scope), "openid"):
		problem = "invalid_scope"
	// PKCE S256 is required (RFC 9700 2.1.1): a development provider that
	// let a client go without it would hide a client that forgets it.
	case ar.Challenge == "" || form.Get("code_challenge_method") != "S256":
		problem = "invalid_request"
	}
	if problem != "" {
		p.redirectError(w, r, ar, problem)
		return ar, false
	}
	return ar, true
}

func (p *Provider) redirectError(w http.ResponseWriter, r *http.Request, ar authRequest, code string) {
	q := url.Values{"error": {code}, "iss": {p.issuer}}
	if ar.State != "" {
		q.Set("state", ar.State)
	}
	http.Redirect(w, r, withQuery(ar.RedirectURI, q), http.StatusFound)
}

type signInPage struct {
	Request     authRequest
	Name, Email string
	Problem     string
	Action      string
	Style       string
}

func (p *Provider) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	ar, ok := p.parseAuthRequest(w, r, r.URL.Query())
	if !ok {
		return
	}
	p.page(w, http.StatusOK, "signin", signInPage{Request: ar, Name: p.defName, Email: p.defMail, Action: p.base + "/authorize"})
}

func (p *Provider) handleSignIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		p.page(w, http.StatusBadRequest, "error", errorPage{Title: "Bad request", Message: "The sign-in form could not be read."})
		return
	}
	form := r.PostForm
	form.Set("response_type", "code")
	if form.Get("code_challenge") != "" {
		form.Set("code_challenge_method", "S256")
	}
	ar, ok := p.parseAuthRequest(w, r, form)
	if !ok {
		return
	}
	if form.Has("cancel") {
		p.redirectError(w, r, ar, "access_denied")
		return
	}
	u := User{Name: strings.TrimSpace(form.Get("name")), Email: strings.TrimSpace(form.Get("email"))}
	if problem := u.validate(); problem != "" {
		p.page(w, http.StatusUnprocessableEntity, "signin", signInPage{Request: ar, Name: u.Name, Email: u.Email, Problem: problem, Action: p.base + "/authorize"})
		return
	}
	now := time.Now()
	code, ok := p.store(p.codes, grant{
		client: ar.ClientID, redirectURI: ar.RedirectURI, nonce: ar.Nonce, challenge: ar.Challenge,
		scope: ar.Scope, user: u, sid: rand.Text(), authTime: now, expires: now.Add(CodeLifetime),
	})
	if !ok {
		p.redirectError(w, r, ar, "temporarily_unavailable")
		return
	}
	q := url.Values{"code": {code}, "iss": {p.issuer}}
	if ar.State != "" {
		q.Set("state", ar.State)
	}
	http.Redirect(w, r, withQuery(ar.RedirectURI, q), http.StatusFound)
}

func (u User) validate() string {
	switch {
	case u.Name == "" || len(u.Name) > 100:
		return "Enter a name of up to 100 characters."
	case len(u.Email) > 254:
		return "Enter an email address of up to 254 characters."
	}
	if a, err := mail.ParseAddress(u.Email); err != nil || a.Address != u.Email {
		return "Enter an email address such as ada@example.com."
	}
	return ""
}

// tokenError answers the token endpoint's error format (RFC 6749 5.2).
func tokenError(w http.ResponseWriter, status int, code, desc string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="devidp"`)
	}
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func (p *Provider) handleToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request", "unreadable form")
		return
	}
	client, ok := p.authenticate(r)
	if !ok {
		tokenError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	var g grant
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		g, ok = p.take(p.codes, r.PostForm.Get("code"), true)
		if !ok || g.client != client.ID || g.redirectURI != r.PostForm.Get("redirect_uri") || !pkceMatches(g.challenge, r.PostForm.Get("code_verifier")) {
			tokenError(w, http.StatusBadRequest, "invalid_grant", "the code is invalid, expired, used, or was issued for another request")
			return
		}
	case "refresh_token":
		// Refresh tokens rotate: each works once (OAuth 2.0 Security BCP 4.14).
		g, ok = p.take(p.refresh, r.PostForm.Get("refresh_token"), true)
		if !ok || g.client != client.ID {
			tokenError(w, http.StatusBadRequest, "invalid_grant", "the refresh token is invalid, expired or already used")
			return
		}
		g.nonce = "" // a refreshed ID token carries no nonce (Core 12.2)
	default:
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "authorization_code and refresh_token are supported")
		return
	}
	p.issueTokens(w, client, g)
}

// issueTokens answers the token endpoint with an ID token, an access token
// and, when offline_access was granted, a new refresh token.
func (p *Provider) issueTokens(w http.ResponseWriter, client Client, g grant) {
	now := time.Now()
	claims := p.claims(g)
	claims["iss"] = p.issuer
	claims["aud"] = client.ID
	claims["iat"] = now.Unix()
	claims["exp"] = now.Add(IDTokenLifetime).Unix()
	claims["auth_time"] = g.authTime.Unix()
	claims["sid"] = g.sid
	if g.nonce != "" {
		claims["nonce"] = g.nonce
	}
	idToken, err := p.Sign(claims)
	if err != nil {
		tokenError(w, http.StatusInternalServerError, "server_error", "could not sign the ID token")
		return
	}
	g.expires = now.Add(p.access)
	access, ok := p.store(p.tokens, g)
	if !ok {
		tokenError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "too many outstanding tokens")
		return
	}
	resp := map[string]any{
		"access_token": access,
		"token_type":   "Bearer",
		"expires_in":   int(p.access.Seconds()),
		"id_token":     idToken,
		"scope":        g.scope,
	}
	if slices.Contains(strings.Fields(g.scope), "offline_access") {
		g.expires = now.Add(RefreshTokenLifetime)
		if resp["refresh_token"], ok = p.store(p.refresh, g); !ok {
			tokenError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "too many outstanding tokens")
			return
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

// claims are the user's claims that the granted scopes release.
func (p *Provider) claims(g grant) map[string]any {
	c := map[string]any{"sub": g.user.Subject()}
	scopes := strings.Fields(g.scope)
	if slices.Contains(scopes, "profile") {
		c["name"] = g.user.Name
		c["picture"] = p.endpoint("/avatar.svg?" + url.Values{"n": {initials(g.user.Name)}}.Encode())
	}
	if slices.Contains(scopes, "email") {
		c["email"] = g.user.Email
		c["email_verified"] = true
	}
	return c
}

// Sign signs claims as a JWT with the provider's key.
func (p *Provider) Sign(claims map[string]any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := p.signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// authenticate checks client_secret_basic or client_secret_post credentials.
func (p *Provider) authenticate(r *http.Request) (Client, bool) {
	id, secret, ok := r.BasicAuth()
	if ok {
		// RFC 6749 2.3.1: the credentials are form-encoded inside Basic.
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	c, found := p.clients[id]
	if !found || subtle.ConstantTimeCompare([]byte(c.Secret), []byte(secret)) != 1 {
		return Client{}, false
	}
	return c, true
}

// pkceMatches checks an S256 code verifier (RFC 7636 4.6).
func pkceMatches(challenge, verifier string) bool {
	if challenge == "" {
		return verifier == ""
	}
	sum := sha256.Sum256([]byte(verifier))
	return subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(challenge)) == 1
}

func (p *Provider) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	g, ok := p.take(p.tokens, token, false)
	if !strings.EqualFold(scheme, "Bearer") || !ok {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token"})
		return
	}
	writeJSON(w, http.StatusOK, p.claims(g))
}

// handleEndSession implements RP-initiated logout: it ends the provider
// session the ID token hint names, tells the client through back-channel
// logout, and returns the browser to a registered post-logout URL, or says
// the user is signed out.
func (p *Provider) handleEndSession(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	hint := p.hintClaims(q.Get("id_token_hint"))
	if hint.SID != "" {
		p.revoke(hint.SID)
		p.backchannelLogout(r.Context(), hint)
	}
	clientID := q.Get("client_id")
	if clientID == "" {
		clientID = hint.Aud
	}
	target := q.Get("post_logout_redirect_uri")
	if c, ok := p.clients[clientID]; ok && target != "" && slices.Contains(c.PostLogoutRedirectURIs, target) {
		if s := q.Get("state"); s != "" {
			target = withQuery(target, url.Values{"state": {s}})
		}
		http.Redirect(w, r, target, http.StatusFound)
		return
	}
	p.page(w, http.StatusOK, "error", errorPage{Title: "Signed out", Message: "You are signed out of the development provider."})
}

// hint is what end_session needs of an ID token we signed.
type hint struct {
	Aud string `json:"aud"`
	Sub string `json:"sub"`
	SID string `json:"sid"`
}

// hintClaims returns the claims of an ID token we signed; expired ones are
// fine (OpenID Connect RP-Initiated Logout 1.0, section 2).
func (p *Provider) hintClaims(raw string) hint {
	var h hint
	if raw == "" {
		return h
	}
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return h
	}
	payload, err := jws.Verify(p.pub)
	if err != nil {
		return h
	}
	json.Unmarshal(payload, &h)
	return h
}

// backchannelLogout posts a logout token (OpenID Connect Back-Channel
// Logout 1.0, section 2.4) to the client of the session, if it registered
// a back-channel logout URI. Failures are the client's problem: the user is
// signed out here either way.
func (p *Provider) backchannelLogout(ctx context.Context, h hint) {
	c, ok := p.clients[h.Aud]
	if !ok || c.BackchannelLogoutURI == "" {
		return
	}
	now := time.Now()
	token, err := p.Sign(map[string]any{
		"iss": p.issuer, "aud": c.ID, "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(),
		"jti": rand.Text(), "sub": h.Sub, "sid": h.SID,
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
	})
	if err != nil {
		return
	}
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodPost, c.BackchannelLogoutURI,
		strings.NewReader(url.Values{"logout_token": {token}}.Encode()))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, err := p.client.Do(req); err == nil {
		resp.Body.Close()
	}
}

type errorPage struct {
	Title, Message string
	Style          string
}

func (p *Provider) page(w http.ResponseWriter, status int, name string, data any) {
	switch d := data.(type) {
	case signInPage:
		d.Style = p.base + "/style.css"
		data = d
	case errorPage:
		d.Style = p.base + "/style.css"
		data = d
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	pages.ExecuteTemplate(w, name+".html", data)
}

func handleAvatar(w http.ResponseWriter, r *http.Request) {
	n := []rune(r.URL.Query().Get("n"))
	n = n[:min(len(n), 2)]
	sum := sha256.Sum256([]byte(string(n)))
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="96" height="96" viewBox="0 0 96 96">`+
		`<rect width="96" height="96" rx="48" fill="hsl(%d,45%%,45%%)"/>`+
		`<text x="48" y="60" font-family="sans-serif" font-size="36" fill="#fff" text-anchor="middle">%s</text></svg>`,
		int(sum[0])*360/256, template.HTMLEscapeString(string(n)))
}

// initials returns up to two initials of name, for the avatar picture.
func initials(name string) string {
	var out []rune
	for _, f := range strings.Fields(name) {
		r := []rune(f)[0]
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			out = append(out, unicode.ToUpper(r))
		}
		if len(out) == 2 {
			break
		}
	}
	if len(out) == 0 {
		return "?"
	}
	return string(out)
}

func handleStyle(w http.ResponseWriter, r *http.Request) {
	http.ServeFileFS(w, r, templateFS, "templates/style.css")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func withQuery(u string, q url.Values) string {
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + q.Encode()
}
