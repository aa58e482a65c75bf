// Package config reads the web app's configuration from environment
// variables and reports every problem at once, naming the variable and the fix.
package config

import (
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gologin/gologin/login"
	"github.com/gologin/gologin/sessionstore/storeurl"
)

// ProviderKind says which provider signs users in.
type ProviderKind string

const (
	Auth0 ProviderKind = "auth0" // AUTH0_DOMAIN, AUTH0_CLIENT_ID, AUTH0_CLIENT_SECRET
	OIDC  ProviderKind = "oidc"  // OIDC_ISSUER, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET
	Dev   ProviderKind = "dev"   // the embedded development provider
)

// Config is the app's configuration.
type Config struct {
	ListenAddr string
	// BaseURL is the app's public URL without a trailing slash; the callback
	// and logout URLs derive from it, never from request headers.
	BaseURL string
	Secure  bool // BaseURL is https

	Provider ProviderKind
	Issuer   string // OIDC_ISSUER, exactly; empty for Auth0 and the development provider
	// Auth0Domain is the Auth0 tenant's domain (with its port, if any);
	// login.Auth0 knows what Auth0 wants of it.
	Auth0Domain  string
	ClientID     string
	ClientSecret string
	Scopes       []string
	// Auth0Audience asks Auth0 for an access token for this API.
	Auth0Audience string
	// ClientKey, from OIDC_CLIENT_KEY_FILE, authenticates the client with
	// private_key_jwt (Auth0 too); ClientKeyID is its key ID.
	ClientKey   crypto.Signer
	ClientKeyID string
	// AssertionAudience is OIDC_ASSERTION_AUDIENCE: what private_key_jwt
	// assertions name as aud, "issuer" or "token_endpoint" (or empty, the
	// default: the token endpoint, except with Auth0, the tenant).
	AssertionAudience string
	// ResponseMode is OIDC_RESPONSE_MODE: query (or empty) or form_post.
	ResponseMode string
	// UsePAR, OIDC_USE_PAR, requires pushed authorization requests.
	UsePAR bool
	// DPoP, OIDC_DPOP, binds the session's tokens to a key of its own.
	DPoP bool

	LogFormat string // text or json
	LogLevel  slog.Level
	// MetricsAddr is the address of the listener that serves /metrics;
	// empty with METRICS_ADDR=off. The main listener never serves it.
	MetricsAddr string
	// MetricsDefault is true when MetricsAddr is DefaultMetricsAddr
	// because METRICS_ADDR is unset.
	MetricsDefault bool
	// TrustedProxies are the proxies whose X-Forwarded-For and
	// X-Forwarded-Proto headers are believed.
	TrustedProxies []netip.Prefix

	SessionStore    string
	SessionMaxAge   time.Duration
	SessionIdle     time.Duration
	ProviderTimeout time.Duration
	ClockSkew       time.Duration

	// MoreProviders, OIDC_PROVIDERS, sign users in beside the main one.
	MoreProviders []NamedProvider

	// Gateway is set for the gateway, which protects an upstream app.
	Gateway *Gateway
}

// DefaultMetricsAddr is where /metrics is served when METRICS_ADDR is
// unset: loopback, so that only the machine's own scraper reads it, on the
// port OpenTelemetry's Prometheus exporter uses by default.
const DefaultMetricsAddr = "127.0.0.1:9464"

// CallbackURL is where the provider returns the browser after sign-in.
func (c Config) CallbackURL() string { return c.BaseURL + c.Prefix() + "/callback" }

// HomeURL is where the provider returns the browser after logout: the
// app's home page, or the gateway's own page.
func (c Config) HomeURL() string { return c.BaseURL + c.Prefix() + "/" }

// Prefix is the path the app's own routes are under: empty for the web
// app, GATEWAY_PREFIX for the gateway.
func (c Config) Prefix() string {
	if c.Gateway == nil {
		return ""
	}
	return c.Gateway.Prefix
}

// Load reads the web app's configuration through getenv. It returns every
// problem it finds, joined, each naming the variable to fix.
func Load(getenv func(string) string) (Config, error) { return load(getenv, "3000", false) }

// LoadGateway reads the gateway's configuration: the web app's, with
// another default port, and the variables of Gateway.
func LoadGateway(getenv func(string) string) (Config, error) {
	return load(getenv, DefaultGatewayPort, true)
}

// DefaultGatewayPort is the gateway's port when PORT is unset:
// oauth2-proxy's, so that replacing it changes no other configuration.
const DefaultGatewayPort = "4180"

