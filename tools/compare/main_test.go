package main

import (
	"net/url"
	"os"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name string
		stat string
		want int64
		ok   bool
	}{
		// A real line (proc(5)): utime 1523 and stime 377 are fields 14
		// and 15.
		{"plain", "4242 (gateway) S 1 4242 4242 0 -1 4194560 1234 0 0 0 1523 377 0 0 20 0 9 0 123456 1234567 2345 18446744073709551615 1 1 0 0 0 0 0 0 2143420159 0 0 0 17 1 0 0 0 0 0\n", 1900, true},
		// The command name may hold spaces and parentheses: fields count
		// from the last ')'.
		{"odd name", "7 (a) b (c)) R 1 7 7 0 -1 0 0 0 0 0 10 5 0 0 20 0 1 0 1 1 1\n", 15, true},
		{"no name", "7 a R 1 7 7 0 -1 0 0 0 0 0 10 5\n", 0, false},
		{"truncated", "7 (a) R 1 7 7 0 -1 0 0 0 0 0 10\n", 0, false},
		{"not numbers", "7 (a) R 1 7 7 0 -1 0 0 0 0 0 x 5 0 0\n", 0, false},
		{"negative", "7 (a) R 1 7 7 0 -1 0 0 0 0 0 -1 5 0 0\n", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat([]byte(tt.stat))
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("parseStat = %d, %v; want %d, ok %v", got, err, tt.want, tt.ok)
			}
		})
	}
}

// procCPU reads this very process's stat file: its CPU time grows.
func TestProcCPUSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	pid := os.Getpid()
	before, err := procCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); time.Since(start) < 50*time.Millisecond; {
	}
	after, err := procCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	if after < before || after == 0 {
		t.Errorf("CPU time went from %v to %v", before, after)
	}
}

// The sign-in form as devidp/templates/signin.html writes it, after a
// decoy form.
const signInPage = `<!doctype html><html><body>
<form method="post" action="/logout"><input type="hidden" name="csrf" value="x"></form>
<form method="post" action="http://127.0.0.1:9000/authorize">
<input type="hidden" name="client_id" value="gw">
<input type="hidden" name="redirect_uri" value="http://127.0.0.1:4180/_auth/callback">
<input type="hidden" name="state" value="a&amp;b">
<input type="hidden" name="nonce" value="n">
<input type="hidden" name="scope" value="openid profile email">
<input type="hidden" name="code_challenge" value="c">
<label for="name">Name</label>
<input id="name" name="name" value="Demo User" required maxlength="100" autocomplete="name">
<input id="email" name="email" type="email" value="demo@example.com" required maxlength="254">
<input id="groups" name="groups" value="" maxlength="1400">
<button type="submit" name="signin" value="1">Sign in</button>
</form></body></html>`

func TestSignInForm(t *testing.T) {
	page, _ := url.Parse("http://127.0.0.1:9000/authorize?client_id=gw")
	action, form, err := signInForm(page, []byte(signInPage))
	if err != nil {
		t.Fatal(err)
	}
	if action != "http://127.0.0.1:9000/authorize" {
		t.Errorf("action %q", action)
	}
	want := map[string]string{"client_id": "gw", "redirect_uri": "http://127.0.0.1:4180/_auth/callback", "state": "a&b",
		"code_challenge": "c", "scope": "openid profile email", "email": "demo@example.com", "groups": ""}
	for k, v := range want {
		if got := form.Get(k); got != v || !form.Has(k) {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if form.Has("csrf") {
		t.Error("took the decoy form's fields")
	}
	if _, _, err := signInForm(page, []byte(`<form method="post" action="/logout"><input name="email" value=""></form>`)); err == nil {
		t.Error("found a sign-in form posting elsewhere than /authorize")
	}
}

func TestParseTarget(t *testing.T) {
	tg, err := parseTarget("upstream=http://127.0.0.1:47100/,pid=12,guest")
	if err != nil || tg.name != "upstream" || tg.base != "http://127.0.0.1:47100" || tg.pid != 12 || !tg.guest {
		t.Errorf("parseTarget = %+v, %v", tg, err)
	}
	for _, bad := range []string{"x", "=http://a", "x=ftp://a", "x=http://a,pid=0", "x=http://a,other"} {
		if _, err := parseTarget(bad); err == nil {
			t.Errorf("parseTarget(%q) accepted", bad)
		}
	}
}

func TestMedian(t *testing.T) {
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median of 3 = %v", m)
	}
	if m := median([]float64{4, 1, 2, 3}); m != 2.5 {
		t.Errorf("median of 4 = %v", m)
	}
	if m := median(nil); m != 0 {
		t.Errorf("median of none = %v", m)
	}
}

func TestParseSystemStat(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	got, err := parseSystemStat([]byte("cpu  100810 348 26336 165913 938 0 666 1859 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n"))
	if want := int64(100810 + 348 + 26336 + 666 + 1859); err != nil || got != want {
		t.Errorf("parseSystemStat = %d, %v; want %d", got, err, want)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4 5 6 7 8\n", "cpu 1 2 3\n", "cpu 1 2 x 4 5 6 7 8\n"} {
		if _, err := parseSystemStat([]byte(bad)); err == nil {
			t.Errorf("parseSystemStat(%q) accepted", bad)
		}
	}
}
