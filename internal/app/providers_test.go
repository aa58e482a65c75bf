package app

import (
	"crypto/rand"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gologin/gologin/devidp"
	"github.com/gologin/gologin/devidp/devidptest"
	"github.com/gologin/gologin/internal/config"
	"github.com/gologin/gologin/internal/testclient"
)

// twoProviders serves the gateway with a main provider and a second one
// named partner, both real OpenID providers, and returns the gateway's
// URL and the two providers.
func twoProviders(t *testing.T) (base string, main, partner *devidptest.Faulty) {
	t.Helper()
	return twoProvidersWith(t, nil)
}

// twoProvidersWith is twoProviders with env added to the gateway's.
func twoProvidersWith(t *testing.T, env map[string]string) (base string, main, partner *devidptest.Faulty) {
	t.Helper()
	up := startUpstream(t)
	srv := httptest.NewUnstartedServer(nil)
	base = "http://" + srv.Listener.Addr().String()
	main = devidptest.NewFaulty(t, devidp.Client{ID: "app", Secret: "app-secret",
		RedirectURIs: []string{base + "/_auth/callback"}, PostLogoutRedirectURIs: []string{base + "/_auth/"}})
	partner = devidptest.NewFaulty(t, devidp.Client{ID: "gw", Secret: "partner-secret",
		RedirectURIs: []string{base + "/_auth/callback/partner"}, PostLogoutRedirectURIs: []string{base + "/_auth/"}})
	vars := map[string]string{
		"UPSTREAM_URL": up.URL, "SESSION_STORE": "memory",
		"OIDC_ISSUER": main.Issuer(), "OIDC_CLIENT_ID": "app", "OIDC_CLIENT_SECRET": "app-secret",
		"OIDC_PROVIDERS": "partner", "OIDC_PARTNER_ISSUER": partner.Issuer(), "OIDC_PARTNER_CLIENT_ID": "gw",
		"OIDC_PARTNER_CLIENT_SECRET": "partner-secret",
	}
	maps.Copy(vars, env)
	serveApp(t, srv, vars)
	return base, main, partner
}

// signInWith signs b in from the sign-in page with the provider whose
// button says label, as email, and returns the page it lands on.
func signInWith(t *testing.T, b *testclient.Browser, base, path, label, email string) testclient.Page {
	t.Helper()
	page := b.Get(base + path)
	if page.URL.Path != "/_auth/sign_in" {
		t.Fatalf("a guest at %s: want the sign-in page, got %s", path, page.URL)
	}
	i := strings.Index(page.Body, ">Sign in with "+label+"<")
	if i < 0 {
		t.Fatalf("the sign-in page has no button for %s:\n%s", label, page.Body)
	}
	start := strings.LastIndex(page.Body[:i], `href="`) + len(`href="`)
	href := strings.ReplaceAll(page.Body[start:start+strings.Index(page.Body[start:], `"`)], "&amp;", "&")
	p := b.Get(base + href)
	return b.Submit(p.Form(t, "/authorize"), map[string]string{"name": "Ada", "email": email})
}

