package gateway

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gologin/gologin/login"
)

func TestParseRulesErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       string // the error's beginning, name:line: (or name: without a line)
		message    string // and a part of its message
	}{
		{"syntax", "rules:\n  - groups: [a\n", "rules.yaml:2:", "did not find expected ',' or ']'"},
		{"syntax at the end", "rules: [\n", "rules.yaml:2:", "did not find expected node content"},
		{"block syntax", "rules:\n  - groups: [a]\n   path: /a\n", "rules.yaml:2:", "did not find expected '-' indicator"},
		{"scanner", "rules:\n  - groups: [a]\n    path: /a: b\n", "rules.yaml:3:", "mapping values are not allowed"},
		{"tab", "rules:\n\t- groups: [a]\n", "rules.yaml:2:", "cannot start any token"},
		{"unknown anchor", "rules:\n  - groups: *admins\n", "rules.yaml:", "unknown anchor 'admins'"}, // yaml.v3 gives no line,
		{"not a mapping", "- groups: [a]\n", "rules.yaml:1:", "must be a mapping"},
		{"unknown top key", "groups_claim: roles\nrule:\n  - groups: [a]\n", "rules.yaml:2:", `unknown key "rule" (valid keys: groups_claim, rules)`},
		{"rules not a list", "rules:\n  groups: [a]\n", "rules.yaml:2:", "a list of rules expected, not a mapping"},
		{"rules null", "rules:\n", "rules.yaml:1:", "a list of rules expected, not nothing"},
		{"rule not a mapping", "rules:\n  - admins\n", "rules.yaml:2:", `a rule must be a mapping`},
		{"unknown rule key", "rules:\n  - path: /admin\n    grups: [a]\n", "rules.yaml:3:", `unknown key "grups" in a rule (valid keys: host, path, providers, emails, email_domains, groups, groups_claim, claims)`},
		{"duplicate key", "rules:\n  - groups: [a]\n    path: /a\n    groups: [b]\n", "rules.yaml:4:", `duplicate key "groups" (first at line 2)`},
		{"duplicate claim", "rules:\n  - claims:\n      dept: [a]\n      dept: [b]\n", "rules.yaml:4:", `duplicate key "dept"`},
		{"string for a list", "rules:\n  - path: /admin\n    groups: admins\n", "rules.yaml:3:", `groups: a list expected, not the string "admins" (write [admins])`},
		{"mapping for a list", "rules:\n  - emails: {a: b}\n", "rules.yaml:2:", "emails: a list expected, not a mapping"},
		{"null for a list", "rules:\n  - path: /a\n    groups:\n", "rules.yaml:3:", "groups: a list expected, not nothing"},
		{"empty list", "rules:\n  - path: /a\n    groups: []\n", "rules.yaml:3:", "groups: empty list"},
		{"empty claim list", "rules:\n  - claims:\n      dept: []\n", "rules.yaml:3:", "claims.dept: empty list"},
		{"list item a list", "rules:\n  - groups:\n      - a\n      - [b]\n", "rules.yaml:4:", "groups: an item is a list"},
		{"empty string item", "rules:\n  - groups: [a, '']\n", "rules.yaml:2:", "groups: empty string"},
		{"null item", "rules:\n  - groups:\n      - a\n      -\n", "rules.yaml:4:", "groups: an item is nothing"},
		{"list for a string", "rules:\n  - groups: [a]\n    path: [/a]\n", "rules.yaml:3:", "path: a string expected, not a list"},
		{"empty host", "rules:\n  - groups: [a]\n    host: ''\n", "rules.yaml:3:", "host: empty string"},
		{"path relative", "rules:\n  - groups: [a]\n    path: admin\n", "rules.yaml:3:", `path "admin": want a path starting with /`},
		{"path dot dot", "rules:\n  - groups: [a]\n    path: /a/../b\n", "rules.yaml:3:", "without .. or . segments"},
		{"path dot", "rules:\n  - groups: [a]\n    path: /a/./b\n", "rules.yaml:3:", "without .. or . segments"},
		{"path double slash", "rules:\n  - groups: [a]\n    path: //a\n", "rules.yaml:3:", "without //"},
		{"path query", "rules:\n  - groups: [a]\n    path: /a?b\n", "rules.yaml:3:", "without query"},
		{"path fragment", "rules:\n  - groups: [a]\n    path: '/a#b'\n", "rules.yaml:3:", "fragment"},
		{"path control", "rules:\n  - groups: [a]\n    path: \"/a\\tb\"\n", "rules.yaml:3:", "control characters"},
		{"path params", "rules:\n  - groups: [a]\n    path: /a;b\n", "rules.yaml:3:", ";parameters"},
		{"path escape", "rules:\n  - groups: [a]\n    path: /a%2Fb\n", "rules.yaml:3:", "decoded"},
		{"host scheme", "rules:\n  - groups: [a]\n    host: https://app.example.com\n", "rules.yaml:3:", "without scheme"},
		{"host path", "rules:\n  - groups: [a]\n    host: app.example.com/admin\n", "rules.yaml:3:", "without path"},
		{"host userinfo", "rules:\n  - groups: [a]\n    host: ada@app.example.com\n", "rules.yaml:3:", "without user information"},
		{"host port", "rules:\n  - groups: [a]\n    host: app.example.com:8443\n", "rules.yaml:3:", "without port"},
		{"IPv6 host port", "rules:\n  - groups: [a]\n    host: '[::1]:8443'\n", "rules.yaml:3:", "without port"},
		{"host wildcard", "rules:\n  - groups: [a]\n    host: '*.example.com'\n", "rules.yaml:3:", "wildcards are not supported"},
		{"email without @", "rules:\n  - emails: [ada.example.com]\n", "rules.yaml:2:", `emails: "ada.example.com": want an address`},
		{"domain with @", "rules:\n  - path: /a\n    email_domains:\n      - '@example.com'\n", "rules.yaml:4:", "want a domain without @"},
		{"no condition", "rules:\n  - groups: [a]\n  - host: app.example.com\n    path: /admin\n", "rules.yaml:3:", "sets no condition"},
		{"claims not a mapping", "rules:\n  - claims: [dept]\n", "rules.yaml:2:", "claims: a mapping of claim names"},
		{"second document", "rules:\n  - groups: [a]\n---\nrules: []\n", "rules.yaml:3:", "a second YAML document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rules, err := ParseRules("rules.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("no error; rules %+v", rules)
			}
			if rules != nil {
				t.Errorf("rules %+v with the error", rules)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, tc.want+" ") || !strings.Contains(msg, tc.message) {
				t.Errorf("error %q, want %q with %q", msg, tc.want, tc.message)
			}
		})
	}
}

