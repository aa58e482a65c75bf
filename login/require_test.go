package login

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/gologin/gologin/internal/testclient"
	"github.com/gologin/gologin/sessionstore"
)

func TestRuleAllows(t *testing.T) {
	user := func(email, claims string) User {
		return User{Email: email, ClaimsJSON: json.RawMessage(claims)}
	}
	ada := user("Ada@Example.com", `{"email_verified":true,"groups":["admins","staff"]}`)
	unverified := user("ada@example.com", `{"email_verified":false,"groups":["admins"]}`)
	noVerifiedClaim := user("ada@example.com", `{}`)
	oneGroup := user("bob@example.com", `{"groups":"admins"}`)
	auth0 := user("carol@partner.org", `{"https://example.com/roles":["billing"],"groups":["admins"]}`)
	typed := user("dan@example.com", `{"email_verified":true,"level":42,"ratio":1.5,"department":["sales","research"],"active":true}`)
	guestless := user("", `{"groups":["admins"]}`)
	for _, tc := range []struct {
		name string
		rule Rule
		user User
		want bool
	}{
		{"zero rule", Rule{}, user("", "{}"), true},
		{"zero rule, no claims at all", Rule{}, User{}, true},
		{"email without case", Rule{Emails: []string{"ada@example.COM"}}, ada, true},
		{"other email", Rule{Emails: []string{"bob@example.com"}}, ada, false},
		{"domain without case", Rule{EmailDomains: []string{"EXAMPLE.com"}}, ada, true},
		{"other domain", Rule{EmailDomains: []string{"example.org"}}, ada, false},
		{"subdomain is another domain", Rule{EmailDomains: []string{"example.com"}}, user("eve@evil.example.com", `{}`), false},
		{"domain is not a suffix", Rule{EmailDomains: []string{"example.com"}}, user("eve@badexample.com", `{}`), false},
		{"email or domain", Rule{Emails: []string{"carol@partner.org"}, EmailDomains: []string{"example.com"}}, auth0, true},
		{"unverified email", Rule{Emails: []string{"ada@example.com"}}, unverified, false},
		{"unverified domain", Rule{EmailDomains: []string{"example.com"}}, unverified, false},
		{"unverified as a string", Rule{EmailDomains: []string{"example.com"}}, user("ada@example.com", `{"email_verified":"false"}`), false},
		{"no email_verified claim", Rule{Emails: []string{"ada@example.com"}}, noVerifiedClaim, true},
		{"no email", Rule{EmailDomains: []string{"example.com"}}, guestless, false},
		{"group in an array", Rule{Groups: []string{"staff"}}, ada, true},
		{"group as a string", Rule{Groups: []string{"admins"}}, oneGroup, true},
		{"group as a string, another", Rule{Groups: []string{"staff"}}, oneGroup, false},
		{"groups are case sensitive", Rule{Groups: []string{"Admins"}}, ada, false},
		{"no groups claim", Rule{Groups: []string{"admins"}}, noVerifiedClaim, false},
		{"namespaced claim", Rule{Groups: []string{"billing"}, GroupsClaim: "https://example.com/roles"}, auth0, true},
		{"namespaced claim, not groups", Rule{Groups: []string{"admins"}, GroupsClaim: "https://example.com/roles"}, auth0, false},
		{"claim number", Rule{Claims: map[string][]string{"level": {"41", "42"}}}, typed, true},
		{"claim float", Rule{Claims: map[string][]string{"ratio": {"1.5"}}}, typed, true},
		{"claim bool", Rule{Claims: map[string][]string{"active": {"true"}}}, typed, true},
		{"claim bool false wanted", Rule{Claims: map[string][]string{"active": {"false"}}}, typed, false},
		{"claim array", Rule{Claims: map[string][]string{"department": {"research"}}}, typed, true},
		{"claim missing", Rule{Claims: map[string][]string{"team": {"x"}}}, typed, false},
		{"claim with no values refuses", Rule{Claims: map[string][]string{"level": {}}}, typed, false},
		{"every claim", Rule{Claims: map[string][]string{"level": {"42"}, "department": {"engineering"}}}, typed, false},
		{"all conditions hold", Rule{EmailDomains: []string{"example.com"}, Groups: []string{"admins"},
			Claims: map[string][]string{"email_verified": {"true"}}}, ada, true},
		{"all conditions, the group fails", Rule{EmailDomains: []string{"example.com"}, Groups: []string{"ops"}}, ada, false},
		{"all conditions, the email fails", Rule{Emails: []string{"x@example.com"}, Groups: []string{"admins"}}, ada, false},
		{"all conditions, a claim fails", Rule{Groups: []string{"admins"}, Claims: map[string][]string{"level": {"1"}}}, ada, false},
	} {
		if got := tc.rule.Allows(tc.user); got != tc.want {
			t.Errorf("%s: %+v allows %s %s: %v, want %v", tc.name, tc.rule, tc.user.Email, tc.user.ClaimsJSON, got, tc.want)
		}
	}
}

