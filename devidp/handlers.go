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
	"maps"
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
	doc := map[string]any{
		"issuer":                                           p.issuer,
		"authorization_endpoint":                           p.endpoint("/authorize"),
		"token_endpoint":                                   p.endpoint("/token"),
		"userinfo_endpoint":                                p.endpoint("/userinfo"),
		"jwks_uri":                                         p.endpoint("/jwks"),
		"end_session_endpoint":                             p.endpoint("/logout"),
		"response_types_supported":                         []string{"code"},
		"response_modes_supported":                         []string{"query", "form_post"},
		"grant_types_supported":                            []string{"authorization_code", "refresh_token"},
		"subject_types_supported":                          []string{"public"},
		"id_token_signing_alg_values_supported":            []string{"RS256"},
		"scopes_supported":                                 scopesSupported,
		"token_endpoint_auth_methods_supported":            authMethodsSupported,
		"token_endpoint_auth_signing_alg_values_supported": algNames(assertionAlgs),
		"dpop_signing_alg_values_supported":                algNames(dpopAlgs),
		"code_challenge_methods_supported":                 []string{"S256"},
		"claims_supported":                                 []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "sid", "name", "preferred_username", "groups", "email", "email_verified", "picture"},
		"authorization_response_iss_parameter_supported":   true,
	}
	if p.par {
		doc["pushed_authorization_request_endpoint"] = p.endpoint("/par")
		doc["require_pushed_authorization_requests"] = p.requirePAR
	}
	writeJSON(w, http.StatusOK, doc)
}

func (p *Provider) handleJWKS(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, p.jwks)
}

// authRequest is a validated authorization request (OpenID Connect Core 3.1.2.1).
type authRequest struct {
	ClientID, RedirectURI, State, Nonce, Scope, Challenge string
	// ResponseMode is "query" or "form_post"; empty means query.
	ResponseMode string
	// RequestURI is the request_uri of a request pushed to the PAR
	// endpoint: its sign-in form carries that alone, so that what was
	// pushed cannot be changed in the browser.
	RequestURI string
}

// authError is a refused authorization request: a page to show when the
// client or its redirect URI is unverified (redirecting there would be an
// open redirect), or else an error code to return to the client.
type authError struct {
	page       *errorPage
	code, desc string
}

var (
	unknownClientPage = &errorPage{Title: "Unknown application", Message: "The application that sent you here is not registered with the development provider (unknown client_id)."}
	badCallbackPage   = &errorPage{Title: "Unregistered callback", Message: "The application asked to return to a callback URL that is not registered for it (redirect_uri)."}
	noPushedPage      = &errorPage{Title: "Sign-in request not found", Message: "The application's pushed authorization request (request_uri) is unknown, has expired, was already used, or is another application's. Start signing in again from the application."}
)

// checkAuthRequest validates the parameters of an authorization request;
// direct is false for one pushed to the PAR endpoint, which PAR's
// requirement does not refuse.
func (p *Provider) checkAuthRequest(form url.Values, direct bool) (authRequest, *authError) {
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
		return ar, &authError{page: unknownClientPage, code: "invalid_request", desc: "unknown client_id"}
	}
	if !slices.Contains(c.RedirectURIs, ar.RedirectURI) {
		return ar, &authError{page: badCallbackPage, code: "invalid_request", desc: "redirect_uri is not registered for the client"}
	}
	// An unknown mode leaves ResponseMode empty, so that the refusal goes
	// back the default way, in the query.
	switch mode := form.Get("response_mode"); mode {
	case "", "query", "form_post":
		ar.ResponseMode = mode
	default:
		return ar, &authError{code: "invalid_request", desc: "response_mode must be query or form_post"}
	}
	switch {
	case direct && (p.requirePAR || c.RequirePAR):
		return ar, &authError{code: "invalid_request", desc: "authorization requests must be pushed to the PAR endpoint first (RFC 9126)"}
	case form.Get("response_type") != "code":
		return ar, &authError{code: "unsupported_response_type", desc: "response_type must be code"}
	case !slices.Contains(strings.Fields(ar.Scope), "openid"):
		return ar, &authError{code: "invalid_scope", desc: "scope must include openid"}
	// PKCE S256 is required (RFC 9700 2.1.1): a development provider that
	// let a client go without it would hide a client that forgets it.
	case ar.Challenge == "" || form.Get("code_challenge_method") != "S256":
		return ar, &authError{code: "invalid_request", desc: "a PKCE code_challenge with code_challenge_method S256 is required"}
	}
	return ar, nil
}

