// Package devidp is a small OpenID Connect provider for development and
// tests: discovery, JWKS, RS256-signed ID tokens, the authorization code flow
// with PKCE, refresh tokens, userinfo, RP-initiated and back-channel logout,
// client authentication by secret or by JWT (client_secret_jwt,
// private_key_jwt), pushed authorization requests (PAR), DPoP-bound access
// tokens and the form_post response mode. Its sign-in page asks for a name
// and an email and accepts them without a password; each distinct email is a
// distinct user. It must never face real users.
package devidp

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Client is a relying party registered with the provider.
type Client struct {
	ID     string
	Secret string
	// RedirectURIs are the callback URLs the client may use, compared exactly.
	RedirectURIs []string
	// PostLogoutRedirectURIs are where end_session may send the browser back to.
	PostLogoutRedirectURIs []string
	// BackchannelLogoutURI, if set, receives a logout token (OpenID Connect
	// Back-Channel Logout 1.0) when the user signs out at the provider.
	BackchannelLogoutURI string
	// Keys are the client's public signing keys, for private_key_jwt
	// authentication at the token and PAR endpoints (RFC 7523, OpenID
	// Connect Core 9): RSA keys of at least 2048 bits (RS256, PS256) or P-256
	// keys (ES256). A key's KeyID, when set, is what an assertion's kid must
	// name to pick it; its Algorithm, when set, is the only algorithm it is
	// accepted with. A client with Keys and no Secret must authenticate with
	// private_key_jwt. A client with a Secret may also use client_secret_jwt,
	// if the secret is at least 32 bytes long (RFC 7518 3.2).
	Keys []jose.JSONWebKey
	// RequirePAR refuses the client's authorization requests unless they
	// were pushed to the PAR endpoint first (RFC 9126).
	RequirePAR bool
	// RequireDPoP refuses the client's token requests that carry no DPoP
	// proof (RFC 9449), so that all its access tokens are DPoP-bound.
	RequireDPoP bool
}

// Config configures a Provider.
type Config struct {
	// Issuer is the provider's issuer URL; its path is where the provider's
	// endpoints live, so mount the Provider there.
	Issuer  string
	Clients []Client
	// Key signs ID tokens; see LoadOrCreateKey.
	Key *rsa.PrivateKey
	// DefaultName and DefaultEmail pre-fill the sign-in page.
	DefaultName, DefaultEmail string
	// AccessTokenLifetime is how long access tokens last; refresh tokens,
	// issued when offline_access is granted, rotate on every use.
	// Default: DefaultAccessTokenLifetime.
	AccessTokenLifetime time.Duration
	// HTTPClient sends back-channel logout requests. Default: a client with
	// a 5 s timeout.
	HTTPClient *http.Client
	// PAR offers a pushed authorization request endpoint (RFC 9126),
	// advertised in discovery, which relying parties then use; without it
	// the provider is one of the many that take authorization requests only
	// through the browser. RequirePAR, or a client's RequirePAR, implies it.
	PAR bool
	// RequirePAR refuses every authorization request not pushed to the PAR
	// endpoint first (RFC 9126), as Client.RequirePAR does for one client;
	// discovery then says require_pushed_authorization_requests.
	RequirePAR bool
	// DPoPNonce makes the provider demand its own nonce in DPoP proofs
	// (RFC 9449 8 and 9): a proof without the current nonce is answered
	// with use_dpop_nonce and the nonce in a DPoP-Nonce header, so that
	// relying parties' nonce retries are exercised.
	DPoPNonce bool
}

// Lifetimes of what the provider issues.
const (
	CodeLifetime               = time.Minute
	DefaultAccessTokenLifetime = time.Hour
	IDTokenLifetime            = time.Hour
	RefreshTokenLifetime       = 24 * time.Hour
	// RequestURILifetime is how long a pushed authorization request's
	// request_uri may be used; it works once.
	RequestURILifetime = time.Minute
	// MaxAssertionLifetime is the longest a client assertion may be valid
	// for, from now to its exp: a long-lived assertion is a reusable
	// credential, which is what assertions are meant not to be.
	MaxAssertionLifetime = 5 * time.Minute
	// DPoPProofWindow is how far a DPoP proof's iat may be from the
	// provider's clock, either way.
	DPoPProofWindow = time.Minute

	maxPending = 100_000 // codes, tokens, pushed requests or jtis held at once
	// signInLifetime is how long the sign-in page of a pushed request
	// stays usable once its request_uri has been used.
	signInLifetime = 30 * time.Minute
	// dpopNonceLifetime is how often the DPoP nonce changes; the previous
	// one stays valid, so a relying party never races a rotation.
	dpopNonceLifetime = 5 * time.Minute
)