// TestParseRulesAllErrors checks that one parse reports every problem,
// each with its line.
func TestParseRulesAllErrors(t *testing.T) {
	src := `groups_claim: [roles]
rules:
  - path: admin
    groups: admins
  - emails: [nobody]
    colour: blue
  - host: app.example.com
`
	_, err := ParseRules("r.yaml", []byte(src))
	if err == nil {
		t.Fatal("no error")
	}
	got := strings.Split(err.Error(), "\n")
	want := []string{"r.yaml:1: groups_claim:", "r.yaml:3: path", "r.yaml:4: groups:", "r.yaml:5: emails:", "r.yaml:6: unknown key", "r.yaml:7: the rule sets no condition"}
	if len(got) != len(want) {
		t.Fatalf("%d errors, want %d:\n%v", len(got), len(want), err)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("error %d: %q, want it to start with %q", i, got[i], want[i])
		}
	}
}

func TestParseRules(t *testing.T) {
	src := `# the roles claim that an Auth0 Action adds
groups_claim: https://example.com/roles
rules:
  - host: APP.Example.com.
    path: /admin/
    groups: [admins, ops]
  - email_domains: [example.com]
    emails: [contractor@partner.org]
    claims:
      department: [engineering, research]
      email_verified: [true]
      level: [42, 1.50, "007", 2024-01-01]
    groups_claim: roles

  - groups: [staff]
    path: /
    host: '[0:0::1]'
`
	rules, err := ParseRules("rules.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := Rules{
		{Host: "app.example.com", Path: "/admin", Line: 4, Rule: login.Rule{
			Groups: []string{"admins", "ops"}, GroupsClaim: "https://example.com/roles"}},
		{Path: "/", Line: 7, Rule: login.Rule{
			EmailDomains: []string{"example.com"}, Emails: []string{"contractor@partner.org"},
			Claims: map[string][]string{"department": {"engineering", "research"}, "email_verified": {"true"},
				"level": {"42", "1.5", "007", "2024-01-01"}},
			GroupsClaim: "roles"}},
		{Host: "[::1]", Path: "/", Line: 15, Rule: login.Rule{
			Groups: []string{"staff"}, GroupsClaim: "https://example.com/roles"}},
	}
	if !reflect.DeepEqual(rules, want) {
		t.Errorf("got\n%+v\nwant\n%+v", rules, want)
	}

	// Without a groups_claim at the top, rules leave login's default.
	rules, err = ParseRules("rules.yaml", []byte("rules:\n  - groups: [a]\n"))
	if err != nil || len(rules) != 1 || rules[0].GroupsClaim != "" || rules[0].Path != "/" {
		t.Errorf("got %+v, %v; want one rule for / without GroupsClaim", rules, err)
	}
}

