// Package app is the sign-in web application: it wires configuration,
// sessions, the login package and, when no provider is configured, the
// embedded development provider, and renders the pages.
package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/gologin/gologin/devidp"
	"github.com/gologin/gologin/internal/config"
	"github.com/gologin/gologin/internal/gateway"
	"github.com/gologin/gologin/login"
	"github.com/gologin/gologin/sessionstore"
	"github.com/gologin/gologin/sessionstore/storeurl"
)

// App is the web application; it is an http.Handler.
type App struct {
	cfg       config.Config
	log       *slog.Logger
	store     sessionstore.Store
	sessions  *scs.SessionManager
	auth      *login.Auth      // the main provider's
	providers login.Providers  // auth, then OIDC_PROVIDERS'
	devidp    *pendingProvider // nil unless the development provider runs
	gateway   *gateway.Gateway // nil unless the app protects an upstream
	metrics   *metrics
	mux       *http.ServeMux // routes outside the session
	pages     *http.ServeMux // routes inside the session
	handler   http.Handler
	stop      context.CancelFunc
}

// New builds the app for cfg. Close releases what it opened.
func New(cfg config.Config, log *slog.Logger) (*App, error) {
	m := newMetrics()
	store, err := storeurl.Open(cfg.SessionStore, storeurl.Options{OnError: m.onStoreError, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("SESSION_STORE=%s: %w", storeurl.Describe(cfg.SessionStore), err)
	}
	m.reg.MustRegister(newLiveSessions(store))
	log = slog.New(requestIDLogs{log.Handler()})
	a := &App{cfg: cfg, log: log, store: store, metrics: m}

	sm := scs.New()
	sm.Store = store
	sm.Codec = sessionstore.Codec{}
	sm.Lifetime = cfg.SessionMaxAge
	sm.Cookie.Name = "session"
	if cfg.Gateway != nil {
		// Not the upstream's: "session" is the name many frameworks use.
		sm.Cookie.Name = "gateway_session"
	}
	if cfg.Secure {
		// __Host- cookies are https-only, host-only and path=/ (RFC 6265bis).
		sm.Cookie.Name = "__Host-" + sm.Cookie.Name
	}
	sm.Cookie.HttpOnly = true
	sm.Cookie.SameSite = http.SameSiteLaxMode
	sm.Cookie.Secure = cfg.Secure
	sm.Cookie.Path = "/"
	sm.ErrorFunc = func(w http.ResponseWriter, r *http.Request, err error) {
		// The session may not have loaded: render without it.
		r = r.WithContext(context.WithValue(r.Context(), noSessionKey, true))
		if errors.Is(err, sessionstore.ErrUnreadable) {
			a.dropUnreadableSession(w, r, err)
			return
		}
		a.renderError(w, r, &pageError{Status: http.StatusServiceUnavailable, Title: "Sessions unavailable",
			Message: "We cannot reach our session storage right now. Please try again in a moment.", Err: err})
	}
	a.sessions = sm

	// What every provider's sign-in shares: the sessions, the routes'
	// prefix, the limits and where failures and events go.
	common := login.Config{
		PostLogoutRedirectURL: cfg.HomeURL(), Scopes: cfg.Scopes, LoginPath: cfg.Prefix() + "/login",
		ResponseMode: cfg.ResponseMode, UsePAR: cfg.UsePAR, DPoP: cfg.DPoP,
		Sessions: sm, Store: store,
		IdleTimeout: cfg.SessionIdle, Timeout: cfg.ProviderTimeout, ClockSkew: cfg.ClockSkew,
		Logger: log, ErrorHandler: a.renderError, OnEvent: m.onEvent,
		// No client Timeout: the login package bounds each call by Timeout
		// through its context, which costs no goroutine per call.
		HTTPClient: &http.Client{Transport: m.instrumentProvider(providerTransport())},
	}
	if len(cfg.MoreProviders) > 0 {
		// Guests choose a provider first.
		common.LoginPath = cfg.Prefix() + "/sign_in"
	}

	// The app only maps settings: Auth0's quirks are login.Auth0's.
	lc := login.Config{Issuer: cfg.Issuer}
	if cfg.Provider == config.Auth0 {
		lc = login.Auth0(cfg.Auth0Domain, cfg.Auth0Audience)
	}
	lc.ClientID, lc.ClientSecret = cfg.ClientID, cfg.ClientSecret
	lc.ClientKey, lc.ClientKeyID = cfg.ClientKey, cfg.ClientKeyID
	switch cfg.AssertionAudience {
	case "issuer":
		lc.ClientAssertionAudience = lc.Issuer
	case "token_endpoint":
		lc.ClientAssertionAudience = "" // the endpoint each goes to
	}
	withCommon(&lc, common)
	lc.RedirectURL = cfg.CallbackURL()
	if len(cfg.MoreProviders) > 0 {
		// Named by its kind, so that headers and rules can tell its users
		// from the others'.
		lc.Name = string(cfg.Provider)
	}
	if cfg.Provider == config.Dev {
		if err := a.startDevProvider(&lc); err != nil {
			store.Close()
			return nil, err
		}
	}
	if a.auth, err = login.New(lc); err != nil {
		store.Close()
		return nil, err
	}
	auths := []*login.Auth{a.auth}
	for _, np := range cfg.MoreProviders {
		mc := login.Config{Name: np.Name, Issuer: np.Issuer, ClientID: np.ClientID, ClientSecret: np.ClientSecret}
		withCommon(&mc, common)
		// A redirect URI of its own, a defence against mix-ups where the
		// provider does not send iss with its responses (RFC 9207).
		mc.RedirectURL = cfg.CallbackURL() + "/" + np.Name
		auth, err := login.New(mc)
		if err != nil {
			store.Close()
			return nil, fmt.Errorf("provider %s: %w", np.Name, err)
		}
		auths = append(auths, auth)
	}
	if a.providers, err = login.NewProviders(auths...); err != nil {
		store.Close()
		return nil, err
	}
	if cfg.Gateway != nil {
		if err := a.newGateway(); err != nil {
			store.Close()
			return nil, err
		}
	}
	a.handler = a.routes()

	ctx, stop := context.WithCancel(context.Background())
	a.stop = stop
	for _, p := range a.providers {
		go a.discoverUntilReady(ctx, p)
	}
	return a, nil
}

// withCommon fills the settings of lc that every provider shares.
func withCommon(lc *login.Config, common login.Config) {
	lc.PostLogoutRedirectURL, lc.Scopes, lc.LoginPath = common.PostLogoutRedirectURL, common.Scopes, common.LoginPath
	lc.ResponseMode, lc.UsePAR, lc.DPoP = common.ResponseMode, common.UsePAR, common.DPoP
	lc.Sessions, lc.Store = common.Sessions, common.Store
	lc.IdleTimeout, lc.Timeout, lc.ClockSkew = common.IdleTimeout, common.Timeout, common.ClockSkew
	lc.Logger, lc.ErrorHandler, lc.OnEvent, lc.HTTPClient = common.Logger, common.ErrorHandler, common.OnEvent, common.HTTPClient
}

// dropUnreadableSession ends a session whose record cannot be decoded
// (damaged, or written by a later version of the app, as after a
// rollback). Waiting would not make it readable: the record is deleted,
// the cookie cleared, and a page request sent back to the same page,
// which it now gets as a guest.
func (a *App) dropUnreadableSession(w http.ResponseWriter, r *http.Request, err error) {
	a.log.WarnContext(r.Context(), "unreadable session record: starting a new session", "error", err)
	if c, cerr := r.Cookie(a.sessions.Cookie.Name); cerr == nil {
		if derr := a.store.DeleteCtx(r.Context(), c.Value); derr != nil {
			a.log.ErrorContext(r.Context(), "deleting an unreadable session record failed", "error", derr)
		}
	}
	http.SetCookie(w, &http.Cookie{Name: a.sessions.Cookie.Name, Path: a.sessions.Cookie.Path, MaxAge: -1,
		HttpOnly: true, Secure: a.sessions.Cookie.Secure, SameSite: a.sessions.Cookie.SameSite})
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		back, ok := login.SafeReturnTo(r.URL.RequestURI())
		if !ok {
			back = "/"
		}
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	a.renderError(w, r, &pageError{Status: http.StatusBadRequest, Title: "Session ended",
		Message: "Your session could not be read, so it has ended. Please sign in again.", Retry: true, Err: err})
}

// providerTransport keeps enough idle connections to the provider for
// concurrent sign-ins: the default keeps two, so under load most token
// exchanges would open a new connection (and a TLS handshake).
func providerTransport() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	return t
}

