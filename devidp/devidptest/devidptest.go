// Package devidptest serves the development OpenID provider in tests, on a
// loopback httptest server, the way go-oidc's oidctest does for its own:
// NewServer serves it as it is, NewFaulty serves one that misbehaves on
// demand, for tests of relying parties.
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
	key, err := devidp.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	idp, err := devidp.New(devidp.Config{Issuer: "http://" + srv.Listener.Addr().String(), Key: key, Clients: clients})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = idp
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, idp
}
