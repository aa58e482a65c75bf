package login_test

import (
	"fmt"
	"html"
	"log"
	"net/http"
	"net/url"

	"github.com/alexedwards/scs/v2"

	"github.com/gologin/gologin/login"
	"github.com/gologin/gologin/sessionstore"
	"github.com/gologin/gologin/sessionstore/sqlitestore"
)

// Add sign-in to a net/http app: the login handlers, a protected page and
// a page that greets the signed-in user.
func Example() {
	store, err := sqlitestore.Open("sessions.db")
	if err != nil {
		log.Fatal(err)
	}
	sessions := scs.New()
	sessions.Store = store
	sessions.Codec = sessionstore.Codec{} // lets back-channel logout find sessions by sid and sub

	auth, err := login.New(login.Config{
		Issuer:                "https://accounts.example.com",
		ClientID:              "my-app",
		ClientSecret:          "my-secret",
		RedirectURL:           "http://localhost:3000/callback",
		PostLogoutRedirectURL: "http://localhost:3000/",
		Sessions:              sessions,
	})
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", auth.Login)
	mux.HandleFunc("GET /callback", auth.Callback)
	mux.HandleFunc("POST /logout", auth.Logout)
	mux.Handle("GET /account", auth.RequireUser(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := auth.User(r)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "Hello %s (%s)", u.Name, u.Email)
	})))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		if u, ok := auth.User(r); ok {
			// State-changing forms carry the session's CSRF token.
			fmt.Fprintf(w, `Welcome %s! <form method="post" action="/logout">`+
				`<input type="hidden" name="%s" value="%s"><button>Log out</button></form>`,
				html.EscapeString(u.Name), login.CSRFField, auth.CSRFToken(r))
			return
		}
		fmt.Fprint(w, `Welcome Guest <a href="/login">Log in</a>`)
	})
	log.Fatal(http.ListenAndServe("127.0.0.1:3000", sessions.LoadAndSave(mux)))
}

// Only local paths survive as the place to return to after sign-in.
func ExampleSafeReturnTo() {
	for _, s := range []string{"/account?tab=2", "//evil.example", "https://evil.example/", "/\\evil.example", "/%2F%2Fevil.example"} {
		_, ok := login.SafeReturnTo(s)
		fmt.Printf("%-22q %v\n", s, ok)
	}
	// Output:
	// "/account?tab=2"       true
	// "//evil.example"       false
	// "https://evil.example/" false
	// "/\\evil.example"      false
	// "/%2F%2Fevil.example"  false
}

// A login handler that asks the provider to show its sign-in page again
// and to accept only a sign-in of the last five minutes.
func ExampleAuth_LoginWith() {
	sessions := scs.New()
	sessions.Store = sessionstore.NewMemory()
	sessions.Codec = sessionstore.Codec{}
	auth, err := login.New(login.Config{
		Issuer:      "https://accounts.example.com",
		ClientID:    "my-app",
		RedirectURL: "http://localhost:3000/callback",
		Sessions:    sessions,
	})
	if err != nil {
		log.Fatal(err)
	}
	reauth, err := auth.LoginWith(url.Values{"prompt": {"login"}, "max_age": {"300"}})
	fmt.Println(reauth != nil, err)
	// Parameters the flow sets itself are refused.
	_, err = auth.LoginWith(url.Values{"state": {"mine"}})
	fmt.Println(err)
	// Output:
	// true <nil>
	// login: authorization parameter "state" is set by the login flow itself
}

// Who may pass, decided from the user's claims: Require sends guests to
// sign in, and answers 403 to a signed-in user the rule refuses.
func ExampleAuth_Require() {
	sessions := scs.New()
	sessions.Store = sessionstore.NewMemory()
	sessions.Codec = sessionstore.Codec{}
	auth, err := login.New(login.Config{
		Issuer: "https://accounts.example.com", ClientID: "my-app", ClientSecret: "my-secret",
		RedirectURL: "http://localhost:3000/callback", Sessions: sessions,
	})
	if err != nil {
		log.Fatal(err)
	}
	admins := login.Rule{EmailDomains: []string{"example.com"}, Groups: []string{"admins"}}
	mux := http.NewServeMux()
	mux.Handle("GET /admin/", auth.Require(admins)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "the admin pages")
	})))

	// The rule on its own, for a user the provider described so:
	ada := login.User{Email: "ada@example.com", ClaimsJSON: []byte(`{"email_verified":true,"groups":["admins","staff"]}`)}
	grace := login.User{Email: "grace@example.org", ClaimsJSON: []byte(`{"groups":["admins"]}`)}
	fmt.Println(admins.Allows(ada), admins.Allows(grace))
	// Output: true false
}