// devAccessTokenLifetime is how long the development provider's access
// tokens last.
const devAccessTokenLifetime = 5 * time.Minute

// startDevProvider creates the embedded development provider under
// /devidp and points lc at it.
func (a *App) startDevProvider(lc *login.Config) error {
	lc.Issuer = a.cfg.BaseURL + a.cfg.Prefix() + "/devidp"
	lc.ClientID = "webapp"
	lc.ClientSecret = rand.Text()
	cfg := devidp.Config{
		Issuer: lc.Issuer,
		Clients: []devidp.Client{{
			ID:                     lc.ClientID,
			Secret:                 lc.ClientSecret,
			RedirectURIs:           []string{lc.RedirectURL},
			PostLogoutRedirectURIs: []string{lc.PostLogoutRedirectURL},
			BackchannelLogoutURI:   a.cfg.BaseURL + a.cfg.Prefix() + "/backchannel-logout",
		}},
		// Short-lived, so that token refresh is exercised in development.
		AccessTokenLifetime: devAccessTokenLifetime,
		// The app is in this process too: post back-channel logouts to it
		// directly.
		HTTPClient: &http.Client{Transport: handlerTransport{a}, Timeout: a.cfg.ProviderTimeout},
	}
	p := &pendingProvider{ready: make(chan struct{})}
	keyFile, persisted := devKeyFile(a.cfg.SessionStore)
	if persisted {
		key, err := devidp.LoadKey(keyFile)
		switch {
		case err == nil:
			cfg.Key = key
			if err := p.start(cfg, nil); err != nil {
				return err
			}
		case !errors.Is(err, fs.ErrNotExist):
			return err
		}
	}
	if cfg.Key == nil {
		// A new 2048-bit RSA key takes 50-300 ms: the app answers (and
		// /healthz says it is up) meanwhile, and the provider's pages
		// wait for the key.
		go func() {
			var err error
			if persisted {
				cfg.Key, err = devidp.LoadOrCreateKey(keyFile)
			} else {
				cfg.Key, err = devidp.GenerateKey()
			}
			if err := p.start(cfg, err); err != nil {
				a.log.Error("the development provider cannot start: sign-ins will fail", "error", err)
			}
		}()
	}
	a.devidp = p
	// The provider runs in this process, so the app calls it directly rather
	// than over the network: that works whatever address APP_BASE_URL names.
	lc.HTTPClient = &http.Client{Transport: a.metrics.instrumentProvider(handlerTransport{p})}
	a.log.Warn("no OpenID provider configured: using the embedded development provider; set AUTH0_DOMAIN or OIDC_ISSUER for real users",
		"issuer", lc.Issuer)
	return nil
}

