// Package testskip sums up, in one line per package, the tests that
// skipped for want of a browser or a server, and what would run them. go
// test shows skips only with -v; a package's TestMain prints the line, which
// go test shows with -v, when run in the package's directory, or when the
// package fails.
package testskip

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
)

// Services is the remedy of the tests that need Redis or PostgreSQL.
const Services = `start the servers with eval "$(.ci/services)"`

// Log counts skipped tests by reason. Its methods are safe for concurrent
// use, as parallel tests skip at once.
type Log struct {
	mu      sync.Mutex
	entries []skipEntry // in the order first seen
}

type skipEntry struct {
	reason, remedy string
	n              int
}

// Add records that a test skips for reason; remedy says how to run it.
func (l *Log) Add(reason, remedy string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, e := range l.entries {
		if e.reason == reason && e.remedy == remedy {
			l.entries[i].n++
			return
		}
	}
	l.entries = append(l.entries, skipEntry{reason, remedy, 1})
}

// Summary returns one line saying how many of pkg's tests skipped, why, and
// what would run them, with the reasons that share a remedy together; ""
// if none skipped.
func (l *Log) Summary(pkg string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	total := 0
	var remedies []string
	reasons := make(map[string][]string)
	for _, e := range l.entries {
		total += e.n
		if reasons[e.remedy] == nil {
			remedies = append(remedies, e.remedy)
		}
		reasons[e.remedy] = append(reasons[e.remedy], fmt.Sprintf("%s (%d)", e.reason, e.n))
	}
	if total == 0 {
		return ""
	}
	groups := make([]string, len(remedies))
	for i, r := range remedies {
		groups[i] = strings.Join(reasons[r], ", ") + ": " + r
	}
	tests := "tests"
	if total == 1 {
		tests = "test"
	}
	return fmt.Sprintf("%s: skipped %d %s: %s", pkg, total, tests, strings.Join(groups, "; "))
}

// Skipped is the log of this test binary: each package's tests run as a
// binary of their own, so it is the package's.
var Skipped Log

// Main is a TestMain that runs the tests, then prints Skipped's summary for
// pkg.
func Main(m *testing.M, pkg string) {
	code := m.Run()
	if s := Skipped.Summary(pkg); s != "" {
		fmt.Println(s)
	}
	os.Exit(code)
}

// ServerURL returns the URL of a test server from the environment variable
// name, or skips the test with hint, recording it in Skipped, when it is
// unset. Under CI=true a missing server fails the test instead: CI must not
// pass by skipping.
func ServerURL(t testing.TB, name, hint string) string {
	t.Helper()
	u := os.Getenv(name)
	if u == "" {
		msg := name + " not set: " + hint
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		Skipped.Add(name+" not set", Services)
		t.Skip(msg)
	}
	return u
}
