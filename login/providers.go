package login

import (
	"errors"
	"fmt"
	"net/http"
)

// indexKey is the form in which this provider's sessions are indexed by sid
// and sub: qualified by Config.Name, so that one provider's back-channel
// logout, or a user's "sign out everywhere", never ends the sessions of a
// user of another provider who happens to have the same sid or sub.
func (a *Auth) indexKey(v string) string {
	if a.cfg.Name == "" || v == "" {
		return v
	}
	return a.cfg.Name + "\x00" + v
}

// Name is Config.Name.
func (a *Auth) Name() string { return a.cfg.Name }

// Providers are the Auths of an app that offers several providers, sharing
// one Sessions and Store, the first being the default. Make them with
// NewProviders.
type Providers []*Auth

// NewProviders groups auths, which must have distinct Names, so that each
// sees the users the others signed in (User, RequireUser, Require). An Auth
// on its own sees only its own users: a session signed in by a provider
// that is no longer configured, or has been renamed, is a guest's.
func NewProviders(auths ...*Auth) (Providers, error) {
	if len(auths) == 0 {
		return nil, errors.New("login: NewProviders needs an Auth")
	}
	names := make(map[string]bool, len(auths))
	for _, a := range auths {
		if names[a.cfg.Name] {
			return nil, fmt.Errorf("login: two providers are named %q", a.cfg.Name)
		}
		names[a.cfg.Name] = true
	}
	for _, a := range auths {
		a.peers = names
	}
	return Providers(auths), nil
}

// sees reports whether a's User returns the users of provider.
func (a *Auth) sees(provider string) bool {
	return provider == a.cfg.Name || a.peers[provider]
}

// For returns the Auth that r's user signed in with, or for a guest the
// first: its methods that use the user's tokens (AccessToken, Client,
// Logout) act on that provider.
func (ps Providers) For(r *http.Request) *Auth {
	if u, ok := ps[0].User(r); ok {
		if a := ps.Named(u.Provider); a != nil {
			return a
		}
	}
	return ps[0]
}

// Named returns the Auth of that Name, or nil.
func (ps Providers) Named(name string) *Auth {
	for _, a := range ps {
		if a.cfg.Name == name {
			return a
		}
	}
	return nil
}
