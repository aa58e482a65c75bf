package app

import (
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/gologin/gologin/internal/testskip"
)

// suiteLog is everything the app logged during this package's tests.
var suiteLog lockedBuffer

// secrets are the client secrets, codes, tokens and session IDs seen
// during the tests; none may appear in suiteLog.
var secrets secretSet

// jwtPattern matches a signed or unsigned JWT, whoever issued it.
var jwtPattern = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.`)

// TestMain checks the app's log for secrets after the tests, and prints the
// summary of skipped tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if leaks := secrets.foundIn(suiteLog.String()); code == 0 && len(leaks) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: the app logged %d secrets during the tests, e.g. %q\n", len(leaks), leaks[0])
		code = 1
	} else if code == 0 {
		fmt.Printf("log check: %d log bytes hold none of %d secrets seen during the tests\n", suiteLog.Len(), secrets.len())
	}
	if s := testskip.Skipped.Summary("internal/app"); s != "" {
		fmt.Println(s)
	}
	os.Exit(code)
}

type secretSet struct {
	mu sync.Mutex
	m  map[string]bool
}

// add records secret values; short ones are ignored, as they would match
// by chance.
func (s *secretSet) add(values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]bool)
	}
	for _, v := range values {
		if len(v) >= 8 {
			s.m[v] = true
		}
	}
}

func (s *secretSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// foundIn returns the secrets, and JWT-looking strings, that log holds.
func (s *secretSet) foundIn(log string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var found []string
	for v := range s.m {
		if strings.Contains(log, v) {
			found = append(found, v)
		}
	}
	return append(found, jwtPattern.FindAllString(log, -1)...)
}

// recordSecrets notes the authorization codes and session cookies that pass
// through the app.
func recordSecrets(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secrets.add(r.URL.Query().Get("code"))
		for _, c := range r.Cookies() {
			secrets.add(c.Value)
		}
		next.ServeHTTP(w, r)
		for _, line := range w.Header().Values("Set-Cookie") {
			if c, err := http.ParseSetCookie(line); err == nil {
				secrets.add(c.Value)
			}
		}
	})
}

// The log check must be able to fail.
func TestSecretSetFindsLeaks(t *testing.T) {
	var s secretSet
	s.add("short", "0123456789abcdef")
	log := `level=INFO msg=x token=0123456789abcdef other=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyMSJ9.sig`
	if got := s.foundIn(log); len(got) != 2 {
		t.Fatalf("foundIn = %q, want the planted secret and the JWT", got)
	}
	if got := s.foundIn("level=INFO msg=clean short"); len(got) != 0 {
		t.Fatalf("foundIn on a clean log = %q", got)
	}
}