func TestRuleUserGroups(t *testing.T) {
	u := User{ClaimsJSON: json.RawMessage(`{"groups":["a","b",7,true,{"x":1}],"roles":"admin","https://example.com/roles":["billing"]}`)}
	for _, tc := range []struct {
		claim string
		want  []string
	}{
		{"", []string{"a", "b", "7", "true"}},
		{"groups", []string{"a", "b", "7", "true"}},
		{"roles", []string{"admin"}},
		{"https://example.com/roles", []string{"billing"}},
		{"missing", nil},
	} {
		if got := (Rule{GroupsClaim: tc.claim}).UserGroups(u); !slices.Equal(got, tc.want) {
			t.Errorf("UserGroups with GroupsClaim %q = %q, want %q", tc.claim, got, tc.want)
		}
	}
	if got := (Rule{}).UserGroups(User{}); got != nil {
		t.Errorf("UserGroups of a user without claims = %q, want none", got)
	}
}

// newTestAuth is an Auth that never reaches its provider, with sessions
// in memory.
func newTestAuth(t *testing.T, edit func(*Config)) *Auth {
	t.Helper()
	store := sessionstore.NewMemory()
	t.Cleanup(func() { store.Close() })
	sm := scs.New()
	sm.Store = store
	sm.Codec = sessionstore.Codec{}
	cfg := Config{Issuer: "https://idp.example", ClientID: "c", ClientSecret: "secret",
		RedirectURL: "https://app.example/callback", Sessions: sm}
	if edit != nil {
		edit(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestLoginURL(t *testing.T) {
	a := newTestAuth(t, nil)
	custom := newTestAuth(t, func(c *Config) { c.LoginPath = "/auth/sign-in" })
	for _, tc := range []struct {
		a        *Auth
		returnTo string
		want     string
	}{
		{a, "/reports?year=2024&q=a b", "/login?returnTo=%2Freports%3Fyear%3D2024%26q%3Da+b"},
		{a, "/a/b#top", "/login?returnTo=%2Fa%2Fb%23top"},
		{custom, "/x", "/auth/sign-in?returnTo=%2Fx"},
		{a, "/", "/login"},
		{a, "", "/login"},
		{a, "//evil.com", "/login"},
		{a, "//evil.com/x", "/login"},
		{a, `/\evil.com`, "/login"},
		{a, "https://evil", "/login"},
		{a, "https://evil.com/x", "/login"},
		{a, "javascript:alert(1)", "/login"},
		{a, "/%2F%2Fevil.com", "/login"},
		{a, "/./evil", "/login"},
		{a, "/a\nb", "/login"},
		{custom, "//evil.com", "/auth/sign-in"},
	} {
		got := tc.a.LoginURL(tc.returnTo)
		if got != tc.want {
			t.Errorf("LoginURL(%q) = %q, want %q", tc.returnTo, got, tc.want)
			continue
		}
		// What the login handler reads back is what was asked for.
		if u, err := url.Parse(got); err != nil || got != tc.a.cfg.LoginPath && u.Query().Get("returnTo") != tc.returnTo {
			t.Errorf("LoginURL(%q) = %q does not carry it back: %v", tc.returnTo, got, err)
		}
	}
}

func TestOwnsCookie(t *testing.T) {
	a := newTestAuth(t, nil)
	renamed := newTestAuth(t, func(c *Config) { c.Sessions.Cookie.Name = "__Host-app_session" })
	for _, tc := range []struct {
		a    *Auth
		name string
		want bool
	}{
		{a, a.cfg.Sessions.Cookie.Name, true},
		{a, "session", true}, // scs's default name
		{a, txCookiePrefix + "0123abcd", true},
		{a, "__Host-" + txCookiePrefix + "0123abcd", true},
		{a, "app_prefs", false},
		{a, "Session", false},
		{a, "x" + txCookiePrefix + "0123abcd", false},
		{a, "__Secure-" + txCookiePrefix + "0123abcd", false},
		{a, "__Host-app_session", false},
		{renamed, "__Host-app_session", true},
		{renamed, "session", false},
		{renamed, txCookiePrefix + "1", true},
	} {
		if got := tc.a.OwnsCookie(tc.name); got != tc.want {
			t.Errorf("OwnsCookie(%q) with session cookie %q = %v, want %v", tc.name, tc.a.cfg.Sessions.Cookie.Name, got, tc.want)
		}
	}
}

// TestRequire signs users in at a development provider and sends their
// requests through Require.
func TestRequire(t *testing.T) {
	rp := newRP(t, nil)
	var reached []string
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := rp.auth.User(r)
		reached = append(reached, u.Email)
		w.Write([]byte("page for " + u.Email))
	})
	admins := rp.auth.cfg.Sessions.LoadAndSave(rp.auth.Require(Rule{Groups: []string{"admins"}})(next))
	anyone := rp.auth.cfg.Sessions.LoadAndSave(rp.auth.Require(Rule{})(next))

	// serve sends a request with b's cookies (none for a nil b) to h.
	serve := func(h http.Handler, b *testclient.Browser, method, target string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, target, nil)
		if b != nil {
			base, _ := url.Parse(rp.base)
			for _, c := range b.Client.Jar.Cookies(base) {
				req.AddCookie(c)
			}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}

	t.Run("guest page load", func(t *testing.T) {
		reached = nil
		rp.reset()
		rec := serve(admins, nil, http.MethodGet, "/admin/users?page=2")
		if rec.Code != http.StatusFound || rec.Header().Get("Location") != "/login?returnTo=%2Fadmin%2Fusers%3Fpage%3D2" {
			t.Errorf("got %d to %q, want 302 to /login with returnTo", rec.Code, rec.Header().Get("Location"))
		}
		if rec.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control %q, want no-store", rec.Header().Get("Cache-Control"))
		}
		if errs := rp.failures(t); len(reached) != 0 || len(errs) != 0 {
			t.Errorf("the page ran (%q) or ErrorHandler was called (%v)", reached, errs)
		}
	})

	t.Run("guest post", func(t *testing.T) {
		reached = nil
		rp.reset()
		rec := serve(admins, nil, http.MethodPost, "/admin/users")
		if e := rp.onlyError(t); rec.Code != http.StatusUnauthorized || e.Reason != "sign_in_required" || e.Status != http.StatusUnauthorized {
			t.Errorf("got %d, %s %d; want 401 sign_in_required", rec.Code, e.Reason, e.Status)
		}
		if len(reached) != 0 {
			t.Errorf("the page ran for %q", reached)
		}
	})

	bob := testclient.New(t)
	if p := rp.signIn(t, bob, "bob@example.com", map[string]string{"groups": "staff"}); p.Status != http.StatusOK {
		t.Fatalf("signing in: %d %s", p.Status, p.Body)
	}
	ada := testclient.New(t)
	if p := rp.signIn(t, ada, "ada@example.com", map[string]string{"groups": "staff, admins"}); p.Status != http.StatusOK {
		t.Fatalf("signing in: %d %s", p.Status, p.Body)
	}

	t.Run("refused", func(t *testing.T) {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			reached = nil
			rp.reset()
			rec := serve(admins, bob, method, "/admin/users")
			if e := rp.onlyError(t); rec.Code != http.StatusForbidden || e.Reason != "forbidden" || e.Status != http.StatusForbidden {
				t.Errorf("%s: got %d, %s %d; want 403 forbidden", method, rec.Code, e.Reason, e.Status)
			}
			if loc := rec.Header().Get("Location"); loc != "" {
				t.Errorf("%s: redirected to %q, which would loop", method, loc)
			}
			if len(reached) != 0 {
				t.Errorf("%s: the page ran for %q", method, reached)
			}
		}
	})

	t.Run("allowed", func(t *testing.T) {
		for _, tc := range []struct {
			h     http.Handler
			b     *testclient.Browser
			email string
		}{{admins, ada, "ada@example.com"}, {anyone, bob, "bob@example.com"}, {anyone, ada, "ada@example.com"}} {
			reached = nil
			rp.reset()
			rec := serve(tc.h, tc.b, http.MethodGet, "/admin/users")
			if rec.Code != http.StatusOK || rec.Body.String() != "page for "+tc.email || !slices.Equal(reached, []string{tc.email}) {
				t.Errorf("%s: got %d %q, reached for %q; want the page", tc.email, rec.Code, rec.Body, reached)
			}
			if errs := rp.failures(t); len(errs) != 0 {
				t.Errorf("%s: ErrorHandler called: %v", tc.email, errs)
			}
		}
	})
}

