package gateway

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"time"

	"github.com/gologin/gologin/login"
)

// identity is what the upstream is told of the signed-in user.
type identity struct {
	user, email, username, groups, provider, accessToken string
}

type identityKey struct{}

// identityHeaders are the headers that carry an identity, by their
// canonical names. Clients' copies of them are removed, always.
var identityHeaders = []string{
	"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Preferred-Username", "X-Forwarded-Groups",
	"X-Forwarded-Provider", "X-Forwarded-Access-Token",
	"X-Auth-Request-User", "X-Auth-Request-Email", "X-Auth-Request-Preferred-Username", "X-Auth-Request-Groups",
	"X-Auth-Request-Provider", "X-Auth-Request-Access-Token",
	// Forward-auth inputs: meaningless to the upstream, and trusted by some.
	"X-Forwarded-Uri", "X-Forwarded-Method", "X-Original-Uri", "X-Original-Method",
	// Read as the request's path by IIS URL Rewrite and some frameworks:
	// a public path with one of these could reach any other.
	"X-Original-Url", "X-Rewrite-Url",
}

// spoofable reports whether a client's header named key must be removed:
// an identity header in any spelling. Rack, PHP, CGI and WSGI servers read
// X_Forwarded_User as X-Forwarded-User, so the comparison ignores case and
// takes '_' for '-'.
func (g *Gateway) spoofable(key string) bool {
	k := strings.ReplaceAll(key, "_", "-")
	for _, h := range identityHeaders {
		if strings.EqualFold(k, h) {
			return true
		}
	}
	return g.cfg.PassAuthorization && strings.EqualFold(k, "Authorization")
}

// withToken is id with the user's access token, when one is passed on.
func (g *Gateway) withToken(r *http.Request, id identity) (identity, error) {
	if g.cfg.PassAccessToken || g.cfg.PassAuthorization {
		t, err := g.cfg.Providers.For(r).AccessToken(r)
		if err != nil {
			return identity{}, err
		}
		id.accessToken = t
	}
	return id, nil
}

// known is what the gateway needs of a user on every request: the claims,
// decoded, for the rules, and the identity headers.
type known struct {
	claims map[string]any // read only: shared by requests
	id     identity
	of     login.User // whom it was made for
}

// identities remembers users by their claims: decoding the claims on
// every request was a tenth of the CPU of a proxied request. It keeps at
// most maxIdentities, forgetting them all when full, which costs one
// decode per user.
type identities struct {
	mu sync.RWMutex
	m  map[string]known
}

const maxIdentities = 4096

func (c *identities) of(u login.User, withProvider bool, groupsClaim string) known {
	// Keyed by the claims alone, which a lookup reads without copying;
	// the rest of the user is compared.
	c.mu.RLock()
	k, ok := c.m[string(u.ClaimsJSON)]
	c.mu.RUnlock()
	if ok && k.of.Provider == u.Provider && k.of.Subject == u.Subject && k.of.Email == u.Email {
		return k
	}
	claims := u.Claims()
	username, _ := claims["preferred_username"].(string)
	k = known{claims: claims, of: login.User{Provider: u.Provider, Subject: u.Subject, Email: u.Email},
		id: identity{user: u.Subject, email: u.Email, username: username,
			groups: strings.Join(login.Rule{GroupsClaim: groupsClaim}.GroupsIn(claims), ",")}}
	if withProvider {
		// Two providers may each have a user of the same sub or email:
		// only the two together name one person.
		k.id.provider = u.Provider
	}
	c.mu.Lock()
	if len(c.m) >= maxIdentities || c.m == nil {
		c.m = make(map[string]known)
	}
	c.m[string(u.ClaimsJSON)] = k
	c.mu.Unlock()
	return k
}

// know is what the gateway knows of u.
func (g *Gateway) know(u login.User) known {
	return g.identities.of(u, len(g.cfg.Providers) > 1, g.cfg.GroupsClaim)
}

// set writes id into h under the names given, skipping empty values and
// values no HTTP header can carry (a claim with a newline, say).
func (g *Gateway) set(ctx context.Context, h http.Header, id identity, names [5]string, tokenName string) {
	for i, v := range [...]string{id.user, id.email, id.username, id.groups, id.provider} {
		g.setValid(ctx, h, names[i], v)
	}
	if id.accessToken != "" {
		if g.cfg.PassAccessToken {
			g.setValid(ctx, h, tokenName, id.accessToken)
		}
		if g.cfg.PassAuthorization {
			g.setValid(ctx, h, "Authorization", "Bearer "+id.accessToken)
		}
	}
}

