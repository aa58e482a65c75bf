// Package login signs users in to a Go web application with an OpenID
// Connect provider (Auth0, Okta, Keycloak, Google, ...), using the
// authorization code flow with PKCE (RFC 7636), and keeps them signed in
// with server-side scs sessions.
//
// It provides the handlers for /login, /callback and /logout, a middleware
// that requires a signed-in user, and a way to read that user. It knows
// nothing of the application's pages: failures go to Config.ErrorHandler as
// an *Error that carries a status and a message fit for users.
package login

import (
	"context"
	"crypto"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"

	"github.com/gologin/gologin/sessionstore"
)

// LogoutStyle says how the provider ends its own session.
type LogoutStyle int

const (
	// EndSessionLogout uses the provider's end_session_endpoint (OpenID
	// Connect RP-Initiated Logout 1.0) when discovery advertises one.
	EndSessionLogout LogoutStyle = iota
	// Auth0Logout uses Auth0's https://DOMAIN/v2/logout.
	Auth0Logout
)

// CSRFField is the form field that carries the session's CSRF token.
const CSRFField = "csrf_token"

// Config configures an Auth.
type Config struct {
	// Issuer is the provider's issuer URL, exactly as its discovery document
	// and ID tokens spell it (Auth0's ends with a slash).
	Issuer       string
	ClientID     string
	ClientSecret string
	// RedirectURL is this application's callback URL, registered with the provider.
	RedirectURL string
	// Scopes to request; must contain "openid". Default: openid profile email.
	Scopes []string
	// AuthParams are added to every authorization request (e.g. Auth0's audience).
	AuthParams url.Values
	// DPoP binds each session's tokens to a key of its own (RFC 9449): an
	// ES256 key made at sign-in, kept server-side with the session's
	// tokens and deleted with them, proves possession on every token and
	// refresh request and on every call of Client. A provider that answers
	// with Bearer tokens anyway gets Bearer calls. Without it, DPoP is used
	// when the provider requires it, refusing a code redemption without a
	// proof (invalid_dpop_proof).
	DPoP bool
	// UsePAR makes every sign-in push its authorization request (RFC 9126)
	// and requires the provider to offer a PAR endpoint. Without it, the
	// request is pushed whenever discovery advertises one.
	UsePAR bool
	// ResponseMode is how the provider returns the authorization response:
	// "query" (the default), a redirect whose URL carries the code, or
	// "form_post" (OAuth 2.0 Form Post Response Mode), a form the browser
	// posts to the callback, which keeps the code out of URLs and logs.
	// With form_post, serve Callback for POST and exempt it from
	// cross-origin protection: the provider's page posts it, and the state
	// bound to the browser's attempt cookie is the proof. The attempt
	// cookie is then SameSite=None and Secure, so that it comes with the
	// provider's post.
	ResponseMode string
	// PostLogoutRedirectURL is where the provider sends the browser after logout.
	PostLogoutRedirectURL string
	// ProviderLogout is how Logout ends the provider's own session too.
	// Default: EndSessionLogout; Auth0 sets Auth0Logout.
	ProviderLogout LogoutStyle
	// TokenAuthMethod is how a client with a ClientSecret authenticates at
	// the token endpoint: ClientSecretBasic, ClientSecretPost or
	// ClientSecretJWT, if the provider offers it. Default: the first of them
	// that discovery advertises (client_secret_basic when it says nothing,
	// RFC 8414 2).
	TokenAuthMethod string
	// ClientKey, if set, authenticates the client with private_key_jwt
	// (RFC 7523, OpenID Connect Core 9) instead of its secret: every
	// request to the token endpoint carries a fresh assertion it signs. RSA
	// (2048 bits or more) or ECDSA; register PublicJWKS with the provider.
	ClientKey crypto.Signer
	// ClientKeyID is ClientKey's key ID as registered. Default: its RFC 7638
	// thumbprint.
	ClientKeyID string
	// ClientAssertionAudience is the aud of client assertions. Default: the
	// URL of the endpoint each is sent to (the token endpoint). login.Auth0
	// sets the issuer, which Auth0 asks for.
	ClientAssertionAudience string
	// LoginPath is where RequireUser sends guests. Default: /login.
	LoginPath string
	// Name tells this provider's users from those of other Auths that
	// share Sessions and Store, when an app offers several providers: give
	// each a distinct Name (one may keep the empty one). The user's
	// Provider records it; back-channel logout and LogoutEverywhere end
	// only this provider's sessions, and the token methods and Logout
	// refuse another provider's users (see Providers.For).
	Name string

	// Sessions keeps the signed-in users; its Codec must be
	// sessionstore.Codec, so its store can find sessions by sid and sub.
	Sessions *scs.SessionManager
	// Store is Sessions' store (the default, when it is a sessionstore.Store).
	// It also holds the user's tokens, finds sessions for back-channel
	// logout and signing out of all devices, and locks token refreshes
	// across instances.
	Store sessionstore.Store
	// AttemptKey, 16, 24 or 32 bytes, encrypts and authenticates the
	// cookies that carry login attempts between Login and Callback; every
	// instance of an app must share it. Default: derived (HKDF-SHA256) from
	// ClientSecret, or else from ClientKey, or, without either, random per
	// process, so that a login completes only on the instance that
	// started it.
	AttemptKey []byte
	// IdleTimeout signs out a user who made no request for this long; 0
	// means never. The absolute limit is Sessions.Lifetime. Requests count
	// as activity when they pass through ExpireIdle, or else when they call
	// User (as RequireUser does).
	IdleTimeout time.Duration

	// HTTPClient calls the provider. Default: http.DefaultClient's
	// settings. Each call the package makes is bounded by Timeout through
	// its context, so the client needs no Timeout of its own; the client
	// that Client returns gets Timeout when this one has none.
	HTTPClient *http.Client
	// Timeout bounds each call to the provider. Default: 10s.
	Timeout time.Duration
	// ClockSkew is the leeway on ID token exp and iat. Default: 1m.
	ClockSkew time.Duration
	// Now returns the current time. Default: time.Now.
	Now func() time.Time
	// Logger receives operational warnings. Default: slog.Default().
	Logger *slog.Logger
	// OnEvent, if set, is told of sign-ins, sign-outs and token refreshes,
	// for metrics. It must not block.
	OnEvent func(context.Context, Event)
	// ErrorHandler answers failed requests; err is usually an *Error.
	// Default: a plain-text response.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)
}

