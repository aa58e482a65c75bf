package app

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gologin/gologin/internal/testclient"
)

// TestErrorPagesOfferRetryWhereItHelps checks which error pages offer
// "Try again" (a new sign-in): those where signing in again may succeed.
func TestErrorPagesOfferRetryWhereItHelps(t *testing.T) {
	base, _ := startApp(t, map[string]string{"SESSION_STORE": "memory"})
	b := testclient.New(t)
	loc, _ := url.Parse(b.NoRedirects().Get(base + "/login").Header.Get("Location"))
	state := loc.Query().Get("state")
	tests := []struct {
		name, path string
		status     int
		text       string
		retry      bool
	}{
		{"page not found", "/no-such-page", http.StatusNotFound, "There is no page at this address.", false},
		{"unknown sign-in attempt", "/callback?state=x&code=y", http.StatusBadRequest, "Sign-in expired", true},
		{"cancelled at the provider", "/callback?" + url.Values{"state": {state}, "error": {"access_denied"}, "iss": {base + "/devidp"}}.Encode(),
			http.StatusBadRequest, "You cancelled sign-in.", true},
	}
	for _, tt := range tests {
		p := b.Get(base + tt.path)
		if p.Status != tt.status || !strings.Contains(p.Body, tt.text) {
			t.Errorf("%s: got %d, want %d with %q:\n%s", tt.name, p.Status, tt.status, tt.text, p.Body)
		}
		if got := strings.Contains(p.Body, "Try again"); got != tt.retry {
			t.Errorf("%s: offers Try again = %v, want %v", tt.name, got, tt.retry)
		}
	}
	signInDev(t, b, base, "/login", "Ada", "ada@example.com")
	p := b.PostForm(base+"/logout", url.Values{})
	if p.Status != http.StatusForbidden || strings.Contains(p.Body, "Try again") {
		t.Errorf("logout without its token: got %d, want 403 without Try again:\n%s", p.Status, p.Body)
	}
}

func TestFaviconIsServedNotLogged(t *testing.T) {
	base, _ := startApp(t, map[string]string{"SESSION_STORE": "memory"})
	before := suiteLog.Len() // the lines of this test only: the gateway's upstream has a favicon of its own
	p := testclient.New(t).Get(base + "/favicon.ico")
	if p.Status != http.StatusOK || p.Header.Get("Content-Type") != "image/svg+xml" {
		t.Fatalf("/favicon.ico: %d %s, want 200 image/svg+xml", p.Status, p.Header.Get("Content-Type"))
	}
	for line := range strings.SplitSeq(suiteLog.String()[before:], "\n") {
		if strings.Contains(line, "path=/favicon.ico") && strings.Contains(line, "request failed") {
			t.Fatalf("/favicon.ico logged a failure: %s", line)
		}
	}
}