var (
	forwardedNames = [5]string{"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Preferred-Username", "X-Forwarded-Groups",
		"X-Forwarded-Provider"}
	authRequestNames = [5]string{"X-Auth-Request-User", "X-Auth-Request-Email", "X-Auth-Request-Preferred-Username",
		"X-Auth-Request-Groups", "X-Auth-Request-Provider"}
)

func (g *Gateway) setValid(ctx context.Context, h http.Header, key, v string) {
	if v == "" {
		return
	}
	if !validHeaderValue(v) {
		g.cfg.Logger.WarnContext(ctx, "identity header left out: its value has characters a header cannot carry", "header", key)
		return
	}
	h[key] = []string{v}
}

// validHeaderValue reports whether v may be sent as a header value (RFC
// 9110 5.5): no control characters but tab.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// rewrite makes the request the upstream gets.
func (g *Gateway) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(g.cfg.Upstream)
	if g.cfg.PassHost {
		pr.Out.Host = pr.In.Host
	}
	h := pr.Out.Header
	for k := range h {
		if g.spoofable(k) {
			delete(h, k)
		}
	}
	// The chain of forwarders is kept only from proxies we trust; a
	// client's own X-Forwarded-For, Forwarded or X-Real-Ip would let it
	// pick the address the upstream logs and rate-limits.
	delete(h, "Forwarded")
	delete(h, "X-Real-Ip")
	if prior := pr.In.Header["X-Forwarded-For"]; len(prior) > 0 && g.trustedPeer(pr.In) {
		h["X-Forwarded-For"] = prior
	}
	pr.SetXForwarded()
	// The browser's scheme is the gateway's public one, even when a TLS
	// proxy in front of it speaks plain HTTP to it.
	h.Set("X-Forwarded-Proto", g.cfg.BaseURL.Scheme)
	if ip, _, err := net.SplitHostPort(pr.In.RemoteAddr); err == nil {
		h.Set("X-Real-Ip", ip)
	}
	g.dropOwnCookies(h)
	if id, ok := pr.In.Context().Value(identityKey{}).(identity); ok {
		g.set(pr.In.Context(), h, id, forwardedNames, "X-Forwarded-Access-Token")
	}
}

// dropOwnCookies removes the gateway's cookies from the Cookie header: the
// session cookie would let the upstream, or whoever reads its logs, act as
// the user at the gateway.
func (g *Gateway) dropOwnCookies(h http.Header) {
	lines, ok := h["Cookie"]
	if !ok {
		return
	}
	var kept []string
	for _, line := range lines {
		for part := range strings.SplitSeq(line, ";") {
			part = strings.TrimSpace(part)
			name, _, _ := strings.Cut(part, "=")
			if part != "" && !g.auth().OwnsCookie(strings.TrimSpace(name)) {
				kept = append(kept, part)
			}
		}
	}
	if len(kept) == 0 {
		delete(h, "Cookie")
		return
	}
	h["Cookie"] = []string{strings.Join(kept, "; ")}
}

// modifyResponse removes the upstream's attempts to set the gateway's own
// cookies, which would replace or fix the user's session.
func (g *Gateway) modifyResponse(resp *http.Response) error {
	sets := resp.Header["Set-Cookie"]
	kept := sets[:0]
	for _, c := range sets {
		name, _, _ := strings.Cut(c, "=")
		if g.auth().OwnsCookie(strings.TrimSpace(name)) {
			g.cfg.Logger.WarnContext(resp.Request.Context(), "the upstream set the gateway's cookie: removed", "cookie", strings.TrimSpace(name))
			continue
		}
		kept = append(kept, c)
	}
	if len(sets) > 0 {
		if len(kept) == 0 {
			delete(resp.Header, "Set-Cookie")
		} else {
			resp.Header["Set-Cookie"] = kept
		}
	}
	return nil
}

// NewTransport is a transport to the upstream with bounded waits: a dial
// or TLS handshake gets 5 seconds and the response's headers
// responseTimeout, so an upstream that is down or stuck gives an error
// page rather than a hang. The body then streams as long as the upstream
// sends it (Server-Sent Events, downloads), and WebSockets stay open. It
// never uses HTTPS_PROXY: the upstream is the gateway's neighbour.
func NewTransport(responseTimeout time.Duration) *http.Transport {
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: responseTimeout,
		ExpectContinueTimeout: time.Second,
		// Every request goes to one host: keep as many connections idle
		// as are busy under load, so that each does not dial anew.
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 512,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
	}
}
