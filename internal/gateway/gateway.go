// Package gateway puts sign-in in front of a web app it did not write: a
// reverse proxy that sends guests through the login package's sign-in and
// passes signed-in requests on with the user's identity in headers, and
// forward-auth endpoints for proxies that ask it who may pass (nginx
// auth_request, Traefik ForwardAuth, Caddy forward_auth, Envoy ext_authz).
//
// The handlers run inside the session manager's LoadAndSave, like any page
// of a login.Auth.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"github.com/gologin/gologin/login"
)

// Config configures a Gateway.
type Config struct {
	// Upstream is the app the gateway protects.
	Upstream *url.URL
	// BaseURL is the gateway's public URL: where browsers reach it.
	BaseURL *url.URL
	// Prefix is the path under which the gateway's own routes are, such as
	// /_auth; the forward-auth handler for Envoy strips Prefix+"/envoy".
	Prefix string
	// Providers sign users in, the first by default; their session cookie
	// and login attempt cookies are never passed to the upstream.
	Providers login.Providers
	// Public requests are proxied without sign-in.
	Public []PublicPath
	// Rules decide which signed-in users may pass; none lets every one.
	Rules Rules
	// GroupsClaim names the claim that X-Forwarded-Groups is read from.
	// Default: groups.
	GroupsClaim string
	// PassAccessToken adds X-Forwarded-Access-Token, and PassAuthorization
	// Authorization: Bearer, with the user's access token, refreshed when
	// it is about to expire.
	PassAccessToken, PassAuthorization bool
	// PassHost sends the browser's Host to the upstream rather than the
	// upstream URL's.
	PassHost bool
	// TrustedProxies are the peers whose X-Forwarded-For, and whose
	// X-Forwarded-Uri/Host/Method on forward-auth requests, are believed.
	TrustedProxies []netip.Prefix
	// Transport reaches the upstream. Default: NewTransport(30 * time.Second).
	Transport http.RoundTripper
	Logger    *slog.Logger
	// ErrorHandler renders failures, as login.Config.ErrorHandler does;
	// they are *login.Error values.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)
}

// Gateway is the reverse proxy; it is an http.Handler.
type Gateway struct {
	cfg        Config
	proxy      *httputil.ReverseProxy
	identities identities
}

// New returns a Gateway for cfg.
func New(cfg Config) (*Gateway, error) {
	if cfg.Upstream == nil || cfg.Upstream.Host == "" || (cfg.Upstream.Scheme != "http" && cfg.Upstream.Scheme != "https") {
		return nil, errors.New("gateway: the upstream must be an http or https URL")
	}
	if len(cfg.Providers) == 0 || cfg.BaseURL == nil || cfg.ErrorHandler == nil {
		return nil, errors.New("gateway: Providers, BaseURL and ErrorHandler are required")
	}
	if cfg.GroupsClaim == "" {
		cfg.GroupsClaim = "groups"
	}
	if cfg.Transport == nil {
		cfg.Transport = NewTransport(30 * time.Second)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	g := &Gateway{cfg: cfg}
	g.proxy = &httputil.ReverseProxy{
		Rewrite:        g.rewrite,
		Transport:      cfg.Transport,
		ModifyResponse: g.modifyResponse,
		ErrorHandler:   g.upstreamFailed,
		BufferPool:     copyBuffers{},
		ErrorLog:       slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	return g, nil
}

// copyBuffers lends the proxy the buffers it copies bodies through:
// without them, every response allocates 32 KiB.
type copyBuffers struct{}

var copyBufferPool = sync.Pool{New: func() any { return new([32 << 10]byte) }}

func (copyBuffers) Get() []byte  { return copyBufferPool.Get().(*[32 << 10]byte)[:] }
func (copyBuffers) Put(b []byte) { copyBufferPool.Put((*[32 << 10]byte)(b)) }

// auth is the main provider, which sees every provider's users and sends
// guests to sign in.
func (g *Gateway) auth() *login.Auth { return g.cfg.Providers[0] }

// ServeHTTP proxies r: public paths at once, a signed-in user's requests
// if the rules allow them, and guests are sent to sign in.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if g.isPublic(r) {
		g.forward(w, r)
		return
	}
	u, ok := g.auth().User(r)
	if !ok {
		bound(w)
		g.signIn(w, r, r.URL.RequestURI(), navigation(r))
		return
	}
	k := g.know(u)
	if rule := g.cfg.Rules.Refusal(u, k.claims, r.Host, r.URL.Path); rule != nil {
		bound(w)
		g.forbid(w, r, u, rule)
		return
	}
	id, err := g.withToken(r, k.id)
	if err != nil {
		bound(w)
		g.cfg.ErrorHandler(w, r, err)
		return
	}
	g.forward(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
}

// forward proxies r to the upstream, each write and body read bounded.
func (g *Gateway) forward(w http.ResponseWriter, r *http.Request) {
	gw := newGuarded(w)
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = guardedBody{r.Body, gw.rc}
	}
	g.proxy.ServeHTTP(gw, r)
	// What the server writes after the handler (the end of a chunked
	// body) gets its own time, however long the stream was idle.
	gw.extendWrite()
}

// navigation reports whether r is a browser loading a page, which a
// redirect to sign in helps; scripts, WebSockets and API clients get a 401
// they can act on instead.
func navigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if r.Header.Get("Upgrade") != "" {
		return false
	}
	mode := r.Header.Get("Sec-Fetch-Mode")
	return mode == "" || mode == "navigate"
}

// signIn answers a guest: a redirect to sign in and come back to returnTo,
// or a 401.
func (g *Gateway) signIn(w http.ResponseWriter, r *http.Request, returnTo string, redirect bool) {
	w.Header().Set("Cache-Control", "no-store")
	if !redirect {
		g.cfg.ErrorHandler(w, r, login.NewError("sign_in_required", nil))
		return
	}
	http.Redirect(w, r, g.auth().LoginURL(returnTo), http.StatusFound)
}

// forbid answers a signed-in user whom a rule refuses.
func (g *Gateway) forbid(w http.ResponseWriter, r *http.Request, u login.User, rule *Rule) {
	g.cfg.Logger.InfoContext(r.Context(), "access refused by a rule", "sub", u.Subject, "host", r.Host,
		"path", r.URL.Path, "rule_line", rule.Line)
	w.Header().Set("Cache-Control", "no-store")
	g.cfg.ErrorHandler(w, r, login.NewError("forbidden", nil))
}

// upstreamFailed answers when the upstream cannot be reached or does not
// answer in time.
func (g *Gateway) upstreamFailed(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the browser went away: nobody to answer
	}
	e := &login.Error{Status: http.StatusBadGateway, Title: "The app is not answering",
		Message: "The app behind this sign-in is not answering right now. Please try again in a moment.",
		Reason:  "upstream_unavailable", Retry: false, Err: fmt.Errorf("upstream %s: %w", g.cfg.Upstream.Redacted(), err)}
	var timeout interface{ Timeout() bool }
	if errors.As(err, &timeout) && timeout.Timeout() {
		e.Status, e.Title, e.Reason = http.StatusGatewayTimeout, "The app did not answer in time", "upstream_timeout"
		e.Message = "The app behind this sign-in took too long to answer. Please try again in a moment."
	}
	g.cfg.ErrorHandler(w, r, e)
}

// trustedPeer reports whether r comes straight from one of TrustedProxies.
func (g *Gateway) trustedPeer(r *http.Request) bool {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	for _, p := range g.cfg.TrustedProxies {
		if p.Contains(peer.Addr().Unmap()) {
			return true
		}
	}
	return false
}
