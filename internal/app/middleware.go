package app

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"runtime/debug"
	"strings"
	"time"
)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	noSessionKey        // set when the session store failed for this request
)

// requestID takes the request ID from X-Request-Id when it is well formed
// (at most 64 of A-Za-z0-9._-) or makes one, and returns it in the response.
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = rand.Text()[:16]
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range []byte(id) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// requestIDLogs adds the request ID to every record logged with a
// request's context, so that the login package's lines, which know
// nothing of this app's request IDs, join the access log's line and the
// error page's reference.
type requestIDLogs struct{ slog.Handler }

func (h requestIDLogs) Handle(ctx context.Context, r slog.Record) error {
	if id := requestIDFrom(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDLogs) WithAttrs(as []slog.Attr) slog.Handler {
	return requestIDLogs{h.Handler.WithAttrs(as)}
}

func (h requestIDLogs) WithGroup(name string) slog.Handler {
	return requestIDLogs{h.Handler.WithGroup(name)}
}

// header is a response header with a fixed value.
type header struct {
	key   string // in canonical form
	value []string
}

// setHeaders sets hs on h. The value slices are shared by every response,
// which saves an allocation per header per request; that is safe because
// Header.Set replaces a slice and Header.Add, with len == cap, copies it.
func setHeaders(h http.Header, hs []header) {
	for _, kv := range hs {
		h[kv.key] = kv.value
	}
}

// securityHeaderValues are the headers every response carries. The policy
// allows no script at all. It has no form-action: Chromium applies
// form-action to the redirect after the logout form, which goes to the
// provider.
var securityHeaderValues = []header{
	{"Content-Security-Policy", []string{"default-src 'none'; style-src 'self'; img-src 'self' https:; frame-ancestors 'none'; base-uri 'none'"}},
	{"X-Frame-Options", []string{"DENY"}},
	{"X-Content-Type-Options", []string{"nosniff"}},
	// The callback URL carries the authorization code: never send it on.
	{"Referrer-Policy", []string{"no-referrer"}},
}

// hsts is added to securityHeaderValues when APP_BASE_URL is https: after
// one visit, the browser never again sends a request, or a cookie, to the
// app over plain http, where a network attacker could answer. Two years is
// the value hstspreload.org and OWASP recommend: a lifetime within which a
// user almost surely returns, renewing it, so the first-visit gap stays
// rare. includeSubDomains keeps a plain-http subdomain from being used to
// plant cookies for the app. No preload: entering the browsers' preload
// list commits the whole domain to https, the operator's decision.
var hsts = header{"Strict-Transport-Security", []string{"max-age=63072000; includeSubDomains"}}

// securityHeaders sets hs on every response.
func securityHeaders(hs []header, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setHeaders(w.Header(), hs)
		next.ServeHTTP(w, r)
	})
}

// directOnly, while the development provider runs, refuses with 421 every
// request whose Host is not APP_BASE_URL's or that a proxy forwarded
// (Forwarded, X-Forwarded-For, X-Forwarded-Host). The development provider
// signs in anyone as anyone: reached under another name or through a
// proxy, it would do so for whoever else reaches that. /healthz and
// /readyz stay open to probes, which name the host as they please.
func (a *App) directOnly(next http.Handler) http.Handler {
	base, _ := url.Parse(a.cfg.BaseURL) // valid: config.Load checked it
	want := canonicalHost(base.Host, base.Scheme)
	refusal := &pageError{Status: http.StatusMisdirectedRequest, Title: "Open the app at its own address",
		Message: "Open " + a.cfg.BaseURL + " directly, not through a proxy or another address. This app signs in " +
			"through its development provider, which lets anyone sign in as anyone, so it answers only there. " +
			"To serve the app to others, configure a real provider (AUTH0_* or OIDC_*)."}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var reason string
		switch {
		case r.URL.Path == a.cfg.Prefix()+"/healthz" || r.URL.Path == a.cfg.Prefix()+"/readyz":
		case canonicalHost(r.Host, base.Scheme) != want:
			reason = "the Host header is not APP_BASE_URL's"
		case forwarded(r.Header):
			reason = "a proxy forwarded it"
		}
		if reason == "" {
			next.ServeHTTP(w, r)
			return
		}
		a.log.WarnContext(r.Context(), "request refused: the development provider answers only direct requests to APP_BASE_URL",
			"reason", reason, "host", r.Host, "app_base_url", a.cfg.BaseURL)
		// Refused before the session loads: the page renders without it.
		r = r.WithContext(context.WithValue(r.Context(), noSessionKey, true))
		a.renderError(w, r, refusal)
	})
}

