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
	pages.Handle("GET /profile", a.auth.RequireUser(http.HandlerFunc(a.handleProfile)))
	pages.HandleFunc("/", a.handleNotFound)

	// Routes that must work without the session store.
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", a.handleHealthz)
	mux.HandleFunc("GET /readyz", a.handleReadyz)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(staticFS)))
	if a.devidp != nil {
		mux.Handle("/devidp/", a.devidp)
	}
	mux.Handle("/", a.sessions.LoadAndSave(a.auth.ExpireIdle(pages)))

	var h http.Handler = mux
	h = http.NewCrossOriginProtection().Handler(h)
	h = securityHeaders(h)
	h = limitBody(h)
	h = a.accessLog(h)
	h = requestID(h)
	return h
}