// EventKind names something that happens in sign-in flows.
type EventKind string

// Events reported to Config.OnEvent.
const (
	LoginStarted      EventKind = "login_started"
	LoginSucceeded    EventKind = "login_succeeded"
	LoginFailed       EventKind = "login_failed" // Event.Reason says why
	Logout            EventKind = "logout"
	BackchannelLogout EventKind = "backchannel_logout"
	TokenRefreshed    EventKind = "token_refreshed"
	RefreshFailed     EventKind = "refresh_failed"
)

// Event is something that happened, for metrics.
type Event struct {
	Kind   EventKind
	Reason string
}

// Auth is a relying party of one provider. Its methods are safe for
// concurrent use.
type Auth struct {
	cfg        Config
	attempts   cipher.AEAD // seals login attempt cookies
	secure     bool        // RedirectURL is https: attempt cookies are Secure
	formPost   bool        // ResponseMode is form_post
	provider   lazyProvider
	refreshes  singleflight.Group // by session token
	dpopNonces dpopNonces         // the provider's and APIs' latest DPoP nonces
	peers      map[string]bool    // the Names of its Providers (NewProviders)
}

// New checks cfg and returns an Auth. It does not contact the provider:
// discovery happens on first need and is retried until it succeeds.
func New(cfg Config) (*Auth, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" || cfg.RedirectURL == "" || cfg.Sessions == nil {
		return nil, errors.New("login: Issuer, ClientID, RedirectURL and Sessions are required")
	}
	if cfg.Store == nil {
		cfg.Store, _ = cfg.Sessions.Store.(sessionstore.Store)
	}
	if cfg.Store == nil {
		return nil, errors.New("login: Store is required: a sessionstore.Store, usually the one Sessions uses")
	}
	// Without it, stores cannot index sessions by sid and sub, and values
	// such as the user cannot be stored.
	if _, ok := cfg.Sessions.Codec.(sessionstore.Codec); !ok {
		return nil, errors.New("login: Sessions.Codec must be sessionstore.Codec{}")
	}
	if cfg.Scopes == nil {
		cfg.Scopes = []string{oidc.ScopeOpenID, "profile", "email"}
	}
	if !slices.Contains(cfg.Scopes, oidc.ScopeOpenID) {
		return nil, errors.New(`login: Scopes must contain "openid"`)
	}
	if err := checkAuthParams(cfg.AuthParams); err != nil {
		return nil, err
	}
	if m := cfg.TokenAuthMethod; m != "" && m != ClientSecretBasic && m != ClientSecretPost && m != ClientSecretJWT {
		return nil, fmt.Errorf("login: unsupported TokenAuthMethod %q", m)
	}
	if cfg.ClientKey != nil {
		// Signing at startup shows a key that cannot sign (a KMS signer
		// go-jose does not take, say) now, not at every sign-in.
		if _, err := newAssertionSigner(&cfg, PrivateKeyJWT); err != nil {
			return nil, err
		}
	}
	if cfg.TokenAuthMethod == ClientSecretJWT && len(cfg.ClientSecret) < 32 {
		return nil, errors.New("login: client_secret_jwt needs a ClientSecret of 32 bytes or more (RFC 7518 3.2)")
	}
	if m := cfg.ResponseMode; m != "" && m != "query" && m != "form_post" {
		return nil, fmt.Errorf("login: unsupported ResponseMode %q: want query or form_post", m)
	}
	if cfg.LoginPath == "" {
		cfg.LoginPath = "/login"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.ClockSkew <= 0 {
		cfg.ClockSkew = time.Minute
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ErrorHandler == nil {
		cfg.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
			e := asError(err)
			http.Error(w, e.Title+": "+e.Message, e.Status)
		}
	}
	attempts, shared, err := newAttemptCipher(&cfg)
	if err != nil {
		return nil, fmt.Errorf("login: AttemptKey: %w", err)
	}
	if !shared {
		cfg.Logger.Warn("login: no AttemptKey, ClientSecret or ClientKey: login attempts are sealed with a key of this process, " +
			"so with several instances a login completes only on the one that started it; set Config.AttemptKey")
	}
	redirect, err := url.Parse(cfg.RedirectURL)
	if err != nil {
		return nil, fmt.Errorf("login: RedirectURL: %w", err)
	}
	a := &Auth{cfg: cfg, attempts: attempts, secure: redirect.Scheme == "https", formPost: cfg.ResponseMode == "form_post"}
	a.provider.a = a
	return a, nil
}

