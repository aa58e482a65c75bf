package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/gologin/gologin/internal/httpserver"
	"github.com/gologin/gologin/login"
	"github.com/gologin/gologin/sessionstore"
)

// TestSlowClientsAreLetGo: the gateway's server bounds no whole request,
// so a guest that announces a body and never sends it, or sends a body
// the upstream reads, must still be let go once it stops making progress.
func TestSlowClientsAreLetGo(t *testing.T) {
	readTimeout, writeTimeout = 100*time.Millisecond, 100*time.Millisecond
	t.Cleanup(func() { readTimeout, writeTimeout = httpserver.ReadTimeout, httpserver.WriteTimeout })

	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	t.Cleanup(up.Close)
	sm := scs.New()
	sm.Store, sm.Codec = sessionstore.NewMemory(), sessionstore.Codec{}
	auth, err := login.New(login.Config{Issuer: "https://op.example", ClientID: "c", ClientSecret: "s",
		RedirectURL: "http://gateway.example/_auth/callback", Sessions: sm})
	if err != nil {
		t.Fatal(err)
	}
	providers, _ := login.NewProviders(auth)
	upstream, _ := url.Parse(up.URL)
	public, _ := ParsePublicPaths("/upload")
	g, err := New(Config{Upstream: upstream, BaseURL: &url.URL{Scheme: "http", Host: "gateway.example"}, Prefix: "/_auth",
		Providers: providers, Public: public,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) { http.Error(w, err.Error(), 401) }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sm.LoadAndSave(g)) // no server timeouts, as in internal/cli
	t.Cleanup(srv.Close)

	for _, path := range []string{"/private", "/upload"} {
		t.Run(path, func(t *testing.T) {
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			// Far longer than the shortened timeouts: reaching it means
			// the connection was held.
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: gateway.example\r\nContent-Length: 1000\r\n\r\nonly this", path)
			br := bufio.NewReader(conn)
			if path == "/private" {
				resp, err := http.ReadResponse(br, nil)
				if err != nil || resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("a guest's post: %v %v, want 401", resp, err)
				}
				resp.Body.Close()
			}
			if _, err := io.Copy(io.Discard, br); err != nil {
				t.Errorf("the connection of a client that stopped sending was held: %v", err)
			}
		})
	}
}