// devKeyFile is where the development provider's signing key is kept:
// beside the SQLite file, so restarts are fast and earlier tokens stay
// verifiable. With other stores the key is new each start.
func devKeyFile(store string) (path string, persisted bool) {
	l, _ := storeurl.Parse(store) // valid: config.Load checked it
	db, ok := l.SQLitePath()
	if !ok {
		return "", false
	}
	return filepath.Join(filepath.Dir(db), "devidp-key.pem"), true
}

// pendingProvider is the development provider once it has a key; until
// then its requests wait.
type pendingProvider struct {
	ready chan struct{}
	p     *devidp.Provider
	err   error
}

// start creates the provider with cfg, unless the key could not be had
// (keyErr), and lets the waiting requests through.
func (p *pendingProvider) start(cfg devidp.Config, keyErr error) error {
	p.err = keyErr
	if p.err == nil {
		p.p, p.err = devidp.New(cfg)
	}
	close(p.ready)
	return p.err
}

func (p *pendingProvider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case <-p.ready:
	case <-r.Context().Done():
		http.Error(w, "development provider not ready", http.StatusServiceUnavailable)
		return
	}
	if p.err != nil {
		http.Error(w, "development provider unavailable", http.StatusServiceUnavailable)
		return
	}
	p.p.ServeHTTP(w, r)
}

// handlerTransport is an http.RoundTripper that answers with an in-process
// handler.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// discoverUntilReady fetches the provider's discovery document in the
// background so the first login is fast, retrying until it succeeds.
func (a *App) discoverUntilReady(ctx context.Context, p *login.Auth) {
	for delay := time.Second; ; delay = min(2*delay, 30*time.Second) {
		err := p.Discover(ctx)
		if err == nil {
			a.log.Info("OpenID provider discovered", "issuer", p.Issuer())
			return
		}
		if ctx.Err() != nil {
			return // the app is closing
		}
		a.log.Warn("OpenID provider unavailable; will retry", "issuer", p.Issuer(), "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// ServeHTTP implements http.Handler.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.handler.ServeHTTP(w, r) }

// Discover fetches every provider's discovery document and keys now.
func (a *App) Discover(ctx context.Context) error {
	for _, p := range a.providers {
		if err := p.Discover(ctx); err != nil {
			if p.Name() != "" {
				return fmt.Errorf("provider %s: %w", p.Name(), err)
			}
			return err
		}
	}
	return nil
}

// PingStore reports whether the session store answers.
func (a *App) PingStore(ctx context.Context) error { return a.store.Ping(ctx) }

// Issuer is the provider's issuer URL.
func (a *App) Issuer() string { return a.auth.Issuer() }

// MetricsHandler is the handler of the metrics listener: the app's metrics
// in Prometheus text format at GET /metrics, 404 elsewhere. The app's own
// handler never serves them. Every response carries Cache-Control:
// no-store, so that no cache between the scraper and the app keeps stale
// figures or shows them to others.
func (a *App) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.metrics.handler())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		mux.ServeHTTP(w, r)
	})
}

// Close stops background work and closes the session store.
func (a *App) Close() error {
	a.stop()
	if a.devidp != nil {
		// A first start's key may still be in the making: let it be
		// written (or fail) before the caller removes its directory.
		<-a.devidp.ready
	}
	return a.store.Close()
}

// Describe says, for the startup log, what the app signs in with.
func (a *App) Describe() string {
	providers := fmt.Sprintf("provider %s (%s)", a.cfg.Provider, a.auth.Issuer())
	for _, p := range a.providers[1:] {
		providers += fmt.Sprintf(", %s (%s)", p.Name(), p.Issuer())
	}
	return providers + ", sessions " + storeurl.Describe(a.cfg.SessionStore)
}
