package login

import (
	"bufio"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
)

// localPaths must be accepted unchanged.
var localPaths = []string{
	"/", "/profile", "/a/b?c=d&e=%2F#frag", "/caf%C3%A9", "/café", "/login@evil.example", "/@evil.example",
	"/%252f%252fevil.example", "/a//b", "/.well-known/x", "/search?q=https://evil.example",
}

func TestSafeReturnToAcceptsLocalPaths(t *testing.T) {
	for _, s := range localPaths {
		if got, ok := SafeReturnTo(s); !ok || got != s {
			t.Errorf("SafeReturnTo(%q) = %q, %v; want it accepted unchanged", s, got, ok)
		}
	}
}

// TestSafeReturnToRejectsOpenRedirects runs the corpus in
// testdata/open-redirect.txt (written by testdata/gen_redirects.go).
func TestSafeReturnToRejectsOpenRedirects(t *testing.T) {
	payloads := readCorpus(t, "testdata/open-redirect.txt")
	if len(payloads) < 300 {
		t.Fatalf("corpus has %d payloads, want a few hundred", len(payloads))
	}
	for _, s := range payloads {
		if got, ok := SafeReturnTo(s); ok {
			t.Errorf("SafeReturnTo(%q) accepted %q", s, got)
		}
	}
}

func readCorpus(t testing.TB, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s, err := strconv.Unquote(line)
		if err != nil {
			t.Fatalf("%s: %q: %v", path, line, err)
		}
		out = append(out, s)
	}
	return out
}

// FuzzSafeReturnTo checks that whatever SafeReturnTo accepts stays on the
// site when a browser resolves it, even after one more decoding.
func FuzzSafeReturnTo(f *testing.F) {
	for _, s := range localPaths {
		f.Add(s)
	}
	for _, s := range readCorpus(f, "testdata/open-redirect.txt") {
		f.Add(s)
	}
	base, _ := url.Parse("https://app.example/callback")
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := SafeReturnTo(s)
		if !ok {
			return
		}
		if got != s {
			t.Fatalf("accepted %q changed to %q", s, got)
		}
		for _, form := range []string{s, mustUnescape(s)} {
			u, err := base.Parse(form)
			if err != nil {
				continue
			}
			if u.Host != "app.example" || u.Scheme != "https" {
				t.Fatalf("accepted %q resolves to %s", s, u)
			}
			if strings.HasPrefix(form, "//") || strings.ContainsAny(form, "\\\t\r\n") {
				t.Fatalf("accepted %q reads as %q", s, form)
			}
		}
	})
}

func mustUnescape(s string) string {
	d, err := url.PathUnescape(s)
	if err != nil {
		return s
	}
	return d
}
