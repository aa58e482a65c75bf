// Package devidp is a small OpenID Connect provider for development and
// tests: discovery, JWKS, RS256-signed ID tokens, the authorization code flow
// with PKCE, userinfo and RP-initiated logout. Its sign-in page asks for a
// name and an email and accepts them without a password; each distinct email
// is a distinct user. It must never face real users.
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
}

// Lifetimes of what the provider issues.
const (
	CodeLifetime               = time.Minute
	DefaultAccessTokenLifetime = time.Hour
	IDTokenLifetime            = time.Hour
	RefreshTokenLifetime       = 24 * time.Hour
	maxPending                 = 100_000 // codes or access tokens held at once
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

	mu      sync.Mutex
	codes   map[string]grant
	tokens  map[string]grant
	refresh map[string]grant
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
}

// User is a person signed in at the provider.
type User struct {
	Name  string
	Email string
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

// store keeps g under a fresh random key in m; it refuses when too many are
// outstanding so anonymous requests cannot grow memory without bound.
func (p *Provider) store(m map[string]grant, g grant) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(m) >= maxPending {
		now := time.Now()
		for k, v := range m {
			if now.After(v.expires) {
				delete(m, k)
			}
		}
		if len(m) >= maxPending {
			return "", false
		}
	}
	k := rand.Text()
	m[k] = g
	return k, true
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
	if !ok || time.Now().After(g.expires) {
		return grant{}, false
	}
	return g, true
}
