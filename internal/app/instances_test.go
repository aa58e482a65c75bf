package app

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gologin/gologin/internal/testclient"
	"github.com/gologin/gologin/internal/testskip"
)

// sharedStores are the stores several instances can share: a SQLite file,
// and the Redis and PostgreSQL servers TEST_REDIS_URL and TEST_POSTGRES_URL
// name (`eval "$(.ci/services)"` starts both). In CI both are required.
func sharedStores(t *testing.T) map[string]string {
	stores := map[string]string{"sqlite": "sqlite:" + filepath.Join(t.TempDir(), "shared.db")}
	for name, env := range map[string]string{"redis": "TEST_REDIS_URL", "postgres": "TEST_POSTGRES_URL"} {
		switch url := os.Getenv(env); {
		case url != "":
			stores[name] = url
		case os.Getenv("CI") == "true":
			t.Fatalf("%s not set: CI must test the %s store (.ci/services starts it)", env, name)
		default:
			t.Logf("%s not set: skipping %s; run `eval \"$(.ci/services)\"` to test it", env, name)
			testskip.Skipped.Add(env+" not set", testskip.Services)
		}
	}
	return stores
}

// TestInstancesShareSessions runs two app instances, each with its own
// state, on one shared store: they behave as one.
func TestInstancesShareSessions(t *testing.T) {
	for name, store := range sharedStores(t) {
		t.Run(name, func(t *testing.T) {
			bases, f := startInstances(t, 2, map[string]string{"SESSION_STORE": store})
			a, b := bases[0], bases[1]
			// Cookies are not port-scoped: one browser sends its session
			// cookie to both instances, as behind a load balancer.
			laptop, phone, other := testclient.New(t), testclient.New(t), testclient.New(t)

			signIn(t, laptop, a, "ada@example.com", nil)
			if !signedIn(laptop, b) || !strings.Contains(laptop.Get(b+"/profile").Body, "ada@example.com") {
				t.Fatal("signed in through instance A, not signed in on instance B")
			}
			p := signIn(t, phone, b, "ada@example.com", nil)
			signIn(t, other, a, "grace@example.com", nil)

			// Signing out on B signs out on A.
			phone.Submit(p.Form(t, "/logout"), nil)
			if signedIn(phone, a) || signedIn(phone, b) {
				t.Fatal("signed out on B, still signed in on A")
			}

			// Back-channel logout received by B ends the session on A.
			sid := claimOn(t, laptop, a, "sid")
			if got := postLogoutToken(t, b, logoutToken(t, f, func(c map[string]any) { c["sid"] = sid })); got != http.StatusOK {
				t.Fatalf("back-channel logout on B: %d", got)
			}
			if signedIn(laptop, a) {
				t.Fatal("back-channel logout through B left the session on A")
			}

			// Signing out of all devices on B ends every session of the user.
			signIn(t, laptop, a, "ada@example.com", nil)
			signIn(t, phone, a, "ada@example.com", nil)
			phone.Submit(phone.Get(b+"/profile").Form(t, "/logout/all"), nil)
			if signedIn(laptop, a) || signedIn(phone, a) || signedIn(laptop, b) {
				t.Fatal("sign-out of all devices on B left a session")
			}
			if !signedIn(other, a) || !signedIn(other, b) {
				t.Fatal("another user was signed out")
			}
		})
	}
}

// TestInstancesRefreshOnce has two instances refresh one session's access
// token at the same time: the shared store's lock makes them refresh one
// after the other, each with the current refresh token.
func TestInstancesRefreshOnce(t *testing.T) {
	for name, store := range sharedStores(t) {
		t.Run(name, func(t *testing.T) {
			bases, _ := startInstances(t, 2, map[string]string{"SESSION_STORE": store, "OIDC_SCOPES": "openid profile email offline_access"},
				shortAccessTokens(t))
			br := testclient.New(t)
			signIn(t, br, bases[0], "ada@example.com", nil)
			statuses := make(chan int, 8)
			for i := range 8 {
				go func() {
					resp, err := br.Client.Get(bases[i%2] + "/userinfo")
					if err != nil {
						statuses <- 0
						return
					}
					resp.Body.Close()
					statuses <- resp.StatusCode
				}()
			}
			for range 8 {
				if s := <-statuses; s != http.StatusOK {
					t.Errorf("API call during concurrent refreshes: %d, want 200", s)
				}
			}
			if !signedIn(br, bases[1]) {
				t.Fatal("concurrent refreshes across instances ended the session")
			}
		})
	}
}
