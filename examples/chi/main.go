// Command chi is a small chi app that signs users in with an OpenID Connect
// provider through the login package. See README.md.
package main

import (
	"cmp"
	"context"
	"html/template"
	"log"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/go-chi/chi/v5"

	"github.com/gologin/gologin/login"
	"github.com/gologin/gologin/sessionstore"
)

func main() {
	baseURL := strings.TrimSuffix(cmp.Or(os.Getenv("APP_BASE_URL"), "http://localhost:3000"), "/")
	base, err := url.Parse(baseURL)
	if err != nil {
		log.Fatalf("APP_BASE_URL: %v", err)
	}

	sessions := scs.New()
	sessions.Store = sessionstore.NewMemory()
	sessions.Codec = sessionstore.Codec{} // lets the store find sessions by provider sid and user
	sessions.Cookie.Secure = base.Scheme == "https"

	auth, err := login.New(login.Config{
		Issuer:                os.Getenv("OIDC_ISSUER"),
		ClientID:              os.Getenv("OIDC_CLIENT_ID"),
		ClientSecret:          os.Getenv("OIDC_CLIENT_SECRET"),
		RedirectURL:           baseURL + "/callback",
		PostLogoutRedirectURL: baseURL + "/",
		Sessions:              sessions,
	})
	if err != nil {
		log.Fatalf("%v (set OIDC_ISSUER, OIDC_CLIENT_ID and OIDC_CLIENT_SECRET)", err)
	}
	// Not fatal: the handlers retry discovery, and /login answers 503 meanwhile.
	if err := auth.Discover(context.Background()); err != nil {
		log.Printf("provider not reachable yet: %v", err)
	}

	router := chi.NewRouter()
	router.Use(sessions.LoadAndSave)
	router.Get("/", func(w http.ResponseWriter, r *http.Request) {
		render(w, "home", newPage(auth, r))
	})
	router.Get("/login", auth.Login)
	router.Get("/callback", auth.Callback)
	router.Post("/logout", auth.Logout)
	router.With(auth.RequireUser).Get("/account", func(w http.ResponseWriter, r *http.Request) {
		render(w, "account", newPage(auth, r))
	})

	srv := &http.Server{
		Addr:              base.Host, // e.g. localhost:3000
		Handler:           router,
		ReadHeaderTimeout: 10 * time.Second,
	}
	log.Printf("serving %s", baseURL)
	log.Fatal(srv.ListenAndServe())
}

// page is what the templates show.
type page struct {
	User      *login.User // nil for guests
	CSRFField string
	CSRFToken string
}

func newPage(auth *login.Auth, r *http.Request) page {
	p := page{CSRFField: login.CSRFField, CSRFToken: auth.CSRFToken(r)}
	if u, ok := auth.User(r); ok {
		p.User = &u
	}
	return p
}

// html/template escapes the user's name and email, which come from the
// provider and may hold anything.
var templates = template.Must(template.New("").Parse(`
{{define "home"}}<!doctype html>
<title>Home</title>
{{with .User}}<p>Welcome {{.Name}}! See <a href="/account">your account</a>.</p>{{template "logout" $}}
{{else}}<p>Welcome Guest. <a href="/login">Log in</a></p>{{end}}
{{end}}

{{define "account"}}<!doctype html>
<title>Account</title>
<p>Name: {{.User.Name}}<br>Email: {{.User.Email}}<br>Subject: {{.User.Subject}}</p>
<p><a href="/">Home</a></p>{{template "logout" .}}
{{end}}

{{define "logout"}}<form method="post" action="/logout">
<input type="hidden" name="{{.CSRFField}}" value="{{.CSRFToken}}">
<button>Log out</button>
</form>{{end}}
`))

func render(w http.ResponseWriter, name string, p page) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// Pages carry the user's details and CSRF token: keep them out of caches.
	w.Header().Set("Cache-Control", "no-store")
	if err := templates.ExecuteTemplate(w, name, p); err != nil {
		log.Print(err)
	}
}
