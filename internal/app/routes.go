package app

import (
	"net/http"
)

// routes is every route of the app in one place.
func (a *App) routes() http.Handler {
	// Pages that use the session.
	pages := http.NewServeMux()
	pages.HandleFunc("GET /{$}", a.handleIndex)
	pages.HandleFunc("GET /login", a.auth.Login)
	pages.HandleFunc("GET /callback", a.auth.Callback)
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
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(staticFS)))
	if a.devidp != nil {
		mux.Handle("/devidp/", a.devidp)
	}
	if a.cfg.MetricsAddr == "" {
		mux.Handle("GET /metrics", a.metrics.handler())
	}
	mux.Handle("/", a.sessions.LoadAndSave(a.auth.ExpireIdle(pages)))

	a.mux, a.pages = mux, pages

	var h http.Handler = mux
	cop := http.NewCrossOriginProtection()
	cop.AddInsecureBypassPattern("POST /backchannel-logout")
	h = cop.Handler(h)
	h = securityHeaders(h)
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