// canonicalHost is hostport as directOnly compares it: the name in lower
// case and without one trailing dot, and the scheme's default port when
// none is given.
func canonicalHost(hostport, scheme string) string {
	u := url.URL{Host: hostport}
	host, port := strings.TrimSuffix(strings.ToLower(u.Hostname()), "."), u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	return net.JoinHostPort(host, port)
}

// forwarded reports whether h holds a header that proxies add. A proxy that
// adds none and names APP_BASE_URL's host (or a plain TCP forwarder) still
// gets through: this check catches the usual proxies, and the loopback-only
// LISTEN_ADDR keeps the others on this machine.
func forwarded(h http.Header) bool {
	for _, k := range []string{"Forwarded", "Via", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
		"X-Forwarded-Port", "X-Forwarded-Server", "X-Real-Ip"} {
		if _, ok := h[k]; ok {
			return true
		}
	}
	return false
}

// recoverPanics turns a panic in a handler into a 500 page and a log line
// with the stack, instead of a dropped connection.
func (a *App) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil || v == http.ErrAbortHandler {
				if v != nil {
					panic(v)
				}
				return
			}
			a.log.ErrorContext(r.Context(), "handler panicked", "panic", fmt.Sprint(v), "stack", string(debug.Stack()),
				"path", r.URL.Path)
			r = r.WithContext(context.WithValue(r.Context(), noSessionKey, true))
			a.renderError(w, r, &pageError{Status: http.StatusInternalServerError, Title: "Something went wrong",
				Message: "Please try again."})
		}()
		next.ServeHTTP(w, r)
	})
}

// maxBody bounds request bodies: the app's forms are a few hundred bytes.
const maxBody = 64 << 10

// limitBody caps every request body at maxBody.
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		next.ServeHTTP(w, r)
	})
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// accessLog writes one line per request and records its metrics. The path
// is logged without its query, which on /callback carries the authorization
// code and state.
func (a *App) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		route := a.routeOf(r)
		next.ServeHTTP(rec, r)
		d := time.Since(start)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		a.metrics.observeRequest(route, r.Method, rec.status, d)
		// The record is built by hand rather than with Logger.Info: on
		// every request, that skips boxing each value and capturing the
		// caller, which no handler here prints.
		h := a.log.Handler()
		if !h.Enabled(r.Context(), slog.LevelInfo) {
			return
		}
		ip, proto := a.client(r)
		line := slog.NewRecord(time.Now(), slog.LevelInfo, "request", 0)
		line.AddAttrs(slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", rec.status),
			slog.Duration("duration", d.Round(time.Microsecond)), slog.String("client_ip", ip))
		if proto != "" {
			line.AddAttrs(slog.String("proto", proto))
		}
		h.Handle(r.Context(), line)
	})
}

// client is who sent r: the connection's peer, or, when the peer is a
// trusted proxy, the last address in X-Forwarded-For that is not a trusted
// proxy, and the proxy's X-Forwarded-Proto.
func (a *App) client(r *http.Request) (ip, proto string) {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr, ""
	}
	addr := peer.Addr().Unmap()
	if !a.trusted(addr) {
		return addr.String(), ""
	}
	if proto = r.Header.Get("X-Forwarded-Proto"); len(proto) > 16 {
		proto = ""
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		addr = hop.Unmap()
		if !a.trusted(addr) {
			break
		}
	}
	return addr.String(), proto
}

func (a *App) trusted(ip netip.Addr) bool {
	for _, p := range a.cfg.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