// Provider is an OpenID provider; it is an http.Handler for the paths under
// its issuer.
type Provider struct {
	issuer  string
	base    string // issuer path without trailing slash
	clients map[string]Client
	signer  jose.Signer
	jwks    jose.JSONWebKeySet
	pub     *rsa.PublicKey
	defName string
	defMail string
	access  time.Duration
	client  *http.Client
	mux     *http.ServeMux
	// par, requirePAR and nonces are Config.PAR (or implied by a
	// requirement of PAR), Config.RequirePAR and Config.DPoPNonce.
	par, requirePAR, nonces bool
	now                     func() time.Time // time.Now; tests move it

	mu      sync.Mutex
	codes   map[string]grant
	tokens  map[string]grant
	refresh map[string]grant
	pushed  map[string]pushedRequest
	// jtis and proofs are the client assertions' and DPoP proofs' jti
	// values seen, until they could no longer be accepted anyway.
	jtis, proofs map[string]time.Time
	// nonce and prevNonce are the DPoP nonces accepted; nonce was made at
	// nonceSince.
	nonce, prevNonce string
	nonceSince       time.Time
}

// grant is what a code or access token stands for.
type grant struct {
	client      string
	redirectURI string
	nonce       string
	challenge   string
	scope       string
	user        User
	sid         string
	authTime    time.Time
	expires     time.Time
	// jkt is the RFC 7638 thumbprint of the DPoP key the tokens of the
	// grant are bound to (cnf.jkt, RFC 9449 6), or empty for bearer tokens.
	jkt string
}

func (g grant) expiry() time.Time { return g.expires }

// User is a person signed in at the provider.
type User struct {
	Name  string
	Email string
	// Groups, optional, become the groups claim, for trying out rules
	// that allow groups.
	Groups []string
}

// Subject is the user's stable identifier: derived from the email, so the
// same email always yields the same sub.
func (u User) Subject() string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(u.Email))))
	return "dev|" + hex.EncodeToString(sum[:12])
}

//go:embed templates
var templateFS embed.FS

var pages = template.Must(template.ParseFS(templateFS, "templates/*.html"))

// New returns a Provider for cfg.
func New(cfg Config) (*Provider, error) {
	u, err := url.Parse(cfg.Issuer)
	if err != nil || u.Scheme == "" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("devidp: issuer must be an absolute URL without query or fragment")
	}
	if cfg.Key == nil {
		return nil, errors.New("devidp: a signing key is required")
	}
	jwk := jose.JSONWebKey{Key: cfg.Key.Public(), Algorithm: string(jose.RS256), Use: "sig"}
	thumb, err := jwk.Thumbprint(crypto256)
	if err != nil {
		return nil, err
	}
	jwk.KeyID = hex.EncodeToString(thumb[:8])
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: cfg.Key, KeyID: jwk.KeyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, err
	}
	p := &Provider{
		issuer:  cfg.Issuer,
		base:    strings.TrimSuffix(u.Path, "/"),
		clients: make(map[string]Client),
		signer:  signer,
		jwks:    jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk}},
		pub:     &cfg.Key.PublicKey,
		defName: cfg.DefaultName,
		defMail: cfg.DefaultEmail,
		access:  cfg.AccessTokenLifetime,
		client:  cfg.HTTPClient,
		codes:   make(map[string]grant),
		tokens:  make(map[string]grant),
		refresh: make(map[string]grant),
		pushed:  make(map[string]pushedRequest),
		jtis:    make(map[string]time.Time),
		proofs:  make(map[string]time.Time),

		par:        cfg.PAR || cfg.RequirePAR || slices.ContainsFunc(cfg.Clients, func(c Client) bool { return c.RequirePAR }),
		requirePAR: cfg.RequirePAR,
		nonces:     cfg.DPoPNonce,
		now:        time.Now,
	}
	if p.access <= 0 {
		p.access = DefaultAccessTokenLifetime
	}
	if p.client == nil {
		p.client = &http.Client{Timeout: 5 * time.Second}
	}
	if p.defName == "" {
		p.defName, p.defMail = "Demo User", "demo@example.com"
	}
	for _, c := range cfg.Clients {
		if err := checkClientKeys(c); err != nil {
			return nil, err
		}
		p.clients[c.ID] = c
	}
	p.mux = http.NewServeMux()
	p.routes()
	return p, nil
}