// Discover fetches the provider's discovery document and keys now, if that
// has not happened yet. Handlers do this on demand; call it at startup to
// be ready early, or to check a configuration.
func (a *Auth) Discover(ctx context.Context) error {
	_, err := a.provider.get(ctx)
	return err
}

// Issuer returns the provider's issuer URL.
func (a *Auth) Issuer() string { return a.cfg.Issuer }

// ProviderStatus reports whether discovery has succeeded and, if not, the
// last error.
func (a *Auth) ProviderStatus() (ready bool, lastErr error) {
	return a.provider.status()
}

// Login starts a sign-in: it sets a cookie that carries the login attempt
// (encrypted, for ten minutes) and redirects to the provider's
// authorization endpoint. The optional returnTo query parameter, a local
// path, is where the browser goes after signing in.
func (a *Auth) Login(w http.ResponseWriter, r *http.Request) {
	a.login(w, r, nil)
}

// reservedParams are set by the login itself and cannot be overridden.
var reservedParams = []string{"client_id", "redirect_uri", "response_type", "scope", "state", "nonce",
	"code_challenge", "code_challenge_method", "response_mode"}

// LoginWith returns a Login handler that adds params to its authorization
// requests, after Config.AuthParams: prompt, login_hint, max_age, audience,
// organization, ui_locales... With max_age, the ID token's auth_time must
// show a sign-in within that many seconds. Parameters the flow itself sets
// (state, nonce, redirect_uri...) are refused.
func (a *Auth) LoginWith(params url.Values) (http.HandlerFunc, error) {
	if err := checkAuthParams(params); err != nil {
		return nil, err
	}
	return func(w http.ResponseWriter, r *http.Request) { a.login(w, r, params) }, nil
}

