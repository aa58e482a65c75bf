package login

import (
	"context"
	"testing"

	"github.com/alexedwards/scs/v2"

	"github.com/gologin/gologin/sessionstore"
)

func TestAuth0Preset(t *testing.T) {
	for _, domain := range []string{"dev-abc.us.auth0.com", "https://dev-abc.us.auth0.com/", "dev-abc.us.auth0.com/"} {
		cfg := Auth0(domain, "https://api.example")
		if cfg.Issuer != "https://dev-abc.us.auth0.com/" || cfg.TokenAuthMethod != "client_secret_post" ||
			cfg.ProviderLogout != Auth0Logout || cfg.AuthParams.Get("audience") != "https://api.example" {
			t.Errorf("Auth0(%q): %+v", domain, cfg)
		}
	}
	if cfg := Auth0("dev-abc.us.auth0.com", ""); cfg.AuthParams != nil {
		t.Errorf("Auth0 without an audience sends %v", cfg.AuthParams)
	}

	cfg := Auth0("dev-abc.us.auth0.com", "")
	cfg.ClientID, cfg.ClientSecret = "client", "secret"
	cfg.RedirectURL, cfg.PostLogoutRedirectURL = "https://app.example/callback", "https://app.example/"
	cfg.Sessions = scs.New()
	cfg.Sessions.Store = sessionstore.NewMemory()
	cfg.Sessions.Codec = sessionstore.Codec{}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := "https://dev-abc.us.auth0.com/v2/logout?client_id=client&returnTo=https%3A%2F%2Fapp.example%2F"
	if got := a.logoutURL(context.Background(), ""); got != want {
		t.Errorf("logout through the Auth0 preset goes to %s, want %s", got, want)
	}
}
