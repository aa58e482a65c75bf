package login

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/gologin/gologin/sessionstore"
)

// attemptAuth is an Auth for tests of login attempt cookies alone.
func attemptAuth(t *testing.T, redirectURL string) *Auth {
	t.Helper()
	return namedAttemptAuth(t, redirectURL, "")
}

// namedAttemptAuth is attemptAuth for a provider of that Config.Name.
func namedAttemptAuth(t *testing.T, redirectURL, name string) *Auth {
	t.Helper()
	sm := scs.New()
	sm.Store = sessionstore.NewMemory()
	sm.Codec = sessionstore.Codec{}
	a, err := New(Config{Issuer: "https://op.example", ClientID: "c", ClientSecret: "s", RedirectURL: redirectURL, Sessions: sm, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// save starts an attempt for state with the browser's cookies jar, and
// returns the cookies the response sets.
func save(t *testing.T, a *Auth, jar []*http.Cookie, state string, started time.Time) []*http.Cookie {
	t.Helper()
	r := httptest.NewRequest("GET", "/login", nil)
	for _, c := range jar {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	if err := a.saveTransaction(w, r, state, transaction{Nonce: "n-" + state, Started: started}); err != nil {
		t.Fatal(err)
	}
	return w.Result().Cookies()
}

// take finishes the attempt of state with the given cookies.
func take(a *Auth, jar []*http.Cookie, state string, now time.Time) (transaction, bool, []*http.Cookie) {
	r := httptest.NewRequest("GET", "/callback", nil)
	for _, c := range jar {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	tx, ok := a.takeTransaction(w, r, state, now)
	return tx, ok, w.Result().Cookies()
}

// apply is what a browser does with Set-Cookie: replace by name, drop
// cleared cookies.
func apply(jar, set []*http.Cookie) []*http.Cookie {
	byName := map[string]*http.Cookie{}
	var order []string
	for _, c := range append(jar, set...) {
		if _, ok := byName[c.Name]; !ok {
			order = append(order, c.Name)
		}
		byName[c.Name] = c
	}
	var out []*http.Cookie
	for _, n := range order {
		if c := byName[n]; c.MaxAge >= 0 {
			out = append(out, &http.Cookie{Name: c.Name, Value: c.Value})
		}
	}
	return out
}

func TestLoginAttemptCookies(t *testing.T) {
	a := attemptAuth(t, "http://localhost:3000/callback")
	start := time.Now()

	jar := apply(nil, save(t, a, nil, "s1", start))
	jar = apply(jar, save(t, a, jar, "s2", start))
	if len(jar) != 2 {
		t.Fatalf("two attempts left %d cookies", len(jar))
	}
	for _, c := range save(t, a, nil, "s3", start) {
		if !c.HttpOnly || c.Secure || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.MaxAge != 600 {
			t.Errorf("attempt cookie %+v: want HttpOnly, SameSite=Lax, Path=/, Max-Age=600, not Secure over http", c)
		}
	}

	if _, ok, _ := take(a, jar, "s1", start.Add(TransactionLifetime+time.Second)); ok {
		t.Error("a login attempt older than TransactionLifetime completed")
	}
	tx, ok, set := take(a, jar, "s2", start.Add(TransactionLifetime-time.Second))
	if !ok || tx.Nonce != "n-s2" {
		t.Fatalf("a login attempt within TransactionLifetime did not complete: %v %+v", ok, tx)
	}
	jar = apply(jar, set)
	if _, ok, _ := take(a, jar, "s2", start); ok {
		t.Error("a login attempt completed twice")
	}

	// A cookie opens only under its own state's name, and only with the key.
	s1 := save(t, a, nil, "s1", start)[0]
	forged := []*http.Cookie{{Name: a.txCookieName("other"), Value: s1.Value}}
	if _, ok, _ := take(a, forged, "other", start); ok {
		t.Error("another state's attempt cookie, renamed, completed a login")
	}
	b := attemptAuth(t, "http://localhost:3000/callback")
	b.attempts, _, _ = newAttemptCipher(&Config{AttemptKey: []byte("0123456789abcdef0123456789abcdef")})
	if _, ok, _ := take(b, []*http.Cookie{s1}, "s1", start); ok {
		t.Error("an attempt cookie sealed with another key completed a login")
	}
	tampered := *s1
	tampered.Value = s1.Value[:len(s1.Value)-2] + "AA"
	if _, ok, _ := take(a, []*http.Cookie{&tampered}, "s1", start); ok {
		t.Error("a tampered attempt cookie completed a login")
	}
}

func TestLoginAttemptsPerBrowserAreCapped(t *testing.T) {
	a := attemptAuth(t, "http://localhost:3000/callback")
	start := time.Now()
	var jar []*http.Cookie
	for i := range 3 * MaxPendingLogins {
		jar = apply(jar, save(t, a, jar, "state"+string(rune('A'+i)), start.Add(time.Duration(i)*time.Second)))
	}
	if len(jar) != MaxPendingLogins {
		t.Fatalf("%d attempts left %d cookies, want %d", 3*MaxPendingLogins, len(jar), MaxPendingLogins)
	}
	newest := "state" + string(rune('A'+3*MaxPendingLogins-1))
	if _, ok, _ := take(a, jar, newest, start.Add(time.Minute)); !ok {
		t.Error("the newest attempt did not complete")
	}
	if _, ok, _ := take(a, jar, "stateA", start.Add(time.Minute)); ok {
		t.Error("the oldest attempt, beyond the cap, completed")
	}
}

// TestLoginAttemptsBelongToTheirProvider: with several providers, one
// provider's callback cannot complete another's attempt, even with the
// same key and state (a mix-up), and starting a login at one leaves the
// other's pending attempts alone.
func TestLoginAttemptsBelongToTheirProvider(t *testing.T) {
	start := time.Now()
	plain := attemptAuth(t, "http://localhost:3000/callback")
	corp := namedAttemptAuth(t, "http://localhost:3000/callback/corp", "corp")
	partner := namedAttemptAuth(t, "http://localhost:3000/callback/partner", "partner")
	jar := save(t, corp, nil, "s", start)
	jar = apply(jar, save(t, plain, jar, "p", start))
	jar = apply(jar, save(t, partner, jar, "q", start))
	if len(jar) != 3 {
		t.Fatalf("three providers' attempts: the browser keeps %d cookies, want 3", len(jar))
	}
	for _, other := range []*Auth{plain, partner} {
		if _, ok, _ := take(other, jar, "s", start); ok {
			t.Errorf("provider %q completed corp's attempt", other.Name())
		}
	}
	if tx, ok, _ := take(corp, jar, "s", start); !ok || tx.Nonce != "n-s" {
		t.Error("corp's own callback did not complete its attempt")
	}
	if _, ok, _ := take(plain, jar, "p", start); !ok {
		t.Error("the unnamed provider's attempt did not complete beside named ones")
	}
}

func TestLoginAttemptCookiesOverHTTPS(t *testing.T) {
	a := attemptAuth(t, "https://app.example/callback")
	c := save(t, a, nil, "s", time.Now())[0]
	if !c.Secure || c.Name != a.txCookieName("s") || !strings.HasPrefix(c.Name, "__Host-") {
		t.Errorf("attempt cookie over https: %q secure=%v, want a Secure __Host- cookie", c.Name, c.Secure)
	}
}

func TestLoginAttemptCookieStaysSmall(t *testing.T) {
	a := attemptAuth(t, "http://localhost:3000/callback")
	for _, returnTo := range []string{"/" + strings.Repeat("a", maxReturnTo-1), "/" + strings.Repeat(`"<`, maxReturnTo/2-1)} {
		r := httptest.NewRequest("GET", "/login", nil)
		w := httptest.NewRecorder()
		if err := a.saveTransaction(w, r, "s", transaction{ReturnTo: returnTo, Started: time.Now()}); err != nil {
			t.Fatal(err)
		}
		c := w.Result().Cookies()[0]
		if n := len(c.Name) + len(c.Value); n > maxCookieSize {
			t.Errorf("attempt cookie with a %d-byte returnTo is %d bytes, more than browsers keep", len(returnTo), n)
		}
		tx, ok, _ := take(a, []*http.Cookie{c}, "s", time.Now())
		if !ok || (tx.ReturnTo != returnTo && tx.ReturnTo != "/") {
			t.Errorf("attempt with a %d-byte returnTo: ok %v, returnTo %.20q", len(returnTo), ok, tx.ReturnTo)
		}
	}
}

// TestLoginAttemptCookiesStayWithinHeaderLimits starts logins with the
// longest return paths: the browser's attempt cookies stay small enough
// together for proxies' Cookie header limits, and the newest completes.
func TestLoginAttemptCookiesStayWithinHeaderLimits(t *testing.T) {
	a := attemptAuth(t, "http://localhost:3000/callback")
	start := time.Now()
	var jar []*http.Cookie
	for i := range 12 {
		r := httptest.NewRequest("GET", "/login", nil)
		for _, c := range jar {
			r.AddCookie(c)
		}
		w := httptest.NewRecorder()
		state := "state" + string(rune('A'+i))
		if err := a.saveTransaction(w, r, state, transaction{ReturnTo: "/" + strings.Repeat("x", maxReturnTo-1), Started: start.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
		jar = apply(jar, w.Result().Cookies())
		total := 0
		for _, c := range jar {
			total += len(c.Name) + len(c.Value)
		}
		if total > maxAttemptBytes {
			t.Fatalf("after %d logins the attempt cookies hold %d bytes, more than %d", i+1, total, maxAttemptBytes)
		}
		if _, ok, _ := take(a, jar, state, start.Add(time.Minute)); !ok {
			t.Fatalf("login %d, the newest, does not complete", i+1)
		}
	}
}

// TestAttemptKeyOfAKeyOnlyClient: instances of a client with a key and no
// secret derive the same attempt key from it, so a login started on one
// completes on another.
func TestAttemptKeyOfAKeyOnlyClient(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	instance := func() *Auth {
		sm := scs.New()
		sm.Store, sm.Codec = sessionstore.NewMemory(), sessionstore.Codec{}
		a, err := New(Config{Issuer: "https://op.example", ClientID: "c", ClientKey: key, RedirectURL: "https://app.example/callback", Sessions: sm})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	one, two := instance(), instance()
	cookies := save(t, one, nil, "s", time.Now())
	if _, ok, _ := take(two, cookies, "s", time.Now()); !ok {
		t.Error("a login started on one instance of a key-only client does not complete on another")
	}
}