// checkAuthParams refuses parameters the flow sets itself and a max_age
// that is not a number of seconds.
func checkAuthParams(params url.Values) error {
	for k := range params {
		if slices.Contains(reservedParams, k) {
			return fmt.Errorf("login: authorization parameter %q is set by the login flow itself", k)
		}
	}
	if v := params.Get("max_age"); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 0 {
			return fmt.Errorf("login: max_age %q is not a number of seconds", v)
		}
	}
	return nil
}

func (a *Auth) login(w http.ResponseWriter, r *http.Request, params url.Values) {
	d, err := a.provider.get(r.Context())
	if err != nil {
		a.fail(w, r, "provider_unavailable", err)
		return
	}
	returnTo, ok := SafeReturnTo(r.URL.Query().Get("returnTo"))
	if !ok {
		returnTo = "/"
	}
	ctx := r.Context()
	state := rand.Text()
	merged := url.Values{}
	for _, ps := range []url.Values{a.cfg.AuthParams, params} {
		for k, vs := range ps {
			merged[k] = vs
		}
	}
	tx := transaction{Nonce: rand.Text(), Verifier: oauth2.GenerateVerifier(), ReturnTo: returnTo, Started: a.cfg.Now()}
	if v := merged.Get("max_age"); v != "" {
		tx.MaxAge, _ = strconv.Atoi(v)
		tx.CheckMaxAge = true
	}
	if err := a.saveTransaction(w, r, state, tx); err != nil {
		a.fail(w, r, "internal", err)
		return
	}
	opts := []oauth2.AuthCodeOption{oidc.Nonce(tx.Nonce), oauth2.S256ChallengeOption(tx.Verifier)}
	if a.formPost {
		opts = append(opts, oauth2.SetAuthURLParam("response_mode", "form_post"))
	}
	for k, vs := range merged {
		for _, v := range vs {
			opts = append(opts, oauth2.SetAuthURLParam(k, v))
		}
	}
	target := d.oauth.AuthCodeURL(state, opts...)
	if d.parURL != "" {
		if target, err = a.pushAuthorization(ctx, d, target); err != nil {
			a.fail(w, r, "par_failed", err)
			return
		}
	}
	a.emit(ctx, Event{Kind: LoginStarted})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusFound)
}