// refuse shows the page of e, or returns its error to the client.
func (p *Provider) refuse(w http.ResponseWriter, r *http.Request, ar authRequest, e *authError) {
	if e.page != nil {
		p.page(w, http.StatusBadRequest, "error", *e.page)
		return
	}
	p.respond(w, r, ar, url.Values{"error": {e.code}, "error_description": {e.desc}})
}

// respond sends the authorization response params, with the state and the
// issuer (RFC 9207), to the client's redirect URI the way ar asked: in the
// query of a redirect, or posted by the browser (form_post).
func (p *Provider) respond(w http.ResponseWriter, r *http.Request, ar authRequest, params url.Values) {
	params.Set("iss", p.issuer)
	if ar.State != "" {
		params.Set("state", ar.State)
	}
	if ar.ResponseMode == "form_post" {
		p.formPost(w, ar.RedirectURI, params)
		return
	}
	http.Redirect(w, r, withQuery(ar.RedirectURI, params), http.StatusFound)
}

type signInPage struct {
	Request     authRequest
	Name, Email string
	Groups      string
	Problem     string
	Action      string
	Style       string
}

func (p *Provider) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var ar authRequest
	if q.Has("request_uri") {
		// Every parameter comes from the pushed request; others are
		// ignored (RFC 9126 4).
		var ok bool
		if ar, ok = p.openPushed(q.Get("client_id"), q.Get("request_uri")); !ok {
			p.page(w, http.StatusBadRequest, "error", *noPushedPage)
			return
		}
	} else {
		var e *authError
		if ar, e = p.checkAuthRequest(q, true); e != nil {
			p.refuse(w, r, ar, e)
			return
		}
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
	var ar authRequest
	if form.Has("request_uri") {
		var ok bool
		if ar, ok = p.pushedSignIn(form.Get("client_id"), form.Get("request_uri")); !ok {
			p.page(w, http.StatusBadRequest, "error", *noPushedPage)
			return
		}
	} else {
		form.Set("response_type", "code")
		if form.Get("code_challenge") != "" {
			form.Set("code_challenge_method", "S256")
		}
		var e *authError
		if ar, e = p.checkAuthRequest(form, true); e != nil {
			p.refuse(w, r, ar, e)
			return
		}
	}
	if form.Has("cancel") {
		if !p.closePushed(ar) {
			p.page(w, http.StatusBadRequest, "error", *noPushedPage)
			return
		}
		// No description: the user knows, and the client says it best.
		p.respond(w, r, ar, url.Values{"error": {"access_denied"}})
		return
	}
	u := User{Name: strings.TrimSpace(form.Get("name")), Email: strings.TrimSpace(form.Get("email"))}
	for g := range strings.SplitSeq(form.Get("groups"), ",") {
		if g = strings.TrimSpace(g); g != "" {
			u.Groups = append(u.Groups, g)
		}
	}
	if problem := u.validate(); problem != "" {
		p.page(w, http.StatusUnprocessableEntity, "signin", signInPage{Request: ar, Name: u.Name, Email: u.Email, Groups: strings.Join(u.Groups, ", "), Problem: problem, Action: p.base + "/authorize"})
		return
	}
	// A pushed request signs in once, even when its form is posted twice.
	if !p.closePushed(ar) {
		p.page(w, http.StatusBadRequest, "error", *noPushedPage)
		return
	}
	now := p.now()
	code, ok := store(p, p.codes, grant{
		client: ar.ClientID, redirectURI: ar.RedirectURI, nonce: ar.Nonce, challenge: ar.Challenge,
		scope: ar.Scope, user: u, sid: rand.Text(), authTime: now, expires: now.Add(CodeLifetime),
	})
	if !ok {
		p.respond(w, r, ar, url.Values{"error": {"temporarily_unavailable"}, "error_description": {"too many outstanding codes"}})
		return
	}
	p.respond(w, r, ar, url.Values{"code": {code}})
}

