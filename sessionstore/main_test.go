package sessionstore

import (
	"fmt"
	"os"
	"testing"

	"github.com/gologin/gologin/internal/testskip"
)

// skipped counts the tests that skip for want of a server.
var skipped testskip.Log

// TestMain prints the summary of skipped tests after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if s := skipped.Summary("sessionstore"); s != "" {
		fmt.Println(s)
	}
	os.Exit(code)
}