// Callback finishes a sign-in (OpenID Connect Core 3.1.2.5), from a GET or,
// with ResponseMode form_post, a POST: it checks the
// state against this browser's login attempt cookies, redeems the code with the
// attempt's PKCE verifier, validates the ID token, and stores the user in the
// session under a new session ID.
func (a *Auth) Callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sm := a.cfg.Sessions
	q := r.URL.Query()
	// Only the response mode asked for: a response the other way was not
	// the provider's answer to our request.
	if a.formPost != (r.Method == http.MethodPost) {
		a.callbackFail(w, r, NewError("wrong_response_mode", nil))
		return
	}
	if a.formPost {
		// A posted response is a few hundred bytes: bound what is read.
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			a.callbackFail(w, r, NewError("missing_state", err))
			return
		}
		q = r.PostForm
	}
	state := q.Get("state")
	if state == "" {
		a.callbackFail(w, r, NewError("missing_state", nil))
		return
	}
	tx, ok := a.takeTransaction(w, r, state, a.cfg.Now())
	if !ok {
		a.callbackFail(w, r, NewError("invalid_state", nil))
		return
	}
	d, err := a.provider.get(ctx)
	if err != nil {
		a.callbackFail(w, r, NewError("provider_unavailable", err))
		return
	}
	// RFC 9207: a provider that names itself must be ours (mix-up defence),
	// and one that says it always does must have; errors too, so that
	// another provider's cannot pass for ours.
	if iss := q.Get("iss"); (iss != "" || d.sendsIss) && iss != a.cfg.Issuer {
		a.callbackFail(w, r, NewError("issuer_mismatch", nil))
		return
	}
	if code := q.Get("error"); code != "" {
		a.callbackFail(w, r, providerError(code, q.Get("error_description")))
		return
	}
	code := q.Get("code")
	if code == "" {
		a.callbackFail(w, r, NewError("missing_code", nil))
		return
	}
	tctx, cancel := context.WithTimeout(a.tokenContext(ctx, d), a.cfg.Timeout)
	defer cancel()
	tok, dpopKey, err := a.redeem(tctx, d, code, tx.Verifier, a.cfg.DPoP)
	var re *oauth2.RetrieveError
	if err != nil && !a.cfg.DPoP && errors.As(err, &re) && re.ErrorCode == "invalid_dpop_proof" {
		// The provider binds this client's tokens though DPoP is not
		// configured (RFC 9449 5): the same request, with a session key.
		tok, dpopKey, err = a.redeem(tctx, d, code, tx.Verifier, true)
	}
	if err != nil {
		a.exchangeFailed(w, r, err)
		return
	}
	toks := tokens{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, Expiry: tok.Expiry, TokenType: tok.TokenType}
	switch {
	case isDPoP(tok.TokenType):
		toks.DPoPKey = dpopKey
	case a.cfg.DPoP:
		a.cfg.Logger.WarnContext(ctx, "DPoP is configured, but the provider issued tokens of another type: they are not bound to a key",
			"token_type", tok.TokenType)
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		a.callbackFail(w, r, NewError("no_id_token", nil))
		return
	}
	idt, claims, err := a.verifyIDToken(tctx, d, rawID, tx)
	switch {
	case err == nil:
	case errors.Is(err, errKeysUnavailable) && (errors.Is(err, context.DeadlineExceeded) || isTimeout(err)):
		a.callbackFail(w, r, NewError("timeout", err))
		return
	case errors.Is(err, errKeysUnavailable):
		a.callbackFail(w, r, NewError("provider_failed", err))
		return
	default:
		a.callbackFail(w, r, NewError("invalid_id_token", err))
		return
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			a.callbackFail(w, r, NewError("invalid_id_token", err))
			return
		}
	}
	if needsUserinfo(claims) {
		if err := a.mergeUserinfo(ctx, d, claims, toks); err != nil {
			a.callbackFail(w, r, NewError("userinfo_mismatch", err))
			return
		}
	}
	user := newUser(claims, marshalClaims(claims))
	user.Provider = a.cfg.Name

	// A new session ID at sign-in defeats session fixation.
	if err := sm.RenewToken(ctx); err != nil {
		a.callbackFail(w, r, NewError("session_store", err))
		return
	}
	now := a.cfg.Now()
	sm.Put(ctx, sinceKey, now)
	a.touch(ctx, now)
	sm.Put(ctx, userKey, user)
	toks.IDToken = rawID
	sid, sub := a.indexKey(user.SID), a.indexKey(user.Subject)
	if err := a.saveTokens(ctx, sm.Token(ctx), toks, sid, sub, now.Add(sm.Lifetime)); err != nil {
		a.callbackFail(w, r, NewError("session_store", err))
		return
	}
	sm.Put(ctx, sessionstore.SubjectKey, sub)
	sm.Put(ctx, sessionstore.SIDKey, sid)
	sm.Put(ctx, csrfKey, rand.Text())
	a.emit(ctx, Event{Kind: LoginSucceeded})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, tx.ReturnTo, http.StatusSeeOther)
}

// redeem exchanges code for tokens, with a new session DPoP key (returned
// in PKCS #8 form) when dpop is set.
func (a *Auth) redeem(ctx context.Context, d *discovered, code, verifier string, dpop bool) (*oauth2.Token, []byte, error) {
	var der []byte
	if dpop {
		key, err := newSessionKey()
		if err != nil {
			return nil, nil, err
		}
		ctx, der = withDPoPKey(ctx, key.key), key.der
	}
	tok, err := d.oauth.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	return tok, der, err
}

