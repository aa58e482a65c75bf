package app

import (
	"context"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strings"
)

// routes is every route of the app in one place.
func (a *App) routes() http.Handler {
	// Pages that use the session.
	pages := http.NewServeMux()
	pages.HandleFunc("GET /{$}", a.handleIndex)
	pages.HandleFunc("GET /login", a.auth.Login)
	pages.HandleFunc("GET /callback", a.auth.Callback)
	// OIDC_RESPONSE_MODE=form_post: the provider's page posts the response.
	pages.HandleFunc("POST /callback", a.auth.Callback)
	pages.HandleFunc("POST /logout", a.auth.Logout)
	pages.HandleFunc("GET /logout", a.handleLogoutPage)
	pages.HandleFunc("POST /logout/all", a.auth.LogoutEverywhere)
	pages.Handle("GET /userinfo", a.auth.RequireUser(http.HandlerFunc(a.handleUserinfo)))
	pages.Handle("GET /profile", a.auth.RequireUser(http.HandlerFunc(a.handleProfile)))
	pages.HandleFunc("/", a.handleNotFound)

	// Routes that must work without the session store.
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", a.handleHealthz)
	mux.HandleFunc("GET /readyz", a.handleReadyz)
	// Server to server, without cookies: the signed logout token is the proof.
	mux.HandleFunc("POST /backchannel-logout", a.auth.BackchannelLogout)
	mux.Handle("GET /static/", a.staticFiles())
	// Browsers ask for /favicon.ico whatever the pages say: answer with the
	// icon, not a 404 that each visit would log as a failure.
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, staticFS, "favicon.svg")
	})
	if a.devidp != nil {
		mux.Handle("/devidp/", a.devidp)
	}
	// No /metrics: MetricsHandler serves it on a listener of its own, out
	// of reach of whoever reaches the app.
	mux.Handle("/", a.sessions.LoadAndSave(a.auth.ExpireIdle(pages)))

	a.mux, a.pages = mux, pages

	var h http.Handler = mux
	cop := http.NewCrossOriginProtection()
	cop.AddInsecureBypassPattern("POST /backchannel-logout")
	// Posted by the provider's page, from its origin: the state, bound to
	// this browser's attempt cookie, is the proof (form_post).
	cop.AddInsecureBypassPattern("POST /callback")
	h = cop.Handler(h)
	if a.devidp != nil {
		h = a.directOnly(h)
	}
	headers := securityHeaderValues
	if a.cfg.Secure {
		headers = append(slices.Clip(headers), hsts)
	}
	h = securityHeaders(headers, h)
	h = limitBody(h)
	h = a.recoverPanics(h)
	h = a.accessLog(h)
	h = requestID(h)
	return h
}

// routeOf is the pattern that serves r, for metrics: a fixed set of values,
// whatever paths clients ask for.
func (a *App) routeOf(r *http.Request) string {
	_, pattern := a.mux.Handler(r)
	if pattern == "/" {
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
	files := http.StripPrefix("/static/", http.FileServerFS(staticFS))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rel, _ := strings.CutPrefix(r.URL.Path, "/static/")
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
