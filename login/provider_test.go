package login

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/alexedwards/scs/v2"

	"github.com/gologin/gologin/devidp"
	"github.com/gologin/gologin/sessionstore"
)

func TestAuthMethod(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		cfg        Config
		advertised []string
		want       string // "" for an error
	}{
		{Config{}, nil, ClientSecretBasic},
		{Config{}, []string{ClientSecretPost}, ClientSecretPost},
		{Config{}, []string{ClientSecretPost, ClientSecretBasic}, ClientSecretBasic},
		{Config{TokenAuthMethod: ClientSecretPost}, []string{ClientSecretBasic, ClientSecretPost}, ClientSecretPost},
		{Config{TokenAuthMethod: ClientSecretPost}, []string{ClientSecretBasic}, ClientSecretBasic},
		{Config{ClientSecret: strings.Repeat("s", 32)}, []string{ClientSecretJWT}, ClientSecretJWT},
		{Config{ClientSecret: "short"}, []string{ClientSecretJWT}, ""}, // HS256 wants 256 bits
		{Config{}, []string{PrivateKeyJWT}, ""},
		{Config{ClientKey: key}, []string{ClientSecretBasic, PrivateKeyJWT}, PrivateKeyJWT},
		{Config{ClientKey: key}, []string{ClientSecretBasic}, ""},
		{Config{ClientKey: key}, nil, ""},
	}
	for _, tt := range tests {
		got, err := authMethod(&tt.cfg, tt.advertised)
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("authMethod(key %v, %q, %q) = %q, %v; want %q", tt.cfg.ClientKey != nil, tt.cfg.TokenAuthMethod, tt.advertised, got, err, tt.want)
		}
	}
}

// TestDiscoveryIsShared: concurrent first uses make one discovery request
// between them, and the provider's status can be read meanwhile.
func TestDiscoveryIsShared(t *testing.T) {
	key, err := devidp.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	idp, err := devidp.New(devidp.Config{Issuer: "http://" + srv.Listener.Addr().String(), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var hits atomic.Int32
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/openid-configuration") {
			hits.Add(1)
			<-release
		}
		idp.ServeHTTP(w, r)
	})
	srv.Start()
	defer srv.Close()
	sm := scs.New()
	sm.Store = sessionstore.NewMemory()
	sm.Codec = sessionstore.Codec{}
	a, err := New(Config{Issuer: idp.Issuer(), ClientID: "c", RedirectURL: "http://app.test/callback", Sessions: sm})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 5)
	for range 5 {
		go func() { errs <- a.Discover(context.Background()) }()
	}
	for hits.Load() == 0 {
		runtime.Gosched() // until the attempt is in flight
	}
	if ready, _ := a.ProviderStatus(); ready { // must not wait for the attempt
		t.Fatal("ready before discovery finished")
	}
	close(release)
	for range 5 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("5 concurrent first uses made %d discovery requests, want 1", n)
	}
}