// exchangeFailed maps a failed code redemption to a status: the provider
// refusing the code is the request's fault (400); the provider failing or
// timing out is a bad gateway (502/504).
func (a *Auth) exchangeFailed(w http.ResponseWriter, r *http.Request, err error) {
	var re *oauth2.RetrieveError
	switch {
	case errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 && re.ErrorCode != "":
		e := NewError("code_refused", err)
		e.Message = "The sign-in provider refused this sign-in (" + truncate(re.ErrorCode, 64) + ")." + tryAgain
		a.callbackFail(w, r, e)
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		a.callbackFail(w, r, NewError("timeout", err))
	default:
		a.callbackFail(w, r, NewError("provider_failed", err))
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// Logout ends the session: with a valid CSRF token in the form it destroys
// the session server-side and sends the browser to the provider's logout,
// which returns it to PostLogoutRedirectURL.
func (a *Auth) Logout(w http.ResponseWriter, r *http.Request) {
	a.logout(w, r, false)
}

// LogoutEverywhere is Logout that first deletes every session of the user,
// on every device, from Config.Store.
func (a *Auth) LogoutEverywhere(w http.ResponseWriter, r *http.Request) {
	a.logout(w, r, true)
}

func (a *Auth) logout(w http.ResponseWriter, r *http.Request, everywhere bool) {
	ctx := r.Context()
	if !a.ValidCSRF(r) {
		a.fail(w, r, "logout_unconfirmed", nil)
		return
	}
	if u, ok := a.User(r); ok && u.Provider != a.cfg.Name {
		a.fail(w, r, "other_provider", nil)
		return
	} else if ok && everywhere {
		n, err := a.cfg.Store.DeleteBySubject(ctx, a.indexKey(u.Subject))
		if err != nil {
			a.fail(w, r, "logout_failed", err)
			return
		}
		a.cfg.Logger.InfoContext(ctx, "signed out of all devices", "sessions_deleted", n)
	}
	token := a.cfg.Sessions.Token(ctx)
	rec, _, _ := a.loadTokens(ctx, token) // without them, logout goes on without id_token_hint
	if err := a.cfg.Store.DeleteCtx(ctx, tokensKeyOf(token)); err != nil {
		a.fail(w, r, "logout_failed", err)
		return
	}
	toks := rec.tokens
	if err := a.cfg.Sessions.Destroy(ctx); err != nil {
		a.fail(w, r, "logout_failed", err)
		return
	}
	a.emit(ctx, Event{Kind: Logout})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, a.logoutURL(ctx, toks.IDToken), http.StatusSeeOther)
}

// logoutURL is the provider's logout with a way back, or the way back alone
// when the provider has no logout endpoint or cannot be reached.
func (a *Auth) logoutURL(ctx context.Context, idToken string) string {
	back := a.cfg.PostLogoutRedirectURL
	if a.cfg.ProviderLogout == Auth0Logout {
		return strings.TrimSuffix(a.cfg.Issuer, "/") + "/v2/logout?" +
			url.Values{"client_id": {a.cfg.ClientID}, "returnTo": {back}}.Encode()
	}
	d, err := a.provider.get(ctx)
	if err != nil || d.endSession == "" {
		return back
	}
	q := url.Values{"client_id": {a.cfg.ClientID}, "post_logout_redirect_uri": {back}}
	if idToken != "" {
		q.Set("id_token_hint", idToken)
	}
	sep := "?"
	if strings.Contains(d.endSession, "?") {
		sep = "&"
	}
	return d.endSession + sep + q.Encode()
}

// idleRefresh is how stale the last-seen time may get before a request
// refreshes it: refreshing on every request would write the store on every
// page view.
const idleRefresh = time.Minute

// ExpireIdle is middleware, placed inside the session manager's
// LoadAndSave, that ends sign-ins idle for longer than Config.IdleTimeout or
// older than Sessions.Lifetime, and otherwise extends them up to that
// absolute limit, at most once a minute. Stores expire sessions too; this
// makes the limits hold whatever a store's clock says.
//
// Without it, User does the same on the requests that call it, so an app
// that only wraps its routes in LoadAndSave keeps active users signed in;
// with it, every request counts as activity, whether it asks for the user
// or not.
func (a *Auth) ExpireIdle(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Guests need no mark: User has nothing to check for them.
		if _, ok := a.cfg.Sessions.Get(r.Context(), userKey).(User); ok {
			if err := a.checkIdle(r.Context()); err != nil {
				a.fail(w, r, "session_unavailable", err)
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), idleCheckedKey{}, true))
		}
		next.ServeHTTP(w, r)
	})
}

