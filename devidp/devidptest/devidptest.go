// Package devidptest serves the development OpenID provider in tests, on a
// loopback httptest server, the way go-oidc's oidctest does for its own:
// NewServer serves it as it is, NewServerConfig with options such as
// RequirePAR or DPoPNonce, NewFaulty serves one that misbehaves on demand,
// for tests of relying parties.
package devidptest

import (
	"net/http/httptest"
	"testing"

	"github.com/gologin/gologin/devidp"
)

// NewServer starts a provider with a fresh signing key and the given
// clients, its issuer the server's URL; it is closed when the test ends.
func NewServer(t testing.TB, clients ...devidp.Client) (*httptest.Server, *devidp.Provider) {
	t.Helper()
	return NewServerConfig(t, devidp.Config{Clients: clients})
}

// NewServerConfig starts a provider configured by cfg, on a loopback
// server that is closed when the test ends. Its issuer is the server's
// URL, so cfg.Issuer must be empty; a fresh signing key is made unless
// cfg.Key is set.
func NewServerConfig(t testing.TB, cfg devidp.Config) (*httptest.Server, *devidp.Provider) {
	t.Helper()
	if cfg.Issuer != "" {
		t.Fatalf("devidptest: the issuer is the server's URL, not %s", cfg.Issuer)
	}
	if cfg.Key == nil {
		key, err := devidp.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		cfg.Key = key
	}
	srv := httptest.NewUnstartedServer(nil)
	cfg.Issuer = "http://" + srv.Listener.Addr().String()
	idp, err := devidp.New(cfg)
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	srv.Config.Handler = idp
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, idp
}