// Issuer returns the provider's issuer URL.
func (p *Provider) Issuer() string { return p.issuer }

// ServeHTTP implements http.Handler.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	p.mux.ServeHTTP(w, r)
}

func (p *Provider) routes() {
	b := p.base
	p.mux.HandleFunc("GET "+b+"/.well-known/openid-configuration", p.handleDiscovery)
	p.mux.HandleFunc("GET "+b+"/jwks", p.handleJWKS)
	p.mux.HandleFunc("GET "+b+"/authorize", p.handleAuthorize)
	p.mux.HandleFunc("POST "+b+"/authorize", p.handleSignIn)
	p.mux.HandleFunc("POST "+b+"/token", p.handleToken)
	if p.par {
		p.mux.HandleFunc("POST "+b+"/par", p.handlePAR)
	}
	p.mux.HandleFunc(b+"/userinfo", p.handleUserinfo)
	p.mux.HandleFunc("GET "+b+"/logout", p.handleEndSession)
	p.mux.HandleFunc("GET "+b+"/avatar.svg", handleAvatar)
	p.mux.HandleFunc("GET "+b+"/style.css", handleStyle)
	p.mux.HandleFunc(b+"/", func(w http.ResponseWriter, r *http.Request) {
		p.page(w, http.StatusNotFound, "error", errorPage{Title: "Not found", Message: "The development provider has no page at this address."})
	})
}

func (p *Provider) endpoint(path string) string {
	return strings.TrimSuffix(p.issuer, "/") + path
}

// expiring is what the provider keeps for a limited time.
type expiring interface{ expiry() time.Time }

// store keeps v under a fresh random key in m; it refuses when too many are
// outstanding so anonymous requests cannot grow memory without bound.
func store[V expiring](p *Provider, m map[string]V, v V) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(m) >= maxPending {
		now := p.now()
		for k, v := range m {
			if now.After(v.expiry()) {
				delete(m, k)
			}
		}
		if len(m) >= maxPending {
			return "", false
		}
	}
	k := rand.Text()
	m[k] = v
	return k, true
}

// seen reports whether key is in the replay set m, and otherwise adds it
// until until; p.mu must be held. A full set counts as seen: refusing is
// safe, forgetting is not.
func (p *Provider) seen(m map[string]time.Time, key string, until time.Time) bool {
	now := p.now()
	if exp, ok := m[key]; ok && !now.After(exp) {
		return true
	}
	if len(m) >= maxPending {
		for k, exp := range m {
			if now.After(exp) {
				delete(m, k)
			}
		}
		if len(m) >= maxPending {
			return true
		}
	}
	m[key] = until
	return false
}

// revoke forgets every access and refresh token of the provider session sid.
func (p *Provider) revoke(sid string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range []map[string]grant{p.tokens, p.refresh} {
		for k, g := range m {
			if g.sid == sid {
				delete(m, k)
			}
		}
	}
}

// take returns the grant under k; codes are removed so they work only once.
func (p *Provider) take(m map[string]grant, k string, once bool) (grant, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	g, ok := m[k]
	if once {
		delete(m, k)
	}
	if !ok || p.now().After(g.expires) {
		return grant{}, false
	}
	return g, true
}

// takeIf is take for a grant that is used up only if match accepts it, so
// that a refused attempt leaves it to its rightful holder. found is false
// for an unknown or expired key.
func (p *Provider) takeIf(m map[string]grant, k string, match func(grant) bool) (g grant, found, matched bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	g, ok := m[k]
	if !ok || p.now().After(g.expires) {
		delete(m, k)
		return grant{}, false, false
	}
	if !match(g) {
		return g, true, false
	}
	delete(m, k)
	return g, true, true
}
