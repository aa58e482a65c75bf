// Command quickstart adds sign-in to a net/http app with the login package:
// the program README.md shows under "Add login to your own Go app".
package main

import (
	"fmt"
	"html"
	"log"
	"net/http"

	"github.com/alexedwards/scs/v2"

	"github.com/gologin/gologin/login"
	"github.com/gologin/gologin/sessionstore"
	"github.com/gologin/gologin/sessionstore/sqlitestore"
)

func main() {
	cfg := login.Config{Issuer: "http://localhost:9000"} // offline: go run ./cmd/devidp
	// cfg := login.Auth0("dev-abc123.us.auth0.com", "") // or your Auth0 tenant
	cfg.ClientID, cfg.ClientSecret = "demo", "demo-secret"
	cfg.RedirectURL = "http://localhost:3000/callback"
	cfg.PostLogoutRedirectURL = "http://localhost:3000/"

	store, err := sqlitestore.Open("sessions.db") // sessions survive restarts
	if err != nil {
		log.Fatal(err)
	}
	h, err := newHandler(cfg, store)
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(http.ListenAndServe("127.0.0.1:3000", h))
}

func newHandler(cfg login.Config, store sessionstore.Store) (http.Handler, error) {
	cfg.Sessions = scs.New()
	cfg.Sessions.Store = store
	cfg.Sessions.Codec = sessionstore.Codec{} // indexes sessions for back-channel logout
	auth, err := login.New(cfg)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", auth.Login)
	mux.HandleFunc("GET /callback", auth.Callback)
	mux.HandleFunc("POST /logout", auth.Logout)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		u, ok := auth.User(r)
		if !ok {
			fmt.Fprint(w, `<p>Welcome Guest. <a href="/login">Log in</a></p>`)
			return
		}
		fmt.Fprintf(w, `<p>Welcome %s!</p><form method="post" action="/logout">`+
			`<input type="hidden" name="%s" value="%s"><button>Log out</button></form>`,
			html.EscapeString(u.Name), login.CSRFField, auth.CSRFToken(r))
	})
	// Guests who ask for /account sign in first and come back.
	mux.Handle("GET /account", auth.RequireUser(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := auth.User(r)
		fmt.Fprintf(w, "Signed in as %s", html.EscapeString(u.Email))
	})))
	return cfg.Sessions.LoadAndSave(mux), nil
}
