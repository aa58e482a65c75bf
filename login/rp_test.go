package login

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/alexedwards/scs/v2"

	"github.com/gologin/gologin/devidp"
	"github.com/gologin/gologin/devidp/devidptest"
	"github.com/gologin/gologin/internal/testclient"
	"github.com/gologin/gologin/sessionstore"
)

// rpSecret is the testRP's client secret.
const rpSecret = "app-secret"

// testRP is a relying party under test: an Auth whose Login, Callback and
// Logout a loopback server serves inside scs's LoadAndSave, with a memory
// store, against a devidptest.Faulty provider that knows it as client
// "app". Its GET / answers the signed-in user as JSON, or "guest". Its
// Config.ErrorHandler answers with the *Error's status and message, and it
// records what the package hands to ErrorHandler and OnEvent.
type testRP struct {
	base string
	auth *Auth
	idp  *devidptest.Faulty

	mu     sync.Mutex
	errs   []error
	events []Event
}

// newRP starts a testRP; edit, when set, changes its Config before New.
func newRP(t *testing.T, edit func(*Config)) *testRP {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	rp := &testRP{base: "http://" + srv.Listener.Addr().String()}
	rp.idp = devidptest.NewFaulty(t, devidp.Client{ID: "app", Secret: rpSecret,
		RedirectURIs: []string{rp.base + "/callback"}, PostLogoutRedirectURIs: []string{rp.base + "/"}})
	store := sessionstore.NewMemory()
	sm := scs.New()
	sm.Store = store
	sm.Codec = sessionstore.Codec{}
	cfg := Config{
		Issuer: rp.idp.Issuer(), ClientID: "app", ClientSecret: rpSecret,
		RedirectURL: rp.base + "/callback", PostLogoutRedirectURL: rp.base + "/",
		Sessions: sm,
		Logger:   slog.New(slog.NewTextHandler(logTo(t), nil)),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			rp.mu.Lock()
			rp.errs = append(rp.errs, err)
			rp.mu.Unlock()
			e := asError(err)
			http.Error(w, e.Message, e.Status)
		},
		OnEvent: func(_ context.Context, e Event) {
			rp.mu.Lock()
			rp.events = append(rp.events, e)
			rp.mu.Unlock()
		},
	}
	if edit != nil {
		edit(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rp.auth = a
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", a.Login)
	mux.HandleFunc("GET /callback", a.Callback)
	mux.HandleFunc("POST /callback", a.Callback) // ResponseMode form_post
	mux.HandleFunc("POST /logout", a.Logout)
	// GET /api calls the provider's userinfo as an API, through Client.
	mux.HandleFunc("GET /api", func(w http.ResponseWriter, r *http.Request) {
		c, err := a.Client(r)
		if err != nil {
			a.cfg.ErrorHandler(w, r, err)
			return
		}
		endpoint, _ := a.UserInfoURL(r.Context())
		resp, err := c.Get(endpoint)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		u, ok := a.User(r)
		if !ok {
			w.Write([]byte("guest"))
			return
		}
		json.NewEncoder(w).Encode(u)
	})
	srv.Config.Handler = sm.LoadAndSave(mux)
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		store.Close()
	})
	return rp
}

// logTo writes to t's output until t ends, and then nowhere.
func logTo(t *testing.T) io.Writer {
	w := &testWriter{w: t.Output()}
	t.Cleanup(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.w = nil
	})
	return w
}

type testWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.w == nil {
		return len(p), nil
	}
	return w.w.Write(p)
}

// signIn starts a login in b and submits the provider's sign-in page as
// "User EMAIL" with email, changed by extra, and returns the page it lands
// on: the RP's home page when the sign-in worked.
func (rp *testRP) signIn(t *testing.T, b *testclient.Browser, email string, extra map[string]string) testclient.Page {
	t.Helper()
	p := b.Get(rp.base + "/login")
	set := map[string]string{"name": "User " + email, "email": email}
	for k, v := range extra {
		set[k] = v
	}
	return b.Submit(p.Form(t, "/authorize"), set)
}

// user returns the user b's session holds, if any.
func (rp *testRP) user(t *testing.T, b *testclient.Browser) (User, bool) {
	t.Helper()
	p := b.Get(rp.base + "/")
	if p.Status != http.StatusOK {
		t.Fatalf("home page: %d %s", p.Status, p.Body)
	}
	if p.Body == "guest" {
		return User{}, false
	}
	var u User
	if err := json.Unmarshal([]byte(p.Body), &u); err != nil {
		t.Fatalf("home page %q: %v", p.Body, err)
	}
	return u, true
}

// reset forgets the errors and events recorded so far.
func (rp *testRP) reset() {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	rp.errs, rp.events = nil, nil
}

// failures returns the *Errors handed to ErrorHandler since the last reset,
// failing the test on any other error.
func (rp *testRP) failures(t *testing.T) []*Error {
	t.Helper()
	rp.mu.Lock()
	defer rp.mu.Unlock()
	var out []*Error
	for _, err := range rp.errs {
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("ErrorHandler got %T %v, want an *Error", err, err)
		}
		out = append(out, e)
	}
	return out
}

// onlyError returns the one *Error handed to ErrorHandler since the last
// reset, failing the test if there was not exactly one.
func (rp *testRP) onlyError(t *testing.T) *Error {
	t.Helper()
	errs := rp.failures(t)
	if len(errs) != 1 {
		t.Fatalf("ErrorHandler called %d times, want once: %v", len(errs), errs)
	}
	return errs[0]
}

// sawEvent reports whether OnEvent was told of e since the last reset.
func (rp *testRP) sawEvent(e Event) bool {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	for _, got := range rp.events {
		if got == e {
			return true
		}
	}
	return false
}

// wantFailure checks that the last request failed with reason and status,
// with a user-facing message containing message, reported to OnEvent as a
// failed login, and that b is not signed in.
func (rp *testRP) wantFailure(t *testing.T, b *testclient.Browser, p testclient.Page, reason string, status int, message string) {
	t.Helper()
	e := rp.onlyError(t)
	if e.Reason != reason || e.Status != status || !strings.Contains(e.Message, message) {
		t.Errorf("ErrorHandler got %s %d %q (%v), want %s %d with %q", e.Reason, e.Status, e.Message, e.Err, reason, status, message)
	}
	if p.Status != status {
		t.Errorf("the browser got %d, want %d", p.Status, status)
	}
	if !rp.sawEvent(Event{Kind: LoginFailed, Reason: reason}) {
		t.Errorf("OnEvent was not told of a failed login (%s)", reason)
	}
	if u, ok := rp.user(t, b); ok {
		t.Errorf("signed in as %q (%s) after a failed login", u.Name, u.Subject)
	}
}
