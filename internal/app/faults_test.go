package app

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gologin/gologin/devidp"
	"github.com/gologin/gologin/devidp/devidptest"
	"github.com/gologin/gologin/internal/testclient"
)

// faultyProvider is the devidptest.Faulty that this package's tests run
// the app against. Two shorthands remain for older tests: set replaces
// every fault at once (edit and mint are Faults.Claims and Faults.Mint,
// override is Faults.Handlers), and idp serves the provider behind the
// faults, for overrides that change its answer.
type faultyProvider struct {
	*devidptest.Faulty
	idp http.Handler
}

func (f *faultyProvider) set(edit func(map[string]any), mint func(map[string]any) (string, error), override map[string]http.HandlerFunc) {
	f.Set(devidptest.Faults{Claims: edit, Mint: mint, Handlers: override})
}

// startFaultyProvider serves the app against a faultyProvider, through
// OIDC_ISSUER as with any provider. setup, when given, runs before the app
// starts.
func startFaultyProvider(t *testing.T, env map[string]string, setup ...func(*faultyProvider)) (string, *faultyProvider) {
	t.Helper()
	bases, f := startInstances(t, 1, env, setup...)
	return bases[0], f
}

// startInstances serves n apps, each with its own state, against one
// faultyProvider, and returns their base URLs.
func startInstances(t *testing.T, n int, env map[string]string, setup ...func(*faultyProvider)) ([]string, *faultyProvider) {
	t.Helper()
	bases, _, f := startFaultyApps(t, n, env, setup...)
	return bases, f
}

// startFaultyApps is startInstances that returns the apps too.
func startFaultyApps(t *testing.T, n int, env map[string]string, setup ...func(*faultyProvider)) ([]string, []*App, *faultyProvider) {
	t.Helper()
	var (
		servers []*httptest.Server
		bases   []string
		apps    []*App
		client  = devidp.Client{ID: "app", Secret: "app-secret"}
	)
	prefix := "" // the gateway's routes are under /_auth
	if env["UPSTREAM_URL"] != "" {
		prefix = "/_auth"
	}
	for range n {
		srv := httptest.NewUnstartedServer(nil)
		base := "http://" + srv.Listener.Addr().String()
		servers, bases = append(servers, srv), append(bases, base)
		client.RedirectURIs = append(client.RedirectURIs, base+prefix+"/callback")
		client.PostLogoutRedirectURIs = append(client.PostLogoutRedirectURIs, base+prefix+"/")
	}
	f := &faultyProvider{Faulty: devidptest.NewFaulty(t, client)}
	f.idp = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f.Provider().ServeHTTP(w, r) })
	// The tokens the app receives must never reach its log (TestMain).
	f.OnTokens(func(body map[string]any) {
		for _, k := range []string{"access_token", "id_token", "refresh_token"} {
			if v, ok := body[k].(string); ok {
				secrets.add(v)
			}
		}
	})
	for _, fn := range setup {
		fn(f)
	}
	vars := map[string]string{"OIDC_ISSUER": f.Issuer(), "OIDC_CLIENT_ID": "app", "OIDC_CLIENT_SECRET": "app-secret", "SESSION_STORE": "memory"}
	for k, v := range env {
		vars[k] = v
	}
	for _, srv := range servers {
		_, a := serveApp(t, srv, vars)
		apps = append(apps, a)
	}
	return bases, apps, f
}

// signIn runs a login up to the provider's sign-in page and submits it.
func signIn(t *testing.T, b *testclient.Browser, base, email string, extra map[string]string) testclient.Page {
	t.Helper()
	p := b.Get(base + "/login")
	form := p.Form(t, "/authorize")
	set := map[string]string{"name": "User " + email, "email": email}
	for k, v := range extra {
		set[k] = v
	}
	return b.Submit(form, set)
}