func load(getenv func(string) string, defaultPort string, gateway bool) (Config, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	env := func(k string) string { return strings.TrimSpace(getenv(k)) }
	duration := func(k string, def time.Duration) time.Duration {
		v := env(k)
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			bad("%s=%q: want a positive duration such as %s", k, v, def)
			return def
		}
		return d
	}

	boolean := func(k string) bool {
		switch v := strings.ToLower(env(k)); v {
		case "", "false", "0":
			return false
		case "true", "1":
			return true
		}
		bad("%s=%q: want true or false", k, env(k))
		return false
	}

	c := Config{
		SessionStore:    env("SESSION_STORE"),
		SessionMaxAge:   duration("SESSION_MAX_AGE", 168*time.Hour),
		SessionIdle:     duration("SESSION_IDLE_TIMEOUT", 24*time.Hour),
		ProviderTimeout: duration("PROVIDER_TIMEOUT", 10*time.Second),
		ClockSkew:       duration("CLOCK_SKEW", time.Minute),
	}

	c.LogFormat = strings.ToLower(env("LOG_FORMAT"))
	if c.LogFormat == "" {
		c.LogFormat = "text"
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("LOG_FORMAT=%q: want text or json", env("LOG_FORMAT"))
	}
	if v := env("LOG_LEVEL"); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			bad("LOG_LEVEL=%q: want debug, info, warn or error", v)
		}
	}
	switch c.MetricsAddr = env("METRICS_ADDR"); {
	case c.MetricsAddr == "":
		c.MetricsAddr, c.MetricsDefault = DefaultMetricsAddr, true
	case strings.EqualFold(c.MetricsAddr, "off"):
		c.MetricsAddr = ""
	default:
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			bad("METRICS_ADDR=%q: want host:port, such as 127.0.0.1:9090, or off", c.MetricsAddr)
		}
	}
	for _, cidr := range strings.FieldsFunc(env("TRUSTED_PROXIES"), func(r rune) bool { return r == ',' || r == ' ' }) {
		p, err := netip.ParsePrefix(cidr)
		if err != nil {
			if a, aerr := netip.ParseAddr(cidr); aerr == nil {
				p, err = a.Prefix(a.BitLen())
			}
		}
		if err != nil {
			bad("TRUSTED_PROXIES: %q is not a CIDR such as 10.0.0.0/8 or an IP address", cidr)
			continue
		}
		c.TrustedProxies = append(c.TrustedProxies, p.Masked())
	}

	port := env("PORT")
	if port == "" {
		port = defaultPort
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		bad("PORT=%q: want a port number between 1 and 65535", port)
		port = defaultPort // so the defaults below do not repeat the problem
	}
	c.ListenAddr = env("LISTEN_ADDR")
	if c.ListenAddr == "" {
		c.ListenAddr = net.JoinHostPort("127.0.0.1", port)
	} else if _, _, err := net.SplitHostPort(c.ListenAddr); err != nil {
		bad("LISTEN_ADDR=%q: want host:port, such as 127.0.0.1:3000 or :3000", c.ListenAddr)
	}

	base := env("APP_BASE_URL")
	if base == "" {
		// Default to where the app listens, so LISTEN_ADDR alone is enough.
		listenPort := port
		if _, p, err := net.SplitHostPort(c.ListenAddr); err == nil && p != "" {
			listenPort = p
		}
		base = "http://localhost:" + listenPort
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		bad("APP_BASE_URL=%q: want the app's public URL, such as https://app.example.com", base)
		u = nil
	} else {
		c.BaseURL = strings.TrimRight(u.String(), "/")
		c.Secure = u.Scheme == "https"
	}

	scopes := env("OIDC_SCOPES")
	if scopes == "" {
		scopes = "openid profile email"
	}
	c.Scopes = strings.Fields(scopes)
	if !slices.Contains(c.Scopes, "openid") {
		bad("OIDC_SCOPES=%q: must contain openid", scopes)
	}

	if c.SessionStore == "" {
		c.SessionStore = "sqlite:sessions.db"
	}
	if _, err := storeurl.Parse(c.SessionStore); err != nil {
		// The value may hold a password: show only its kind.
		kind, _, _ := strings.Cut(c.SessionStore, ":")
		bad("SESSION_STORE=%s...: want sqlite:PATH (such as sqlite:sessions.db), memory, redis://host:port/db, rediss://..., or postgres://...", kind)
	}

	if path := env("OIDC_CLIENT_KEY_FILE"); path != "" {
		data, err := os.ReadFile(path)
		if err == nil {
			c.ClientKey, c.ClientKeyID, err = login.ParseClientKey(data)
		}
		if err != nil {
			bad("OIDC_CLIENT_KEY_FILE=%q: %v", path, err)
		}
		if kid := env("OIDC_CLIENT_KEY_ID"); kid != "" {
			c.ClientKeyID = kid // the ID the provider gave the registered key
		}
	}
	c.UsePAR = boolean("OIDC_USE_PAR")
	c.DPoP = boolean("OIDC_DPOP")
	switch c.AssertionAudience = env("OIDC_ASSERTION_AUDIENCE"); c.AssertionAudience {
	case "", "issuer", "token_endpoint":
	default:
		bad("OIDC_ASSERTION_AUDIENCE=%q: want issuer or token_endpoint", c.AssertionAudience)
	}
	switch c.ResponseMode = env("OIDC_RESPONSE_MODE"); c.ResponseMode {
	case "", "query":
	case "form_post":
		// Its attempt cookie is Secure, which browsers keep only over
		// https or on loopback.
		if u != nil && u.Scheme != "https" && !IsLoopback(u.Hostname()) {
			bad("OIDC_RESPONSE_MODE=form_post needs an https APP_BASE_URL (or a loopback one), not %s", c.BaseURL)
		}
	default:
		bad("OIDC_RESPONSE_MODE=%q: want query or form_post", c.ResponseMode)
	}

	if gateway {
		c.Gateway = loadGateway(env, boolean, duration, bad)
	}
	errs = append(errs, c.loadProvider(env, u)...)
	errs = append(errs, c.loadMoreProviders(env)...)
	return c, errors.Join(errs...)
}

