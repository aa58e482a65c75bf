package login

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/alexedwards/scs/v2"

	"github.com/gologin/gologin/devidp/devidptest"
	"github.com/gologin/gologin/sessionstore"
)

func TestLoginWithAddsParameters(t *testing.T) {
	_, idp := devidptest.NewServer(t)
	sm := scs.New()
	sm.Store = sessionstore.NewMemory()
	sm.Codec = sessionstore.Codec{}
	a, err := New(Config{Issuer: idp.Issuer(), ClientID: "c", RedirectURL: "http://app.test/callback", Sessions: sm,
		AuthParams: url.Values{"audience": {"https://api.example"}, "prompt": {"none"}}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := a.LoginWith(url.Values{"prompt": {"login"}, "login_hint": {"ada@example.com"}, "max_age": {"300"}})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	sm.LoadAndSave(h).ServeHTTP(rec, httptest.NewRequest("GET", "/login", nil))
	loc, err := url.Parse(rec.Header().Get("Location"))
	if rec.Code != http.StatusFound || err != nil {
		t.Fatalf("LoginWith handler: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	for k, want := range map[string]string{
		"audience": "https://api.example", "prompt": "login", "login_hint": "ada@example.com", "max_age": "300",
	} {
		if got := loc.Query().Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	for _, bad := range []url.Values{{"redirect_uri": {"https://evil.example"}}, {"max_age": {"soon"}}} {
		if _, err := a.LoginWith(bad); err == nil {
			t.Errorf("LoginWith(%v) accepted", bad)
		}
	}
}

func TestNewRequiresTheIndexingCodec(t *testing.T) {
	sm := scs.New()
	sm.Store = sessionstore.NewMemory() // but scs's default gob codec
	if _, err := New(Config{Issuer: "https://idp.example", ClientID: "c", RedirectURL: "https://app.example/callback", Sessions: sm}); err == nil {
		t.Fatal("New accepted a session manager whose codec cannot index sessions")
	}
}
