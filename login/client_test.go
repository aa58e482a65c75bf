package login

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/gologin/gologin/sessionstore"
)

// TestClientCallsAreBounded: the API client Client returns gives up after
// Config.Timeout on an API that never answers, even though the request's
// context has no deadline and Config.HTTPClient has no Timeout.
func TestClientCallsAreBounded(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer api.Close()
	store := sessionstore.NewMemory()
	defer store.Close()
	sm := scs.New()
	sm.Store = store
	sm.Codec = sessionstore.Codec{}
	a, err := New(Config{Issuer: "https://idp.example", ClientID: "c", RedirectURL: "https://app.example/callback",
		Sessions: sm, Timeout: 50 * time.Millisecond, HTTPClient: &http.Client{}})
	if err != nil {
		t.Fatal(err)
	}

	mux := http.NewServeMux()
	// signin stands for a successful callback.
	mux.HandleFunc("/signin", func(w http.ResponseWriter, r *http.Request) {
		if err := sm.RenewToken(r.Context()); err != nil {
			t.Error(err)
		}
		sm.Put(r.Context(), userKey, User{Subject: "u1", Name: "Ada"})
		sm.Put(r.Context(), sinceKey, time.Now())
		if err := a.saveTokens(r.Context(), sm.Token(r.Context()), tokens{AccessToken: "at"}, "", "u1", time.Now().Add(time.Hour)); err != nil {
			t.Error(err)
		}
	})
	callErr := make(chan error, 1)
	mux.HandleFunc("/api", func(w http.ResponseWriter, r *http.Request) {
		c, err := a.Client(r)
		if err != nil {
			callErr <- err
			return
		}
		go func() {
			resp, err := c.Get(api.URL)
			if err == nil {
				resp.Body.Close()
			}
			callErr <- err
		}()
	})
	h := sm.LoadAndSave(mux)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/signin", nil))
	req := httptest.NewRequest("GET", "/api", nil)
	for _, c := range rec.Result().Cookies() {
		req.AddCookie(c)
	}
	h.ServeHTTP(httptest.NewRecorder(), req)

	select {
	case err := <-callErr:
		if !isTimeout(err) {
			t.Fatalf("call to an API that never answers: %v, want a timeout", err)
		}
	case <-time.After(time.Minute): // a guard against hanging, not a timing check
		t.Fatal("the API call is still waiting")
	}
}