func (u User) validate() string {
	switch {
	case u.Name == "" || len(u.Name) > 100:
		return "Enter a name of up to 100 characters."
	case len(u.Email) > 254:
		return "Enter an email address of up to 254 characters."
	case len(u.Groups) > 20 || slices.ContainsFunc(u.Groups, func(g string) bool { return len(g) > 64 }):
		return "Enter at most 20 groups of up to 64 characters each."
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
	if p.nonces {
		w.Header().Set("DPoP-Nonce", p.dpopNonce())
	}
	auth, problem := p.authenticate(r, p.issuer, p.endpoint("/token"))
	if problem != "" {
		tokenError(w, http.StatusUnauthorized, "invalid_client", problem)
		return
	}
	client := auth.client
	grantType := r.PostForm.Get("grant_type")
	if grantType != "authorization_code" && grantType != "refresh_token" {
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "authorization_code and refresh_token are supported")
		return
	}
	var proof *dpopProof
	if proofs := r.Header.Values("DPoP"); len(proofs) > 0 || client.RequireDPoP {
		var e *dpopError
		if proof, e = p.checkProof(proofs, http.MethodPost, p.endpoint("/token"), ""); e != nil {
			tokenError(w, http.StatusBadRequest, e.code, e.desc)
			return
		}
	}
	// The jtis are spent only now, past the nonce check: a relying party
	// retrying for a DPoP nonce may resend the same client assertion.
	if problem, code := p.spend(auth, proof); problem != "" {
		status := http.StatusUnauthorized
		if code != "invalid_client" {
			status = http.StatusBadRequest
		}
		tokenError(w, status, code, problem)
		return
	}
	var g grant
	var ok bool
	switch grantType {
	case "authorization_code":
		g, ok = p.take(p.codes, r.PostForm.Get("code"), true)
		if !ok || g.client != client.ID || g.redirectURI != r.PostForm.Get("redirect_uri") || !pkceMatches(g.challenge, r.PostForm.Get("code_verifier")) {
			tokenError(w, http.StatusBadRequest, "invalid_grant", "the code is invalid, expired, used, or was issued for another request")
			return
		}
	case "refresh_token":
		// Refresh tokens rotate: each works once (OAuth 2.0 Security BCP
		// 4.14). One bound to a DPoP key needs a proof by that key (RFC
		// 9449 5); a refused attempt leaves it to its holder.
		var found bool
		g, found, ok = p.takeIf(p.refresh, r.PostForm.Get("refresh_token"), func(g grant) bool {
			return g.client == client.ID && (g.jkt == "" || proof != nil && proof.jkt == g.jkt)
		})
		switch {
		case !found || g.client != client.ID:
			tokenError(w, http.StatusBadRequest, "invalid_grant", "the refresh token is invalid, expired or already used")
			return
		case !ok && proof == nil:
			tokenError(w, http.StatusBadRequest, "invalid_dpop_proof", "the refresh token is DPoP-bound: send a DPoP proof signed with its key")
			return
		case !ok:
			tokenError(w, http.StatusBadRequest, "invalid_grant", "the refresh token is bound to another DPoP key")
			return
		}
		g.nonce = "" // a refreshed ID token carries no nonce (Core 12.2)
	}
	if proof != nil {
		g.jkt = proof.jkt
	}
	p.issueTokens(w, client, g)
}

