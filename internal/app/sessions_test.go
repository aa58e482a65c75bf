package app

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gologin/gologin/devidp"
	"github.com/gologin/gologin/devidp/devidptest"
	"github.com/gologin/gologin/internal/testclient"
)

// claimOn reads a claim's value from the profile page.
func claimOn(t *testing.T, b *testclient.Browser, base, name string) string {
	t.Helper()
	body := b.Get(base + "/profile").Body
	m := regexp.MustCompile(`<th scope="row">` + regexp.QuoteMeta(name) + `</th><td>([^<]*)</td>`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("profile page has no %s claim:\n%s", name, body)
	}
	return html.UnescapeString(m[1])
}

func signedIn(b *testclient.Browser, base string) bool {
	return strings.Contains(b.Get(base+"/").Body, "Log out")
}

// logoutToken signs a back-channel logout token; edit changes its claims.
func logoutToken(t *testing.T, f *faultyProvider, edit func(map[string]any)) string {
	t.Helper()
	now := time.Now()
	c := map[string]any{
		"iss": f.Issuer(), "aud": "app", "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(), "jti": rand.Text(),
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
	}
	edit(c)
	tok, err := f.Provider().Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func postLogoutToken(t *testing.T, base, token string) int {
	t.Helper()
	resp, err := http.PostForm(base+"/backchannel-logout", url.Values{"logout_token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestBackchannelLogout(t *testing.T) {
	for _, store := range []string{"memory", "sqlite"} {
		t.Run(store, func(t *testing.T) {
			env := map[string]string{}
			if store == "memory" {
				env["SESSION_STORE"] = "memory"
			}
			base, f := startFaultyProvider(t, env)
			// Two devices of one user, each its own provider session, and
			// another user.
			phone, laptop, other := testclient.New(t), testclient.New(t), testclient.New(t)
			for _, b := range []*testclient.Browser{phone, laptop} {
				signIn(t, b, base, "ada@example.com", nil)
			}
			signIn(t, other, base, "grace@example.com", nil)
			phoneSID, sub := claimOn(t, phone, base, "sid"), claimOn(t, phone, base, "sub")
			valid := func(c map[string]any) { c["sid"], c["sub"] = phoneSID, sub }

			invalid := []struct {
				name string
				edit func(map[string]any)
			}{
				{"no events", func(c map[string]any) { valid(c); delete(c, "events") }},
				{"has a nonce", func(c map[string]any) { valid(c); c["nonce"] = "n" }},
				{"another audience", func(c map[string]any) { valid(c); c["aud"] = "another-app" }},
				{"another issuer", func(c map[string]any) { valid(c); c["iss"] = "https://evil.example" }},
				{"expired", func(c map[string]any) { valid(c); c["exp"] = time.Now().Add(-time.Hour).Unix() }},
				{"issued long ago", func(c map[string]any) { valid(c); c["iat"] = time.Now().Add(-time.Hour).Unix() }},
				{"no iat", func(c map[string]any) { valid(c); delete(c, "iat") }},
				{"no jti", func(c map[string]any) { valid(c); delete(c, "jti") }},
				{"neither sid nor sub", func(c map[string]any) {}},
				{"events not an object", func(c map[string]any) { valid(c); c["events"] = "logout" }},
				{"a logout event that is not an object", func(c map[string]any) {
					valid(c)
					c["events"] = map[string]any{"http://schemas.openid.net/event/backchannel-logout": "yes"}
				}},
				{"several audiences without azp", func(c map[string]any) { valid(c); c["aud"] = []string{"app", "another-app"} }},
				{"several audiences, azp of another client", func(c map[string]any) {
					valid(c)
					c["aud"], c["azp"] = []string{"app", "another-app"}, "another-app"
				}},
			}
			for _, tc := range invalid {
				if got := postLogoutToken(t, base, logoutToken(t, f, tc.edit)); got != http.StatusBadRequest {
					t.Errorf("logout token with %s: got %d, want 400", tc.name, got)
				}
			}
			for _, typ := range []string{"at+jwt", "id_token+jwt", "secevent+jwt"} {
				c := map[string]any{}
				json.Unmarshal([]byte(jwtPayload(t, logoutToken(t, f, valid))), &c)
				tok, err := devidptest.Sign(f.Key(), "", typ, c)
				if err != nil {
					t.Fatal(err)
				}
				if got := postLogoutToken(t, base, tok); got != http.StatusBadRequest {
					t.Errorf("logout token typed %s: got %d, want 400", typ, got)
				}
			}
			if got := postLogoutToken(t, base, "not-a-jwt"); got != http.StatusBadRequest {
				t.Errorf("garbage logout token: got %d, want 400", got)
			}
			if !signedIn(phone, base) || !signedIn(laptop, base) || !signedIn(other, base) {
				t.Fatal("an invalid logout token signed someone out")
			}

			// By sid, explicitly typed (section 2.4): only that device's
			// session ends.
			c := map[string]any{}
			json.Unmarshal([]byte(jwtPayload(t, logoutToken(t, f, valid))), &c)
			tok, err := devidptest.Sign(f.Key(), "", "logout+jwt", c)
			if err != nil {
				t.Fatal(err)
			}
			if got := postLogoutToken(t, base, tok); got != http.StatusOK {
				t.Fatalf("valid logout token by sid: got %d, want 200", got)
			}
			if signedIn(phone, base) || !signedIn(laptop, base) || !signedIn(other, base) {
				t.Fatalf("after logout by sid: phone %v laptop %v other %v; want only the phone signed out",
					signedIn(phone, base), signedIn(laptop, base), signedIn(other, base))
			}
			if got := postLogoutToken(t, base, tok); got != http.StatusBadRequest {
				t.Errorf("replayed logout token: got %d, want 400", got)
			}
			// By sub alone: every session of the user ends.
			if got := postLogoutToken(t, base, logoutToken(t, f, func(c map[string]any) { c["sub"] = sub })); got != http.StatusOK {
				t.Fatalf("valid logout token by sub: got %d, want 200", got)
			}
			if signedIn(laptop, base) || !signedIn(other, base) {
				t.Fatal("after logout by sub: want Ada signed out everywhere and Grace still signed in")
			}
		})
	}
}

// jwtPayload is the decoded payload of a compact JWS.
func jwtPayload(t *testing.T, jws string) string {
	t.Helper()
	parts := strings.Split(jws, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", jws)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestBackchannelReplayRace posts one logout token many times at once, to
// two instances sharing a store: exactly one delivery is accepted.
func TestBackchannelReplayRace(t *testing.T) {
	bases, f := startInstances(t, 2, map[string]string{"SESSION_STORE": "sqlite:" + filepath.Join(t.TempDir(), "shared.db")})
	b := testclient.New(t)
	signIn(t, b, bases[0], "ada@example.com", nil)
	sid := claimOn(t, b, bases[0], "sid")
	tok := logoutToken(t, f, func(c map[string]any) { c["sid"] = sid })
	const n = 20
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { codes <- postLogoutToken(t, bases[i%2], tok) })
	}
	wg.Wait()
	close(codes)
	accepted := 0
	for code := range codes {
		switch code {
		case http.StatusOK:
			accepted++
		case http.StatusBadRequest:
		default:
			t.Errorf("a parallel copy of a logout token got %d, want 200 or 400", code)
		}
	}
	if accepted != 1 {
		t.Fatalf("%d parallel copies of one logout token: %d accepted, want exactly 1", n, accepted)
	}
	if signedIn(b, bases[0]) {
		t.Fatal("the logout token's session survived")
	}
}

func TestDevProviderSendsBackchannelLogout(t *testing.T) {
	base, _ := startApp(t, nil)
	b := testclient.New(t)
	p := signInDev(t, b, base, "/login", "Ada", "ada@example.com")
	before := strings.Count(suiteLog.String(), "msg=\"back-channel logout\"")
	b.Submit(p.Form(t, "/logout"), nil)
	if after := strings.Count(suiteLog.String(), "msg=\"back-channel logout\""); after != before+1 {
		t.Fatalf("signing out at the development provider: %d back-channel logouts logged, want 1", after-before)
	}
}

func TestSignOutOfAllDevices(t *testing.T) {
	base, _ := startApp(t, nil)
	phone, laptop, other := testclient.New(t), testclient.New(t), testclient.New(t)
	signInDev(t, phone, base, "/login", "Ada", "ada@example.com")
	signInDev(t, laptop, base, "/login", "Ada", "ada@example.com")
	signInDev(t, other, base, "/login", "Grace", "grace@example.com")

	profile := laptop.Get(base + "/profile")
	// Without the CSRF token nothing happens.
	if p := laptop.PostForm(base+"/logout/all", nil); p.Status != http.StatusForbidden || !signedIn(phone, base) {
		t.Fatalf("sign out of all devices without the token: got %d, want 403 and nobody signed out", p.Status)
	}
	p := laptop.Submit(profile.Form(t, "/logout/all"), nil)
	if p.URL.Path != "/" || !strings.Contains(p.Body, "Welcome Guest") {
		t.Fatalf("after signing out of all devices: want the guest home page, got %s", p.URL)
	}
	if signedIn(phone, base) || signedIn(laptop, base) || !signedIn(other, base) {
		t.Fatal("want Ada signed out on both devices and Grace still signed in")
	}
}

// refreshingProvider is a provider whose access tokens last 20 s, so every
// API call refreshes them first (the app refreshes 30 s before expiry).
func refreshingProvider(t *testing.T, env map[string]string) (string, *faultyProvider) {
	t.Helper()
	env["OIDC_SCOPES"] = "openid profile email offline_access"
	return startFaultyProvider(t, env, shortAccessTokens(t))
}

// shortAccessTokens makes the provider's access tokens last 20 s.
func shortAccessTokens(t *testing.T) func(*faultyProvider) {
	return func(f *faultyProvider) {
		f.Reconfigure(t, func(cfg *devidp.Config) { cfg.AccessTokenLifetime = 20 * time.Second })
	}
}

func TestAccessTokenRefresh(t *testing.T) {
	base, f := refreshingProvider(t, map[string]string{"SESSION_STORE": "memory"})
	b := testclient.New(t)
	signIn(t, b, base, "ada@example.com", nil)
	sub := claimOn(t, b, base, "sub")
	for i := range 3 {
		p := b.Get(base + "/userinfo")
		if p.Status != http.StatusOK || !strings.Contains(p.Body, "200 OK") || !strings.Contains(p.Body, html.EscapeString(sub)) {
			t.Fatalf("API call %d: want the userinfo API's answer for %s, got %d:\n%s", i, sub, p.Status, p.Body)
		}
	}
	// 1 code exchange + 3 refreshes, each with the previous, rotated token.
	if got := f.Hits("/token"); got != 4 {
		t.Errorf("token endpoint called %d times, want 4", got)
	}
}

func TestConcurrentRefreshesKeepTheSession(t *testing.T) {
	base, _ := refreshingProvider(t, map[string]string{})
	b := testclient.New(t)
	signIn(t, b, base, "ada@example.com", nil)
	var wg sync.WaitGroup
	statuses := make([]int, 8)
	for i := range statuses {
		wg.Go(func() {
			resp, err := b.Client.Get(base + "/userinfo")
			if err == nil {
				statuses[i] = resp.StatusCode
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusOK {
			t.Errorf("concurrent API call %d: got %d, want 200", i, s)
		}
	}
	// Had two requests redeemed one rotated refresh token, the provider
	// would have refused the second and the session would have ended.
	if !signedIn(b, base) {
		t.Fatal("concurrent refreshes ended the session")
	}
}

func TestRefusedRefreshEndsTheSession(t *testing.T) {
	base, f := refreshingProvider(t, map[string]string{"SESSION_STORE": "memory"})
	b := testclient.New(t)
	signIn(t, b, base, "ada@example.com", nil)
	f.Set(devidptest.Faults{Token: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"invalid_grant"}`)
	}})
	p := b.NoRedirects().Get(base + "/userinfo")
	if p.Status != http.StatusFound || !strings.HasPrefix(p.Header.Get("Location"), "/login") {
		t.Fatalf("API call with a refused refresh: got %d to %q, want a redirect to sign in", p.Status, p.Header.Get("Location"))
	}
	if signedIn(b, base) {
		t.Fatal("the session survived a refused refresh")
	}
}

// TestRefreshFailureKinds: only invalid_grant ends the session; a rate
// limit or a provider error leaves the user signed in.
func TestRefreshFailureKinds(t *testing.T) {
	for _, tc := range []struct {
		status       int
		body         string
		wantSignedIn bool
	}{
		{http.StatusTooManyRequests, `{"error":"slow_down"}`, true},
		{http.StatusUnauthorized, `{"error":"invalid_client"}`, true},
		{http.StatusInternalServerError, `oops`, true},
		{http.StatusBadRequest, `{"error":"invalid_grant"}`, false},
	} {
		base, f := refreshingProvider(t, map[string]string{"SESSION_STORE": "memory"})
		b := testclient.New(t)
		signIn(t, b, base, "ada@example.com", nil)
		f.Set(devidptest.Faults{Token: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(tc.status)
			fmt.Fprint(w, tc.body)
		}})
		b.Get(base + "/userinfo")
		if got := signedIn(b, base); got != tc.wantSignedIn {
			t.Errorf("refresh answered %d %s: signed in = %v, want %v", tc.status, tc.body, got, tc.wantSignedIn)
		}
	}
}

// TestOverlappingRequestsKeepRotatedTokens: requests that change the
// session while another refreshes the tokens must not bring back the spent
// refresh token.
func TestOverlappingRequestsKeepRotatedTokens(t *testing.T) {
	base, _ := refreshingProvider(t, map[string]string{})
	b := testclient.New(t)
	signIn(t, b, base, "ada@example.com", nil)
	nr := b.NoRedirects()
	for round := range 5 {
		var wg sync.WaitGroup
		wg.Go(func() { b.Get(base + "/userinfo") })
		for range 3 {
			wg.Go(func() { nr.Get(base + "/login") }) // each writes the session
		}
		wg.Wait()
		if p := b.Get(base + "/userinfo"); p.Status != http.StatusOK {
			t.Fatalf("round %d: API call after overlapping requests: %d, want 200", round, p.Status)
		}
	}
}

// TestStolenCookieDoesNotSurviveSignOutEverywhere: a thief replaying the
// victim's cookie in a loop of session-writing requests must not revive
// the session that signing out of all devices deleted.
func TestStolenCookieDoesNotSurviveSignOutEverywhere(t *testing.T) {
	for name, store := range sharedStores(t) {
		t.Run(name, func(t *testing.T) {
			base, _ := startApp(t, map[string]string{"SESSION_STORE": store})
			victim := testclient.New(t)
			signInDev(t, victim, base, "/login", "Ada", "ada@example.com")
			u, _ := url.Parse(base)
			thief := testclient.New(t)
			thief.Client.Jar.SetCookies(u, victim.Client.Jar.Cookies(u))
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						req, _ := http.NewRequest("GET", base+"/login", nil)
						for _, c := range victim.Client.Jar.Cookies(u) {
							req.AddCookie(c)
						}
						if resp, err := http.DefaultTransport.RoundTrip(req); err == nil {
							resp.Body.Close()
						}
					}
				})
			}
			victim.Submit(victim.Get(base+"/profile").Form(t, "/logout/all"), nil)
			close(stop)
			wg.Wait()
			if signedIn(thief, base) {
				t.Fatal("the stolen cookie survived signing out of all devices")
			}
		})
	}
}

// TestUnreadableSessionStartsAnew: a session record the app cannot decode
// (damaged, or written by a later version) is deleted and its cookie
// cleared; a page request goes back to its page, to get it as a guest, a
// form post gets an error page, and neither is "sessions unavailable".
func TestUnreadableSessionStartsAnew(t *testing.T) {
	base, a := startApp(t, nil)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tt := range []struct {
		method, path string
		wantStatus   int
		wantLocation string
	}{
		{"GET", "/profile?tab=claims", http.StatusSeeOther, "/profile?tab=claims"},
		{"POST", "/logout", http.StatusBadRequest, ""},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			token := rand.Text() + rand.Text()[:17]
			record := []byte{99, 1, 2, 3} // a format this version does not know
			if err := a.store.CommitCtx(t.Context(), token, record, time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest(tt.method, base+tt.path, nil)
			req.AddCookie(&http.Cookie{Name: "session", Value: token})
			resp, err := noFollow.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus || resp.Header.Get("Location") != tt.wantLocation {
				t.Fatalf("%s %s: %d to %q, want %d to %q", tt.method, tt.path, resp.StatusCode, resp.Header.Get("Location"), tt.wantStatus, tt.wantLocation)
			}
			cleared := false
			for _, c := range resp.Cookies() {
				cleared = cleared || c.Name == "session" && c.MaxAge < 0
			}
			if !cleared {
				t.Errorf("the session cookie was not cleared: %q", resp.Header.Values("Set-Cookie"))
			}
			if _, found, err := a.store.FindCtx(t.Context(), token); found || err != nil {
				t.Errorf("the unreadable record is still stored (found %v, %v)", found, err)
			}
		})
	}
}
