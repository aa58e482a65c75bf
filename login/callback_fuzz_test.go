package login

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/alexedwards/scs/v2"

	"github.com/gologin/gologin/devidp"
	"github.com/gologin/gologin/devidp/devidptest"
	"github.com/gologin/gologin/sessionstore"
)

// FuzzCallback sends arbitrary query strings and cookies to the callback,
// with or without the state of a real pending login, against a real
// provider. Whatever arrives, the answer is an error page with a 4xx or 5xx
// status, never a panic and never a signed-in session.
func FuzzCallback(f *testing.F) {
	_, idp := devidptest.NewServer(f, devidp.Client{ID: "app", Secret: "s", RedirectURIs: []string{"http://app.test/callback"}})

	store := sessionstore.NewMemory()
	defer store.Close()
	sm := scs.New()
	sm.Store = store
	sm.Codec = sessionstore.Codec{}
	var status int
	a, err := New(Config{Issuer: idp.Issuer(), ClientID: "app", ClientSecret: "s", RedirectURL: "http://app.test/callback",
		Sessions: sm, ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			status = asError(err).Status
			w.WriteHeader(status)
		}})
	if err != nil {
		f.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/login", a.Login)
	mux.HandleFunc("/callback", a.Callback)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := a.User(r); ok {
			w.Write([]byte("signed in"))
		}
	})
	h := sm.LoadAndSave(mux)

	for _, seed := range []struct {
		query, cookie string
		withState     bool
	}{
		{"code=abc", "", true},
		{"code=abc&iss=http%3A%2F%2Fevil", "", true},
		{"error=access_denied&error_description=%3Cb%3Eno%3C%2Fb%3E", "", true},
		{"state=x&code=y", "session=abc", false},
		{"state=%00&code=%ff", "session=" + strings.Repeat("A", 100), false},
		{"code=a&code=b&state=&state=", "", true},
	} {
		f.Add(seed.query, seed.cookie, seed.withState)
	}
	f.Fuzz(func(t *testing.T, query, cookie string, withState bool) {
		// Start a real login to have a session with a pending state.
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/login", nil))
		loc, _ := url.Parse(rec.Header().Get("Location"))
		sessionCookie := rec.Header().Get("Set-Cookie")
		sessionCookie, _, _ = strings.Cut(sessionCookie, ";")

		q := query
		if withState {
			q += "&state=" + url.QueryEscape(loc.Query().Get("state"))
		}
		req := httptest.NewRequest("GET", "/callback", nil)
		req.URL.RawQuery = q
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		} else {
			req.Header.Set("Cookie", sessionCookie)
		}
		status = 0
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code < 400 || rec.Code != status {
			t.Fatalf("callback ?%s answered %d (error handler saw %d), want an error", q, rec.Code, status)
		}
		req = httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Cookie", req.Header.Get("Cookie"))
		rec2 := httptest.NewRecorder()
		for _, c := range rec.Result().Cookies() {
			req.AddCookie(c)
		}
		h.ServeHTTP(rec2, req)
		if rec2.Body.String() == "signed in" {
			t.Fatalf("callback ?%s signed someone in", q)
		}
	})
}