func TestParseRulesEmpty(t *testing.T) {
	for _, src := range []string{"", "# nothing yet\n", "---\n", "rules: []\n", "groups_claim: roles\n", "groups_claim: roles\nrules: []\n"} {
		rules, err := ParseRules("rules.yaml", []byte(src))
		if err != nil || len(rules) != 0 {
			t.Errorf("%q: got %+v, %v; want no rules and no error", src, rules, err)
		}
	}
}

func TestLoadRules(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(file, []byte("rules:\n  - path: /admin\n    groups: [admins]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rules, err := LoadRules(file)
	if err != nil || len(rules) != 1 || rules[0].Path != "/admin" || rules[0].Line != 2 {
		t.Errorf("LoadRules: %+v, %v; want the rule for /admin at line 2", rules, err)
	}

	if err := os.WriteFile(file, []byte("rules:\n  - path: /admin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadRules(file); err == nil || !strings.HasPrefix(err.Error(), file+":2: ") {
		t.Errorf("LoadRules of a bad file: %v, want an error starting with %s:2:", err, file)
	}

	missing := filepath.Join(dir, "missing.yaml")
	_, err = LoadRules(missing)
	if err == nil || !strings.HasPrefix(err.Error(), missing+": ") || strings.Count(err.Error(), missing) != 1 || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadRules of a missing file: %v, want an error naming the path once, and fs.ErrNotExist", err)
	}
}

func TestRuleMatching(t *testing.T) {
	admin := Rules{{Path: "/admin", Rule: login.Rule{Groups: []string{"admins"}}}}
	for _, tc := range []struct {
		rules   Rules
		host    string
		path    string
		matches bool
	}{
		{admin, "", "/admin", true},
		{admin, "", "/admin/", true},
		{admin, "", "/admin/x", true},
		{admin, "", "/ADMIN", true},
		{admin, "", "/ADMIN/x", true},
		{admin, "", "/Admin;jsessionid=1/x", true},
		{admin, "", "/admin;x=1/y", true},
		{admin, "", "/admin;x/secret", true},
		{admin, "", "/x/../admin/y", true},
		{admin, "", "/public/../admin", true},
		{admin, "", "/public/..;/admin", true},  // Tomcat: /admin
		{admin, "", "/admin/..;x/secret", true}, // a server that keeps ;x: under /admin
		{admin, "", `/public\..\admin`, true},   // IIS: /admin
		{admin, "", "//admin", true},
		{admin, "", "/./admin", true},
		{admin, "", "admin", true},
		{admin, "", "/administrator", false},
		{admin, "", "/adm", false},
		{admin, "", "/", false},
		{admin, "", "", false},
		{admin, "", "/public/admin", false},
		{admin, "", "/admin/../public", false},
		{admin, "", "/admin;x/../public", false},
		{Rules{{Path: "/", Rule: login.Rule{Groups: []string{"a"}}}}, "", "/anything/at/all", true},
		{Rules{{Path: "/", Rule: login.Rule{Groups: []string{"a"}}}}, "", "", true},
		{Rules{{Path: "/a/b", Rule: login.Rule{Groups: []string{"a"}}}}, "", "/A/B/c", true},
		{Rules{{Path: "/a/b", Rule: login.Rule{Groups: []string{"a"}}}}, "", "/a/bc", false},
		{Rules{{Path: "/a/b", Rule: login.Rule{Groups: []string{"a"}}}}, "", "/a", false},
	} {
		if got := tc.rules.Refusal(login.User{Email: "ada@example.com"}, nil, tc.host, tc.path) != nil; got != tc.matches {
			t.Errorf("rule %s, path %q: matched %v, want %v", tc.rules[0].Path, tc.path, got, tc.matches)
		}
	}

	app := Rules{{Host: "app.example.com", Path: "/", Rule: login.Rule{Groups: []string{"admins"}}}}
	ip6 := Rules{{Host: "[::1]", Path: "/", Rule: login.Rule{Groups: []string{"admins"}}}}
	for _, tc := range []struct {
		rules   Rules
		host    string
		matches bool
	}{
		{app, "app.example.com", true},
		{app, "APP.example.com.", true},
		{app, "app.example.com:8443", true},
		{app, "App.Example.Com.:443", true},
		{app, "", true}, // unknown host: every rule applies
		{app, "other.example.com", false},
		{app, "app.example.com.evil.org", false},
		{ip6, "[::1]:8080", true},
		{ip6, "[0:0::1]", true},
		{ip6, "::1", true},
		{ip6, "[::2]:8080", false},
		{ip6, "127.0.0.1", false},
	} {
		if got := tc.rules.Refusal(login.User{}, nil, tc.host, "/x") != nil; got != tc.matches {
			t.Errorf("rule for %s, host %q: matched %v, want %v", tc.rules[0].Host, tc.host, got, tc.matches)
		}
	}
}

func TestRefusal(t *testing.T) {
	rules, err := ParseRules("rules.yaml", []byte(`groups_claim: https://example.com/roles
rules:
  - host: app.example.com
    path: /admin
    groups: [admins]
  - path: /
    email_domains: [example.com]
    emails: [contractor@partner.org]
  - host: other.example.com
    path: /research
    claims:
      department: [research]
      email_verified: [true]
`))
	if err != nil {
		t.Fatal(err)
	}
	user := func(email, claims string) login.User {
		return login.User{Email: email, ClaimsJSON: json.RawMessage(claims)}
	}
	ada := user("ada@example.com", `{"email_verified":true,"https://example.com/roles":["admins"]}`)
	bob := user("bob@example.com", `{"email_verified":true,"https://example.com/roles":"staff","department":"research"}`)
	carol := user("contractor@partner.org", `{"department":["sales","research"],"email_verified":true}`)
	eve := user("eve@evil.org", `{"https://example.com/roles":["admins"]}`)
	for _, tc := range []struct {
		user       login.User
		host, path string
		refusedBy  int // the Line of the refusing rule, 0 when allowed
	}{
		{ada, "app.example.com", "/admin/users", 0},
		{ada, "", "/", 0},
		{ada, "other.example.com", "/research", 9}, // no department claim
		{bob, "app.example.com", "/admin", 3},
		{bob, "app.example.com", "/ADMIN;x=1/", 3},
		{bob, "app.example.com", "/public/../admin", 3},
		{bob, "other.example.com", "/admin", 0}, // the admin rule is app.example.com's
		{bob, "", "/admin", 3},                  // unknown host: every rule applies
		{bob, "app.example.com", "/public", 0},
		{bob, "other.example.com", "/research/x", 0},
		{carol, "app.example.com", "/", 0},
		{carol, "other.example.com", "/research", 0},
		{carol, "app.example.com", "/admin", 3},
		{eve, "app.example.com", "/admin", 6}, // in the group, but not at an allowed address
		{eve, "app.example.com", "/", 6},
		{user("", "{}"), "", "/", 6},
	} {
		got := rules.Refusal(tc.user, tc.user.Claims(), tc.host, tc.path)
		line := 0
		if got != nil {
			line = got.Line
		}
		if line != tc.refusedBy {
			t.Errorf("%s at %s%s: refused by %+v, want the rule at line %d (0: none)", tc.user.Email, tc.host, tc.path, got, tc.refusedBy)
		}
	}

	if got := rules.RefusalAnywhere(carol, carol.Claims()); got == nil || got.Line != 3 {
		t.Errorf("RefusalAnywhere(carol) = %+v, want the rule at line 3", got)
	}
	if got := (Rules{rules[1]}).RefusalAnywhere(carol, carol.Claims()); got != nil {
		t.Errorf("RefusalAnywhere(carol) of a rule allowing her = %+v, want nil", got)
	}
	if got := Rules(nil).Refusal(eve, eve.Claims(), "", "/"); got != nil {
		t.Errorf("no rules refused %+v", got)
	}
}