// checkIssuer reports what is wrong with the issuer URL in variable k.
func checkIssuer(k, issuer string) error {
	u, err := url.Parse(issuer)
	switch {
	case err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return fmt.Errorf("%s=%q: want the provider's issuer URL, such as https://accounts.example.com", k, issuer)
	case u.Scheme == "http" && !IsLoopback(u.Hostname()):
		return fmt.Errorf("%s=%q: plain http is accepted only for loopback issuers; use https", k, issuer)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%s=%q: want an https URL", k, issuer)
	}
	return nil
}

var (
	auth0Vars = []string{"AUTH0_DOMAIN", "AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET"}
	oidcVars  = []string{"OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET"}
)

func (c *Config) loadProvider(env func(string) string, base *url.URL) []error {
	set := func(vars []string) (have, missing []string) {
		for _, k := range vars {
			if env(k) != "" {
				have = append(have, k)
			} else {
				missing = append(missing, k)
			}
		}
		return have, missing
	}
	a0, a0missing := set(auth0Vars)
	oi, oimissing := set(oidcVars)
	if c.ClientKey != nil {
		// A client that signs its assertions needs no secret.
		a0missing = slices.DeleteFunc(a0missing, func(k string) bool { return k == "AUTH0_CLIENT_SECRET" })
		oimissing = slices.DeleteFunc(oimissing, func(k string) bool { return k == "OIDC_CLIENT_SECRET" })
	}
	switch {
	case len(a0) > 0 && len(oi) > 0:
		return []error{fmt.Errorf("both Auth0 (%s) and generic OpenID (%s) settings are present: keep one kind, AUTH0_* or OIDC_*",
			strings.Join(a0, ", "), strings.Join(oi, ", "))}
	case len(a0) > 0 && len(a0missing) > 0:
		return []error{fmt.Errorf("%s set but %s missing: Auth0 needs all of %s", strings.Join(a0, ", "), strings.Join(a0missing, ", "), strings.Join(auth0Vars, ", "))}
	case len(oi) > 0 && len(oimissing) > 0:
		return []error{fmt.Errorf("%s set but %s missing: a generic OpenID provider needs all of %s", strings.Join(oi, ", "), strings.Join(oimissing, ", "), strings.Join(oidcVars, ", "))}
	case len(a0) > 0:
		c.Provider = Auth0
		c.ClientID, c.ClientSecret = env("AUTH0_CLIENT_ID"), env("AUTH0_CLIENT_SECRET")
		domain := env("AUTH0_DOMAIN")
		if len(domain) > len("https://") && strings.EqualFold(domain[:len("https://")], "https://") {
			domain = domain[len("https://"):]
		}
		domain = strings.TrimSuffix(domain, "/")
		u, err := url.Parse("https://" + domain + "/")
		if err != nil || u.Host != domain || u.Hostname() == "" || strings.HasSuffix(domain, ":") {
			return []error{fmt.Errorf("AUTH0_DOMAIN=%q: want your tenant's domain, such as dev-abc123.us.auth0.com", env("AUTH0_DOMAIN"))}
		}
		c.Auth0Domain = domain
		c.Auth0Audience = env("AUTH0_AUDIENCE")
	case len(oi) > 0:
		c.Provider = OIDC
		c.ClientID, c.ClientSecret = env("OIDC_CLIENT_ID"), env("OIDC_CLIENT_SECRET")
		c.Issuer = env("OIDC_ISSUER")
		if err := checkIssuer("OIDC_ISSUER", c.Issuer); err != nil {
			return []error{err}
		}
	default:
		if base == nil {
			return nil // APP_BASE_URL is reported already
		}
		if !IsLoopback(base.Hostname()) {
			return []error{fmt.Errorf("no OpenID provider configured: set AUTH0_DOMAIN (with AUTH0_CLIENT_ID, AUTH0_CLIENT_SECRET) or OIDC_ISSUER (with OIDC_CLIENT_ID, OIDC_CLIENT_SECRET); the development provider only runs when APP_BASE_URL is a loopback address")}
		}
		// The development provider signs in anyone as anyone: only this
		// machine may reach it. A malformed LISTEN_ADDR is reported already.
		if host, port, err := net.SplitHostPort(c.ListenAddr); err == nil && !IsLoopback(host) {
			return []error{fmt.Errorf("LISTEN_ADDR=%q: the development provider signs in anyone as anyone, so it listens only on loopback addresses; use 127.0.0.1:%s, or configure a real provider (AUTH0_* or OIDC_*)", c.ListenAddr, port)}
		}
		c.Provider = Dev
	}
	return nil
}

// IsLoopback reports whether host is localhost or a loopback IP address.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