func TestSeveralProviders(t *testing.T) {
	base, main, partner := twoProviders(t)
	mainHost := strings.TrimPrefix(main.Issuer(), "http://")

	// The same email gives the same sub at both providers: two users that
	// only the provider tells apart.
	viaPartner, viaMain := testclient.New(t), testclient.New(t)
	s := upstreamSaw(t, signInWith(t, viaPartner, base, "/docs?page=2", "partner", "ada@example.com"))
	if s.URI != "/docs?page=2" || !strings.HasPrefix(s.Header.Get("X-Forwarded-User"), "dev|") {
		t.Fatalf("signed in with partner: the upstream got %s as %q", s.URI, s.Header.Get("X-Forwarded-User"))
	}
	sub := s.Header.Get("X-Forwarded-User")
	if got := s.Header.Get("X-Forwarded-Provider"); got != "partner" {
		t.Errorf("signed in with partner: X-Forwarded-Provider = %q, want partner", got)
	}
	s = upstreamSaw(t, signInWith(t, viaMain, base, "/docs", mainHost, "ada@example.com"))
	if s.Header.Get("X-Forwarded-User") != sub || s.Header.Get("X-Forwarded-Provider") != "oidc" {
		t.Fatalf("want the same sub from both providers, told apart by X-Forwarded-Provider: got %q from %q",
			s.Header.Get("X-Forwarded-User"), s.Header.Get("X-Forwarded-Provider"))
	}

	// Partner's back-channel logout ends partner's session only.
	now := time.Now()
	token, err := partner.Provider().Sign(map[string]any{
		"iss": partner.Issuer(), "aud": "gw", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": rand.Text(),
		"sub": sub, "events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if status := postLogoutToken(t, base+"/_auth", token); status != http.StatusBadRequest {
		t.Errorf("partner's logout token at the main provider's endpoint: got %d, want 400", status)
	}
	resp, err := http.PostForm(base+"/_auth/backchannel-logout/partner", url.Values{"logout_token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("partner's back-channel logout: got %d, want 200", resp.StatusCode)
	}
	if p := viaPartner.NoRedirects().Get(base + "/docs"); p.Status != http.StatusFound {
		t.Errorf("after partner's back-channel logout, partner's user got %d, want a redirect to sign in", p.Status)
	}
	if s := upstreamSaw(t, viaMain.Get(base+"/docs")); s.Header.Get("X-Forwarded-User") != sub {
		t.Error("partner's back-channel logout ended the main provider's session of the same sub")
	}
}

// TestProviderMixUp delivers the partner's authorization response to the
// main provider's callback, as an attacker who mixes up providers would:
// it is refused, and signs nobody in.
func TestProviderMixUp(t *testing.T) {
	base, _, _ := twoProviders(t)
	b := testclient.New(t)
	form := b.Get(base+"/_auth/login/partner").Form(t, "/authorize")
	resp, err := b.NoRedirects().Client.PostForm(form.Action, withUser(form.Values))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	back, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasSuffix(back.Path, "/_auth/callback/partner") {
		t.Fatalf("the partner sent the browser to %q, want its own callback", resp.Header.Get("Location"))
	}
	back.Path = "/_auth/callback"
	if p := b.Get(back.String()); p.Status != http.StatusBadRequest {
		t.Errorf("partner's response at the main callback: got %d, want 400", p.Status)
	}
	if p := b.NoRedirects().Get(base + "/docs"); p.Status != http.StatusFound {
		t.Errorf("after the mixed-up response: got %d, want still a guest", p.Status)
	}
}

// withUser is a sign-in form's values with a user filled in.
func withUser(v url.Values) url.Values {
	v = maps.Clone(v)
	v.Set("name", "Ada")
	v.Set("email", "ada@example.com")
	return v
}

// TestRulesByProvider: a rule can admit one provider's users only, whatever
// email the others' claim; a rule naming no configured provider stops the
// gateway at startup.
func TestRulesByProvider(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	os.WriteFile(rules, []byte("rules:\n  - path: /staff\n    providers: [oidc]\n    email_domains: [example.com]\n"), 0o600)
	base, main, _ := twoProvidersWith(t, map[string]string{"AUTH_RULES_FILE": rules})
	viaPartner, viaMain := testclient.New(t), testclient.New(t)
	if p := signInWith(t, viaPartner, base, "/staff", "partner", "ada@example.com"); p.Status != http.StatusForbidden {
		t.Errorf("partner's user claiming an example.com address at /staff: got %d, want 403", p.Status)
	}
	upstreamSaw(t, signInWith(t, viaMain, base, "/staff", strings.TrimPrefix(main.Issuer(), "http://"), "ada@example.com"))

	os.WriteFile(rules, []byte("rules:\n  - providers: [parnter]\n"), 0o600)
	vars := map[string]string{"UPSTREAM_URL": "http://127.0.0.1:1", "SESSION_STORE": "memory", "AUTH_RULES_FILE": rules,
		"APP_BASE_URL": "http://127.0.0.1:1", "OIDC_ISSUER": main.Issuer(), "OIDC_CLIENT_ID": "app", "OIDC_CLIENT_SECRET": "s",
		"OIDC_PROVIDERS": "partner", "OIDC_PARTNER_ISSUER": main.Issuer(), "OIDC_PARTNER_CLIENT_ID": "gw", "OIDC_PARTNER_CLIENT_SECRET": "s"}
	cfg, err := config.LoadGateway(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg, testLogger(t)); err == nil || !strings.Contains(err.Error(), `rules.yaml:2: no provider is named "parnter"`) {
		t.Errorf("a rule for an unknown provider: %v, want an error naming it and its line", err)
	}
}

// TestRemovedProviderSignsOut: once a provider is no longer configured,
// its users' sessions are guests', not users of the remaining provider.
func TestRemovedProviderSignsOut(t *testing.T) {
	store := "sqlite:" + filepath.Join(t.TempDir(), "sessions.db")
	base, main, _ := twoProvidersWith(t, map[string]string{"SESSION_STORE": store})
	b := testclient.New(t)
	upstreamSaw(t, signInWith(t, b, base, "/docs", "partner", "ada@example.com"))

	// The same store, the main provider only; the browser's cookies go to
	// every port of 127.0.0.1.
	up := startUpstream(t)
	after, _ := startApp(t, map[string]string{"UPSTREAM_URL": up.URL, "SESSION_STORE": store,
		"OIDC_ISSUER": main.Issuer(), "OIDC_CLIENT_ID": "app", "OIDC_CLIENT_SECRET": "app-secret"})
	if p := b.NoRedirects().Get(after + "/docs"); p.Status != http.StatusFound {
		t.Errorf("a removed provider's user: got %d, want a guest's redirect to sign in", p.Status)
	}
}
