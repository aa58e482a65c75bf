package gateway

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/gologin/gologin/login"
)

// original is the request a proxy asks about.
type original struct {
	method, host, uri string
	known             bool // host and uri are the request's; else every rule applies
}

// asked is the request a forward-auth call from a proxy is about: from
// X-Forwarded-Method/Host/Uri (Traefik, Caddy) or X-Original-Method/URI
// (nginx) when the caller is one of TrustedProxies. Any other caller is a
// browser or an untrusted peer, whose claims about the request are ignored.
//
// A proxy sets one family and passes the client's copies of the other on,
// so a value is believed only when every copy of it, in either family,
// agrees: a client that adds a different one makes the request unknown,
// to which every rule applies, and never picks the path the rules see.
func (g *Gateway) asked(r *http.Request) original {
	unknown := original{method: http.MethodGet, uri: "/"}
	if !g.trustedPeer(r) {
		return unknown
	}
	method, ok1 := agreed(r.Header, "X-Forwarded-Method", "X-Original-Method")
	host, ok2 := agreed(r.Header, "X-Forwarded-Host")
	uri, ok3 := agreed(r.Header, "X-Forwarded-Uri", "X-Original-Uri")
	if !ok1 || !ok2 || !ok3 || !strings.HasPrefix(uri, "/") {
		// A page load is still sent to sign in, back to /.
		return unknown
	}
	o := original{method: method, host: host, uri: uri, known: true}
	if o.method == "" {
		o.method = http.MethodGet
	}
	if o.host == "" {
		o.host = r.Host
	}
	return o
}

// agreed returns the one value that every copy of the headers keys holds,
// or "" when there is none; ok is false when copies differ.
func agreed(h http.Header, keys ...string) (v string, ok bool) {
	for _, k := range keys {
		for _, got := range h.Values(k) {
			if v != "" && got != v {
				return "", false
			}
			v = got
		}
	}
	return v, true
}

// Check is the endpoint for nginx's auth_request: 202 with the identity
// headers for a user who may pass, 403 for one the rules refuse, and 401
// with the sign-in URL in X-Auth-Sign-In for a guest, which nginx's
// error_page can redirect to.
func (g *Gateway) Check(w http.ResponseWriter, r *http.Request) {
	g.forwardAuth(w, r, g.asked(r), http.StatusAccepted, false)
}

// Verify is the endpoint for Traefik's ForwardAuth and Caddy's
// forward_auth: 200 with the identity headers for a user who may pass, 403
// for one the rules refuse, and for a guest a redirect to sign in that
// returns to the request the proxy forwarded (a 401 when that request was
// not a page load).
func (g *Gateway) Verify(w http.ResponseWriter, r *http.Request) {
	g.forwardAuth(w, r, g.asked(r), http.StatusOK, true)
}

// ExtAuthz is the endpoint for Envoy's ext_authz HTTP service, mounted at
// Prefix+"/envoy/": Envoy asks with the original method, headers and path
// appended to that prefix. 200 with the identity headers lets the request
// through; a guest loading a page is redirected to sign in.
func (g *Gateway) ExtAuthz(w http.ResponseWriter, r *http.Request) {
	uri := strings.TrimPrefix(r.URL.RequestURI(), g.cfg.Prefix+"/envoy")
	o := original{method: r.Method, host: r.Host, uri: uri, known: strings.HasPrefix(uri, "/")}
	if !o.known {
		o.uri = "/"
	}
	g.forwardAuth(w, r, o, http.StatusOK, true)
}

// forwardAuth answers a proxy asking whether o may pass.
func (g *Gateway) forwardAuth(w http.ResponseWriter, r *http.Request, o original, allowed int, redirect bool) {
	w.Header().Set("Cache-Control", "no-store")
	u, ok := g.auth().User(r)
	if !ok {
		// The proxy copies this to the browser: an absolute URL at the
		// gateway, back to a path on it (never another site).
		signIn := g.cfg.BaseURL.Scheme + "://" + g.cfg.BaseURL.Host + g.auth().LoginURL(o.uri)
		if redirect && (o.method == http.MethodGet || o.method == http.MethodHead) {
			http.Redirect(w, r, signIn, http.StatusFound)
			return
		}
		w.Header().Set("X-Auth-Sign-In", signIn)
		http.Error(w, "sign-in required", http.StatusUnauthorized)
		return
	}
	k := g.know(u)
	var rule *Rule
	if pu, err := url.ParseRequestURI(o.uri); err == nil && o.known {
		rule = g.cfg.Rules.Refusal(u, k.claims, o.host, pu.Path)
	} else {
		rule = g.cfg.Rules.RefusalAnywhere(u, k.claims)
	}
	if rule != nil {
		g.cfg.Logger.InfoContext(r.Context(), "access refused by a rule", "sub", u.Subject, "host", o.host,
			"uri", o.uri, "rule_line", rule.Line)
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	id, err := g.withToken(r, k.id)
	if err != nil {
		e := login.NewError("refresh_failed", err)
		g.cfg.Logger.WarnContext(r.Context(), "access token unavailable for a forward-auth check", "error", err)
		http.Error(w, e.Title, e.Status)
		return
	}
	// Both oauth2-proxy spellings, so that existing proxy configurations
	// copy them as they are.
	g.set(r.Context(), w.Header(), id, authRequestNames, "X-Auth-Request-Access-Token")
	g.set(r.Context(), w.Header(), id, forwardedNames, "X-Forwarded-Access-Token")
	w.WriteHeader(allowed)
}
