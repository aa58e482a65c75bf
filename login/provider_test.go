package login

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/alexedwards/scs/v2"
	"golang.org/x/oauth2"

	"github.com/gologin/gologin/devidp"
	"github.com/gologin/gologin/sessionstore"
)

func TestAuthStyle(t *testing.T) {
	tests := []struct {
		preferred  string
		advertised []string
		want       oauth2.AuthStyle
	}{
		{"", nil, oauth2.AuthStyleInHeader},
		{"", []string{"client_secret_post"}, oauth2.AuthStyleInParams},
		{"", []string{"client_secret_post", "client_secret_basic"}, oauth2.AuthStyleInHeader},
		{"client_secret_post", []string{"client_secret_basic", "client_secret_post"}, oauth2.AuthStyleInParams},
		{"client_secret_post", []string{"client_secret_basic"}, oauth2.AuthStyleInHeader},
		{"", []string{"private_key_jwt"}, oauth2.AuthStyleAutoDetect},
	}
	for _, tt := range tests {
		if got := authStyle(tt.preferred, tt.advertised); got != tt.want {
			t.Errorf("authStyle(%q, %q) = %v, want %v", tt.preferred, tt.advertised, got, tt.want)
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
