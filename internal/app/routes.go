package app

import (
	"context"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strings"

	"github.com/gologin/gologin/internal/gateway"
)

// routes is every route of the app in one place. The gateway has the same
// routes under its prefix, and sends the rest to the upstream.
func (a *App) routes() http.Handler {
	p := a.cfg.Prefix()
	// Pages that use the session.
	pages := http.NewServeMux()
	pages.HandleFunc("GET "+p+"/{$}", a.handleIndex)
	pages.HandleFunc("GET "+p+"/login", a.auth.Login)
	pages.HandleFunc("GET "+p+"/callback", a.auth.Callback)
	// OIDC_RESPONSE_MODE=form_post: the provider's page posts the response.
	pages.HandleFunc("POST "+p+"/callback", a.auth.Callback)
	// Signing out goes through the provider the user signed in with.
	pages.HandleFunc("POST "+p+"/logout", func(w http.ResponseWriter, r *http.Request) { a.providers.For(r).Logout(w, r) })
	pages.HandleFunc("GET "+p+"/logout", a.handleLogoutPage)
	pages.HandleFunc("POST "+p+"/logout/all", func(w http.ResponseWriter, r *http.Request) { a.providers.For(r).LogoutEverywhere(w, r) })
	pages.Handle("GET "+p+"/userinfo", a.auth.RequireUser(http.HandlerFunc(a.handleUserinfo)))
	pages.Handle("GET "+p+"/profile", a.auth.RequireUser(http.HandlerFunc(a.handleProfile)))
	if len(a.providers) > 1 {
		pages.HandleFunc("GET "+p+"/sign_in", a.handleSignIn)
		for _, auth := range a.providers[1:] {
			pages.HandleFunc("GET "+p+"/login/"+auth.Name(), auth.Login)
			pages.HandleFunc("GET "+p+"/callback/"+auth.Name(), auth.Callback)
			pages.HandleFunc("POST "+p+"/callback/"+auth.Name(), auth.Callback)
		}
	}
	if a.gateway != nil {
		// Forward auth, for proxies that ask before they pass a request on.
		pages.HandleFunc(p+"/auth", a.gateway.Check)
		pages.HandleFunc(p+"/verify", a.gateway.Verify)
		pages.HandleFunc(p+"/envoy/", a.gateway.ExtAuthz)
	}
	pages.HandleFunc(p+"/", a.handleNotFound)

	// Routes that must work without the session store.
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+p+"/healthz", a.handleHealthz)
	mux.HandleFunc("GET "+p+"/readyz", a.handleReadyz)
	// Server to server, without cookies: the signed logout token is the proof.
	mux.HandleFunc("POST "+p+"/backchannel-logout", a.auth.BackchannelLogout)
	for _, auth := range a.providers[1:] {
		// Each provider's logout tokens are checked with its own keys, and
		// end only its own users' sessions.
		mux.HandleFunc("POST "+p+"/backchannel-logout/"+auth.Name(), auth.BackchannelLogout)
	}
	mux.Handle("GET "+p+"/static/", a.staticFiles())
	if a.gateway == nil {
		// Browsers ask for /favicon.ico whatever the pages say: answer with
		// the icon, not a 404 that each visit would log as a failure.
		mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
			http.ServeFileFS(w, r, staticFS, "favicon.svg")
		})
	}
	if a.devidp != nil {
		mux.Handle(p+"/devidp/", a.devidp)
	}
	// No /metrics: MetricsHandler serves it on a listener of its own, out
	// of reach of whoever reaches the app.
	mux.Handle(p+"/", a.sessions.LoadAndSave(a.auth.ExpireIdle(pages)))

	a.mux, a.pages = mux, pages

	var h http.Handler = mux
	cop := http.NewCrossOriginProtection()
	cop.AddInsecureBypassPattern("POST " + p + "/backchannel-logout")
	cop.AddInsecureBypassPattern("POST " + p + "/backchannel-logout/{provider}")
	// Posted by the provider's page, from its origin: the state, bound to
	// this browser's attempt cookie, is the proof (form_post).
	cop.AddInsecureBypassPattern("POST " + p + "/callback")
	cop.AddInsecureBypassPattern("POST " + p + "/callback/{provider}")
	if a.gateway != nil {
		// A proxy asks in the method of the request it is about (Envoy, and
		// nginx for some), which may be another site's form post: the
		// answer changes nothing, and the proxy's request is the
		// upstream's to judge.
		for _, fa := range []string{"/auth", "/verify", "/envoy/"} {
			cop.AddInsecureBypassPattern(p + fa)
		}
	}
	h = cop.Handler(h)
	headers := securityHeaderValues
	if a.cfg.Secure {
		headers = append(slices.Clip(headers), hsts)
	}
	h = securityHeaders(headers, h)
	h = limitBody(h)
	if a.gateway != nil {
		// The upstream's requests get none of the above: its pages have
		// their own headers, uploads their own limits, and its APIs may
		// be called across origins.
		//
		// Not a ServeMux: it would redirect paths such as //x to their
		// clean form, which the upstream may read otherwise. The gateway
		// proxies them as they are, and reads them strictly.
		own := gateway.Bounded(h)
		proxy := a.sessions.LoadAndSave(a.auth.ExpireIdle(a.gateway))
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if a.ownPath(r) {
				own.ServeHTTP(w, r)
				return
			}
			proxy.ServeHTTP(w, r)
		})
	}
	if a.devidp != nil {
		h = a.directOnly(h)
	}
	h = a.recoverPanics(h)
	h = a.accessLog(h)
	h = requestID(h)
	return h
}

// ownPath reports whether r is for the gateway's own routes.
func (a *App) ownPath(r *http.Request) bool {
	p := a.cfg.Prefix()
	return r.URL.Path == p || strings.HasPrefix(r.URL.Path, p+"/")
}

// routeOf is the pattern that serves r, for metrics: a fixed set of values,
// whatever paths clients ask for.
func (a *App) routeOf(r *http.Request) string {
	if a.gateway != nil && !a.ownPath(r) {
		return "upstream"
	}
	_, pattern := a.mux.Handler(r)
	if pattern == a.cfg.Prefix()+"/" {
		_, pattern = a.pages.Handler(r)
	}
	if pattern == "" {
		return "unmatched"
	}
	return pattern
}

// staticFiles serves the embedded files under /static/. A directory, or a
// name that is not there, gets the app's not-found page rather than a
// listing, which would show what else is deployed there.
func (a *App) staticFiles() http.Handler {
	files := http.StripPrefix(a.cfg.Prefix()+"/static/", http.FileServerFS(staticFS))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rel, _ := strings.CutPrefix(r.URL.Path, a.cfg.Prefix()+"/static/")
		name := path.Clean("/" + rel)[1:]
		if name == "" {
			name = "."
		}
		if fi, err := fs.Stat(staticFS, name); err != nil || fi.IsDir() {
			// Outside the session: the page renders without it.
			a.handleNotFound(w, r.WithContext(context.WithValue(r.Context(), noSessionKey, true)))
			return
		}
		files.ServeHTTP(w, r)
	})
}