// idleCheckedKey marks a request's context once ExpireIdle has checked it.
type idleCheckedKey struct{}

// checkIdle ends the signed-in session of ctx if it is idle or too old, or
// else records activity when the last record is over a minute old.
func (a *Auth) checkIdle(ctx context.Context) error {
	sm := a.cfg.Sessions
	now := a.cfg.Now()
	idle := now.Sub(sm.GetTime(ctx, seenKey))
	switch {
	case now.After(sm.GetTime(ctx, sinceKey).Add(sm.Lifetime)) || (a.cfg.IdleTimeout > 0 && idle > a.cfg.IdleTimeout):
		return sm.Destroy(ctx)
	case idle >= idleRefresh:
		a.touch(ctx, now)
	}
	return nil
}

// touch records activity at now and moves the session's expiry to the
// idle deadline, never past the absolute one.
func (a *Auth) touch(ctx context.Context, now time.Time) {
	sm := a.cfg.Sessions
	sm.Put(ctx, seenKey, now)
	deadline := sm.GetTime(ctx, sinceKey).Add(sm.Lifetime)
	if a.cfg.IdleTimeout > 0 {
		deadline = minTime(deadline, now.Add(a.cfg.IdleTimeout))
	}
	sm.SetDeadline(ctx, deadline)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// User returns the signed-in user of r's session. Outside ExpireIdle it
// also applies Config.IdleTimeout and Sessions.Lifetime, as ExpireIdle does.
func (a *Auth) User(r *http.Request) (User, bool) {
	ctx := r.Context()
	u, ok := a.cfg.Sessions.Get(ctx, userKey).(User)
	if ok && !a.sees(u.Provider) {
		return User{}, false
	}
	if !ok || ctx.Value(idleCheckedKey{}) != nil {
		return u, ok
	}
	if err := a.checkIdle(ctx); err != nil {
		a.cfg.Logger.ErrorContext(ctx, "ending an idle session failed", "error", err)
		return User{}, false
	}
	u, ok = a.cfg.Sessions.Get(ctx, userKey).(User)
	return u, ok && a.sees(u.Provider)
}

// CSRFToken returns the token that state-changing forms of a signed-in
// user must carry in the CSRFField field; empty for guests.
func (a *Auth) CSRFToken(r *http.Request) string {
	return a.cfg.Sessions.GetString(r.Context(), csrfKey)
}

// ValidCSRF reports whether r's form carries the session's CSRF token.
func (a *Auth) ValidCSRF(r *http.Request) bool {
	want := a.CSRFToken(r)
	got := r.PostFormValue(CSRFField)
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// RequireUser lets signed-in users through to next; it sends guests to
// sign in and come back (GET and HEAD), or answers 401.
func (a *Auth) RequireUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := a.User(r); ok {
			next.ServeHTTP(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			a.fail(w, r, "sign_in_required", nil)
			return
		}
		target := a.LoginURL(r.URL.RequestURI())
		// The redirect depends on the session: no cache may answer it
		// for another visitor, or for this one once signed in.
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, target, http.StatusFound)
	})
}

// fail answers r with the failure of reason.
func (a *Auth) fail(w http.ResponseWriter, r *http.Request, reason string, err error) {
	a.cfg.ErrorHandler(w, r, NewError(reason, err))
}

// callbackFail is fail for a sign-in that did not complete, reported to
// OnEvent too.
func (a *Auth) callbackFail(w http.ResponseWriter, r *http.Request, e *Error) {
	a.emit(r.Context(), Event{Kind: LoginFailed, Reason: e.Reason})
	a.cfg.ErrorHandler(w, r, e)
}

func (a *Auth) emit(ctx context.Context, e Event) {
	if a.cfg.OnEvent != nil {
		a.cfg.OnEvent(ctx, e)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// staticToken is a token source for one access token.
func staticToken(accessToken string) oauth2.TokenSource {
	return oauth2.StaticTokenSource(&oauth2.Token{AccessToken: accessToken, TokenType: "Bearer"})
}