// TestRequireReadsTheSignedInUser checks Require against users put in the
// session directly, for the claims a development provider cannot send.
func TestRequireReadsTheSignedInUser(t *testing.T) {
	var got []error
	a := newTestAuth(t, func(c *Config) {
		c.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
			got = append(got, err)
			e := asError(err)
			http.Error(w, e.Reason, e.Status)
		}
	})
	sm := a.cfg.Sessions
	rule := Rule{Groups: []string{"billing"}, GroupsClaim: "https://example.com/roles",
		Claims: map[string][]string{"email_verified": {"true"}}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /signin", func(w http.ResponseWriter, r *http.Request) {
		// As a callback does: a session without a start has expired.
		sm.Put(r.Context(), userKey, User{Subject: "u", Email: "carol@partner.org", ClaimsJSON: json.RawMessage(r.FormValue("claims"))})
		sm.Put(r.Context(), sinceKey, time.Now())
	})
	mux.Handle("/", a.Require(rule)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })))
	h := sm.LoadAndSave(mux)
	for _, tc := range []struct {
		claims string
		status int
	}{
		{`{"email_verified":true,"https://example.com/roles":["billing"]}`, http.StatusOK},
		{`{"email_verified":true,"https://example.com/roles":"billing"}`, http.StatusOK},
		{`{"email_verified":false,"https://example.com/roles":["billing"]}`, http.StatusForbidden},
		{`{"email_verified":true,"groups":["billing"]}`, http.StatusForbidden},
	} {
		got = nil
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/signin?"+url.Values{"claims": {tc.claims}}.Encode(), nil))
		req := httptest.NewRequest(http.MethodGet, "/page", nil)
		for _, c := range rec.Result().Cookies() {
			req.AddCookie(c)
		}
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.status {
			t.Errorf("%s: got %d %q, want %d", tc.claims, rec.Code, strings.TrimSpace(rec.Body.String()), tc.status)
		}
		if tc.status == http.StatusForbidden && (len(got) != 1 || asError(got[0]).Reason != "forbidden") {
			t.Errorf("%s: ErrorHandler got %v, want one forbidden", tc.claims, got)
		}
	}
}