// issueTokens answers the token endpoint with an ID token, an access token
// and, when offline_access was granted, a new refresh token.
func (p *Provider) issueTokens(w http.ResponseWriter, client Client, g grant) {
	now := p.now()
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
	access, ok := store(p, p.tokens, g)
	if !ok {
		tokenError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "too many outstanding tokens")
		return
	}
	tokenType := "Bearer"
	if g.jkt != "" {
		tokenType = "DPoP"
	}
	resp := map[string]any{
		"access_token": access,
		"token_type":   tokenType,
		"expires_in":   int(p.access.Seconds()),
		"id_token":     idToken,
		"scope":        g.scope,
	}
	if slices.Contains(strings.Fields(g.scope), "offline_access") {
		g.expires = now.Add(RefreshTokenLifetime)
		if resp["refresh_token"], ok = store(p, p.refresh, g); !ok {
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
		if local, _, ok := strings.Cut(g.user.Email, "@"); ok {
			c["preferred_username"] = local
		}
		if len(g.user.Groups) > 0 {
			c["groups"] = g.user.Groups
		}
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
	if p.nonces {
		w.Header().Set("DPoP-Nonce", p.dpopNonce())
	}
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	g, ok := p.take(p.tokens, token, false)
	if strings.EqualFold(scheme, "DPoP") {
		if !ok || g.jkt == "" {
			p.dpopChallenge(w, "invalid_token", "the access token is unknown, expired, or not DPoP-bound")
			return
		}
		// The proof names this request and this token (RFC 9449 7.1).
		proof, e := p.checkProof(r.Header.Values("DPoP"), r.Method, p.endpoint("/userinfo"), token)
		if e != nil {
			p.dpopChallenge(w, e.code, e.desc)
			return
		}
		if proof.jkt != g.jkt {
			p.dpopChallenge(w, "invalid_dpop_proof", "the DPoP proof is not signed with the key the access token is bound to")
			return
		}
		if problem, code := p.spend(clientAuth{}, proof); problem != "" {
			p.dpopChallenge(w, code, problem)
			return
		}
		writeJSON(w, http.StatusOK, p.claims(g))
		return
	}
	if !strings.EqualFold(scheme, "Bearer") || !ok {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token"})
		return
	}
	// A bound token sent as a bearer token could have been stolen: that
	// is what binding it prevents (RFC 9449 7.2).
	if g.jkt != "" {
		p.dpopChallenge(w, "invalid_token", "the access token is DPoP-bound: send it as Authorization: DPoP, with a DPoP proof")
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
	now := p.now()
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

// pageCSP is the policy of the provider's own pages: no script at all. It
// has no form-action: Chromium applies form-action to every redirect after
// a form is posted, so 'self' would block the sign-in's redirect to a
// client on another origin, and so would any list of ours block where the
// client's callback redirects next.
const pageCSP = "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'"

func (p *Provider) page(w http.ResponseWriter, status int, name string, data any) {
	switch d := data.(type) {
	case signInPage:
		d.Style = p.base + "/style.css"
		data = d
	case errorPage:
		d.Style = p.base + "/style.css"
		data = d
	}
	p.render(w, status, name, data, pageCSP)
}

func (p *Provider) render(w http.ResponseWriter, status int, name string, data any, csp string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", csp)
	if h.Get("Referrer-Policy") == "" {
		h.Set("Referrer-Policy", "no-referrer")
	}
	w.WriteHeader(status)
	pages.ExecuteTemplate(w, name+".html", data)
}

// formPostScript submits the form_post page's form; the page's policy
// allows this script alone, by its hash.
const formPostScript = "document.forms[0].submit();"

var formPostScriptHash = func() string {
	sum := sha256.Sum256([]byte(formPostScript))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}()

type formPostPage struct {
	Action string
	Fields []formField
	Script template.JS
	Style  string
}

type formField struct{ Name, Value string }

// formPost answers with a page whose form posts params to the client's
// redirect URI (OAuth 2.0 Form Post Response Mode), submitted by a script
// or, without script, by the user's Continue.
func (p *Provider) formPost(w http.ResponseWriter, redirectURI string, params url.Values) {
	d := formPostPage{Action: redirectURI, Script: formPostScript, Style: p.base + "/style.css"}
	for _, k := range slices.Sorted(maps.Keys(params)) {
		d.Fields = append(d.Fields, formField{k, params.Get(k)})
	}
	// No form-action, as for pageCSP: the client's callback may redirect
	// anywhere once it has the code.
	csp := "default-src 'none'; script-src " + formPostScriptHash + "; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'"
	// The origin, not no-referrer: under no-referrer browsers post with
	// Origin: null, hiding from the client where the response came from.
	w.Header().Set("Referrer-Policy", "origin")
	p.render(w, http.StatusOK, "formpost", d, csp)
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