// TestLoginFailuresRenderErrorPages: a sign-in that fails, whether the
// request, the provider or its token is at fault, renders the app's error
// page with the failure's status, its message and a reference ID, counts
// the failure by reason in the metrics, and leaves no session. Which
// failures the login package reports, and how, is TestCallbackFailures'
// business (login/callback_test.go); these are a few of them.
func TestLoginFailuresRenderErrorPages(t *testing.T) {
	bases, apps, f := startFaultyApps(t, 1, map[string]string{"PROVIDER_TIMEOUT": "300ms"})
	base, a := bases[0], apps[0]
	tests := []struct {
		name     string
		faults   devidptest.Faults
		callback string // visit this callback instead of signing in
		cancel   bool   // press Cancel on the provider's page
		status   int
		reason   string
		text     string
	}{
		{name: "wrong state", callback: "/callback?code=abc&state=not-a-state-of-this-browser",
			status: 400, reason: "invalid_state", text: "unknown, expired or already used"},
		{name: "cancelled at the provider", cancel: true, status: 400, reason: "access_denied", text: "You cancelled sign-in."},
		{name: "token endpoint fails", faults: devidptest.Faults{Token: func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "boom", 500)
		}}, status: 502, reason: "provider_failed", text: "failed to complete the sign-in"},
		{name: "token endpoint hangs", faults: devidptest.Faults{Token: func(w http.ResponseWriter, r *http.Request) {
			// The server notices the client giving up only once the body is read.
			io.Copy(io.Discard, r.Body)
			<-r.Context().Done()
		}}, status: 504, reason: "timeout", text: "did not answer in time"},
		{name: "wrong nonce", faults: devidptest.Faults{Claims: func(c map[string]any) { c["nonce"] = "replayed-nonce" }},
			status: 400, reason: "invalid_id_token", text: "could not be verified"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.Set(tt.faults)
			defer f.Set(devidptest.Faults{})
			sample := `webapp_logins_total{reason="` + tt.reason + `",result="failed"}`
			before := max(metricValue(scrape(t, a), sample), 0)
			b := testclient.New(t)
			var p testclient.Page
			switch {
			case tt.callback != "":
				b.Get(base + "/login") // the browser has a pending login of its own
				p = b.Get(base + tt.callback)
			case tt.cancel:
				p = signIn(t, b, base, "cancel@example.com", map[string]string{"cancel": "1"})
			default:
				p = signIn(t, b, base, "user@example.com", nil)
			}
			if p.Status != tt.status || !strings.Contains(p.Body, tt.text) || !strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") {
				t.Fatalf("got %d %s, want an HTML page, %d with %q:\n%s", p.Status, p.Header.Get("Content-Type"), tt.status, tt.text, p.Body)
			}
			if !strings.Contains(p.Body, "reference <code>") {
				t.Errorf("error page lacks a reference ID:\n%s", p.Body)
			}
			if home := b.Get(base + "/").Body; !strings.Contains(home, "Welcome Guest") || strings.Contains(home, "Log out") {
				t.Errorf("signed in after a %d:\n%s", p.Status, home)
			}
			if got := metricValue(scrape(t, a), sample); got != before+1 {
				t.Errorf("%s = %v, want %v", sample, got, before+1)
			}
		})
	}
	// And the provider, behaving again, signs users in.
	if p := signIn(t, testclient.New(t), base, "user@example.com", nil); p.Status != 200 || !strings.Contains(p.Body, "Welcome User user@example.com!") {
		t.Fatalf("sign-in after the failures: got %d:\n%s", p.Status, p.Body)
	}
}

func TestProviderUnavailable(t *testing.T) {
	// Nothing listens on the issuer: the app still serves, /login says so.
	base, _ := startApp(t, map[string]string{
		"OIDC_ISSUER": "http://127.0.0.1:1", "OIDC_CLIENT_ID": "app", "OIDC_CLIENT_SECRET": "s", "SESSION_STORE": "memory",
	})
	b := testclient.New(t)
	if p := b.Get(base + "/"); p.Status != 200 || !strings.Contains(p.Body, "Welcome Guest") {
		t.Fatalf("home with the provider down: %d", p.Status)
	}
	if p := b.Get(base + "/login"); p.Status != http.StatusServiceUnavailable || !strings.Contains(p.Body, "cannot reach the sign-in provider") {
		t.Fatalf("/login with the provider down: got %d:\n%s", p.Status, p.Body)
	}
	if p := b.Get(base + "/readyz"); p.Status != 200 || !strings.Contains(p.Body, `"state":"unavailable"`) {
		t.Fatalf("/readyz with the provider down: want 200 reporting it unavailable, got %d %s", p.Status, p.Body)
	}
}

// TestDiscoveryIssuerMismatch: the app serves on, with /login answering
// 503, /readyz reporting the provider unavailable, and the log naming the
// impostor. That discovery refuses the document is login's
// TestDiscoveryOfAnotherIssuer.
func TestDiscoveryIssuerMismatch(t *testing.T) {
	base, _ := startFaultyProvider(t, nil, func(f *faultyProvider) {
		f.Set(devidptest.Faults{Handlers: map[string]http.HandlerFunc{"/.well-known/openid-configuration": func(w http.ResponseWriter, r *http.Request) {
			rec := httptest.NewRecorder()
			f.Provider().ServeHTTP(rec, r)
			var doc map[string]any
			json.Unmarshal(rec.Body.Bytes(), &doc)
			doc["issuer"] = "https://impostor.example"
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(doc)
		}}})
	})
	b := testclient.New(t)
	if p := b.Get(base + "/login"); p.Status != http.StatusServiceUnavailable {
		t.Fatalf("/login with a discovery document of another issuer: got %d, want 503:\n%s", p.Status, p.Body)
	}
	if p := b.Get(base + "/readyz"); p.Status != http.StatusOK || !strings.Contains(p.Body, `"state":"unavailable"`) {
		t.Fatalf("/readyz: want 200 with the provider unavailable, got %d %s", p.Status, p.Body)
	}
	if !strings.Contains(suiteLog.String(), "impostor.example") {
		t.Fatal("the log does not name the mismatched issuer")
	}
}
