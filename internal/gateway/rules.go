package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/gologin/gologin/login"
)

// Rule is a login.Rule that applies to requests for Host (empty: every host) under Path.
type Rule struct {
	Host string // lower case, without port or trailing dot; "" matches every host
	Path string // a path prefix, "/" by default, matched whole segments at a time and without case
	Line int    // where the rule starts in its file, for log lines
	login.Rule
}

// Rules are the rules of a file; a request must pass every rule that matches it.
type Rules []Rule

// LoadRules reads and parses the rules file at path (see ParseRules).
// Its errors start with path.
func LoadRules(path string) (Rules, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		// A PathError would name the file a second time.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ParseRules(path, data)
}

// ParseRules parses a rules file, YAML such as
//
//	groups_claim: https://example.com/roles # default of every rule
//	rules:
//	  - host: app.example.com # optional: every host
//	    path: /admin          # optional: /
//	    groups: [admins]
//	  - email_domains: [example.com]
//	    emails: [contractor@partner.org]
//	    claims:
//	      department: [engineering, research]
//	      email_verified: [true]
//	    groups_claim: roles
//
// Every rule needs a condition: emails, email_domains, groups or claims.
// Claim values written as YAML booleans or numbers are compared as JSON
// writes them (true, 42); quote them to compare strings. Errors are
// "name:line: message", one per problem, joined.
func ParseRules(name string, data []byte) (Rules, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err == io.EOF {
		return nil, nil // empty, or only comments
	} else if err != nil {
		return nil, syntaxError(name, err)
	}
	p := &ruleParser{name: name}
	rules := p.file(&doc)
	var more yaml.Node
	if err := dec.Decode(&more); err == nil {
		p.errorf(&more, "a second YAML document; a rules file has one")
	} else if err != io.EOF {
		p.errs = append(p.errs, syntaxError(name, err)) // after every line of the first
	}
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return rules, nil
}

// yamlLine is how yaml.v3 places its syntax errors.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parserProblems are yaml.v3's parser errors (not its scanner's), which
// give a line counted from 0: yaml.v3 (v3.0.6) adds the 1 to scanner
// errors only. The tests pin these lines.
var parserProblems = []string{
	"did not find expected <stream-start>", "did not find expected <document start>",
	"found undefined tag handle", "did not find expected node content",
	"did not find expected '-' indicator", "did not find expected key",
	"did not find expected ',' or ']'", "did not find expected ',' or '}'",
	"found duplicate %YAML directive", "found incompatible YAML document", "found duplicate %TAG directive",
}

// syntaxError restates a YAML syntax error as name:line: message.
func syntaxError(name string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	if slices.Contains(parserProblems, msg) {
		line++ // also when yaml.v3 gave no line: that was its line 0
	}
	if line == 0 {
		return fmt.Errorf("%s: %s", name, msg)
	}
	return fmt.Errorf("%s:%d: %s", name, line, msg)
}

var (
	fileKeys = []string{"groups_claim", "rules"}
	ruleKeys = []string{"host", "path", "providers", "emails", "email_domains", "groups", "groups_claim", "claims"}
)

// ruleParser walks the nodes of a rules file, collecting every error
// rather than stopping at the first.
type ruleParser struct {
	name  string
	errs  []error
	lines []int // of errs
}

func (p *ruleParser) errorf(n *yaml.Node, format string, args ...any) {
	err := fmt.Errorf("%s:%d: %s", p.name, n.Line, fmt.Sprintf(format, args...))
	// In the order of lines, though a mapping's keys are checked before its values.
	i := len(p.errs)
	for i > 0 && p.lines[i-1] > n.Line {
		i--
	}
	p.errs = slices.Insert(p.errs, i, error(err))
	p.lines = slices.Insert(p.lines, i, n.Line)
}

func (p *ruleParser) file(doc *yaml.Node) Rules {
	root := deref(doc)
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = deref(root.Content[0])
	}
	if isNull(root) {
		return nil // "---" or "~" alone
	}
	if root.Kind != yaml.MappingNode {
		p.errorf(root, "the file must be a mapping with the keys %s, not %s", strings.Join(fileKeys, " and "), describe(root))
		return nil
	}
	var groupsClaim string
	var list *yaml.Node
	for _, f := range p.mapping(root, "", fileKeys) {
		switch f.key {
		case "groups_claim":
			groupsClaim = p.scalar(f.value, f.key)
		case "rules":
			list = f.value
		}
	}
	if list == nil {
		return nil
	}
	if list.Kind != yaml.SequenceNode {
		p.errorf(list, "rules: a list of rules expected, not %s (write rules: [] for none)", describe(list))
		return nil
	}
	var rules Rules
	for _, item := range list.Content {
		if r, ok := p.rule(deref(item), groupsClaim); ok {
			rules = append(rules, r)
		}
	}
	return rules
}

func (p *ruleParser) rule(n *yaml.Node, groupsClaim string) (Rule, bool) {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "a rule must be a mapping with some of the keys %s, not %s", strings.Join(ruleKeys, ", "), describe(n))
		return Rule{}, false
	}
	before := len(p.errs)
	r := Rule{Path: "/", Line: n.Line}
	r.GroupsClaim = groupsClaim
	for _, f := range p.mapping(n, "in a rule ", ruleKeys) {
		v := f.value
		switch f.key {
		case "host":
			if s := p.scalar(v, f.key); s != "" {
				if h, msg := ruleHost(s); msg != "" {
					p.errorf(v, "host %q: %s", s, msg)
				} else {
					r.Host = h
				}
			}
		case "path":
			if s := p.scalar(v, f.key); s != "" {
				if msg := rulePathProblem(s); msg != "" {
					p.errorf(v, "path %q: %s", s, msg)
				} else if s != "/" {
					r.Path = strings.TrimSuffix(s, "/")
				}
			}
		case "groups_claim":
			r.GroupsClaim = p.scalar(v, f.key)
		case "emails":
			r.Emails = p.list(v, f.key, false, func(s string) string {
				if at := strings.LastIndexByte(s, '@'); at <= 0 || at == len(s)-1 {
					return "an address such as ada@example.com (for a whole domain, use email_domains)"
				}
				return ""
			})
		case "email_domains":
			r.EmailDomains = p.list(v, f.key, false, func(s string) string {
				if strings.Contains(s, "@") || strings.HasPrefix(s, ".") {
					return "a domain without @, such as example.com (for one address, use emails)"
				}
				return ""
			})
		case "groups":
			r.Groups = p.list(v, f.key, false, nil)
		case "providers":
			r.Providers = p.list(v, f.key, false, nil)
		case "claims":
			r.Claims = p.claims(v)
		}
	}
	if len(p.errs) > before {
		return Rule{}, false
	}
	if len(r.Emails) == 0 && len(r.EmailDomains) == 0 && len(r.Groups) == 0 && len(r.Claims) == 0 && len(r.Providers) == 0 {
		p.errorf(n, "the rule sets no condition (providers, emails, email_domains, groups or claims): "+
			"it would allow every signed-in user, which is what happens without rules")
		return Rule{}, false
	}
	return r, true
}

// field is a key of a mapping and its value.
type field struct {
	key   string
	value *yaml.Node
}

// mapping returns the fields of n in their order, reporting keys that are
// not in valid (when set) or come twice; where says where the keys are,
// for the message.
func (p *ruleParser) mapping(n *yaml.Node, where string, valid []string) []field {
	var out []field
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			p.errorf(k, "a key must be a string, not %s", describe(k))
			continue
		}
		if line, dup := seen[k.Value]; dup {
			p.errorf(k, "duplicate key %q (first at line %d)", k.Value, line)
			continue
		}
		seen[k.Value] = k.Line
		if valid != nil && !slices.Contains(valid, k.Value) {
			p.errorf(k, "unknown key %q %s(valid keys: %s)", k.Value, where, strings.Join(valid, ", "))
			continue
		}
		out = append(out, field{k.Value, v})
	}
	return out
}

// scalar returns the string n holds, reporting anything else, or an empty
// string, as an error.
func (p *ruleParser) scalar(n *yaml.Node, key string) string {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		p.errorf(n, "%s: a string expected, not %s", key, describe(n))
		return ""
	}
	if n.Value == "" {
		p.errorf(n, "%s: empty string", key)
	}
	return n.Value
}

// list returns the strings of the list n, reporting anything else as an
// error, as well as the items that check (if set) finds a problem with.
// With asJSON, booleans and numbers are written as JSON writes them, as
// login.Rule compares claims.
func (p *ruleParser) list(n *yaml.Node, key string, asJSON bool, check func(string) string) []string {
	if n.Kind != yaml.SequenceNode {
		hint := ""
		if n.Kind == yaml.ScalarNode && !isNull(n) {
			hint = fmt.Sprintf(" (write [%s])", n.Value)
		}
		p.errorf(n, "%s: a list expected, not %s%s", key, describe(n), hint)
		return nil
	}
	if len(n.Content) == 0 {
		// An empty list would drop the condition, or for a claim refuse
		// everyone: neither is what it looks like.
		p.errorf(n, "%s: empty list; leave %s out, or list values", key, key)
		return nil
	}
	var out []string
	for _, item := range n.Content {
		item = deref(item)
		if item.Kind != yaml.ScalarNode || isNull(item) {
			p.errorf(item, "%s: an item is %s; items must be strings", key, describe(item))
			continue
		}
		s := item.Value
		if s == "" {
			p.errorf(item, "%s: empty string", key)
			continue
		}
		if asJSON {
			s = jsonScalar(item)
		}
		if check != nil {
			if msg := check(s); msg != "" {
				p.errorf(item, "%s: %q: want %s", key, s, msg)
				continue
			}
		}
		out = append(out, s)
	}
	return out
}

func (p *ruleParser) claims(n *yaml.Node) map[string][]string {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "claims: a mapping of claim names to lists of values expected, not %s", describe(n))
		return nil
	}
	out := map[string][]string{}
	for _, f := range p.mapping(n, "", nil) {
		if f.key == "" {
			p.errorf(f.value, "claims: empty claim name")
			continue
		}
		out[f.key] = p.list(f.value, "claims."+f.key, true, nil)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// jsonScalar is a YAML scalar as it is compared with claims: booleans and
// numbers as JSON writes them, everything else as written.
func jsonScalar(n *yaml.Node) string {
	switch n.Tag {
	case "!!bool":
		var b bool
		if n.Decode(&b) == nil {
			return strconv.FormatBool(b)
		}
	case "!!int", "!!float":
		// As login reads JSON numbers: float64.
		var f float64
		if n.Decode(&f) == nil {
			return strconv.FormatFloat(f, 'f', -1, 64)
		}
	}
	return n.Value
}

func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// describe names what n is, for error messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "nothing"
		case "!!str":
			return fmt.Sprintf("the string %q", n.Value)
		case "!!int", "!!float":
			return "the number " + n.Value
		case "!!bool":
			return "the boolean " + n.Value
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// ruleHost checks and normalises a rule's host, returning a problem if any.
func ruleHost(s string) (string, string) {
	switch {
	case strings.Contains(s, "://"):
		return "", "want a host name without scheme, such as app.example.com"
	case strings.Contains(s, "@"):
		return "", "want a host name without user information"
	case strings.ContainsAny(s, "/?#"):
		return "", "want a host name without path, such as app.example.com"
	}
	if strings.HasPrefix(s, "[") {
		inner, ok := strings.CutSuffix(s, "]")
		if !ok {
			return "", "want an IPv6 address in brackets, without port, such as [::1]"
		}
		a, err := netip.ParseAddr(inner[1:])
		if err != nil || !a.Is6() {
			return "", "want an IPv6 address in brackets, such as [::1]"
		}
		return "[" + a.String() + "]", ""
	}
	if strings.Contains(s, ":") {
		return "", "want a host name without port"
	}
	h := strings.TrimSuffix(strings.ToLower(s), ".")
	if h == "" || strings.HasPrefix(h, ".") || strings.Contains(h, "..") {
		return "", "a host name has no empty labels"
	}
	for _, c := range []byte(h) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return "", "want letters, digits, '-' and '.' only (wildcards are not supported; write international names as xn--)"
		}
	}
	return h, ""
}

// escape is a %-escape, which a rule cannot match: requests are compared
// decoded.
var escape = regexp.MustCompile(`%[0-9A-Fa-f]{2}`)

// rulePathProblem says what is wrong with a rule's path, if anything. A
// path is compared with requests' after they are cleaned, so a spelling
// no clean request path has would never match.
func rulePathProblem(s string) string {
	switch {
	case !strings.HasPrefix(s, "/"):
		return "want a path starting with /"
	case strings.Contains(s, "//"):
		return "want a path without //"
	case strings.ContainsAny(s, "?#"):
		return "want a path without query (?) or fragment (#)"
	case strings.Contains(s, ";"):
		return "want a path without ;parameters, which are ignored in requests"
	case strings.Contains(s, `\`):
		return `want a path with / between segments, not \`
	case escape.MatchString(s):
		return "want the path decoded, without %-escapes"
	case strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "want a path without control characters"
	}
	if strings.Contains(s, "..") || slices.Contains(strings.Split(s, "/"), ".") {
		return "want a path without .. or . segments"
	}
	return ""
}

// Refusal returns the first rule matching host and path that does not
// allow u, whose claims are claims (User.Claims), or nil when every
// matching rule allows u. host "" means the host is not known: the rules of every host apply. path is the request's decoded path (r.URL.Path).
//
// Paths match loosely, without case and after removing dot segments and
// ;parameters (which servlet containers ignore): a rule matches any
// spelling an upstream may read as a path under it, since one it missed
// would let people through.
func (rs Rules) Refusal(u login.User, claims map[string]any, host, urlPath string) *Rule {
	if len(rs) == 0 {
		return nil
	}
	host, ok := requestHost(host)
	if !ok {
		host = "" // unknown: every host's rules apply
	}
	readings := pathReadings(urlPath)
	for i := range rs {
		r := &rs[i]
		if r.Host != "" && host != "" && r.Host != host {
			continue
		}
		if !slices.ContainsFunc(readings, func(p []string) bool { return underRulePath(p, r.Path) }) {
			continue
		}
		if !r.AllowsClaims(u, claims) {
			return r
		}
	}
	return nil
}

// RefusalAnywhere returns the first rule that does not allow u, whose
// claims are claims, whatever
// its host and path, or nil: the answer when the request is not known.
func (rs Rules) RefusalAnywhere(u login.User, claims map[string]any) *Rule {
	for i := range rs {
		if !rs[i].AllowsClaims(u, claims) {
			return &rs[i]
		}
	}
	return nil
}

// requestHost normalises a request's host as rules' hosts are: lower case,
// without port or trailing dots, IPv6 addresses in brackets in their
// canonical form. ok is false for a host that does not parse (such as
// admin.example.com:443:443, which Go's server accepts and which some
// servers read as admin.example.com): the caller then applies the rules
// of every host.
func requestHost(h string) (host string, ok bool) {
	host = strings.ToLower(h)
	switch {
	case strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]"):
		host = host[1 : len(host)-1]
	case strings.Contains(host, ":"):
		var port string
		var err error
		if host, port, err = net.SplitHostPort(host); err != nil || port == "" || strings.Trim(port, "0123456789") != "" {
			return "", false
		}
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Is6() {
			return "[" + a.String() + "]", true
		}
		return a.String(), true
	}
	host = strings.TrimRight(host, ".")
	if host == "" || strings.Trim(host, "abcdefghijklmnopqrstuvwxyz0123456789-._") != "" {
		return "", false
	}
	return host, true
}

// pathReadings returns the segments of the ways an upstream may read a
// request path: cleaned with its ;parameters stripped before (as Tomcat
// does, so that /public/..;/admin is /admin) and after (so that
// /admin/..;x/y, which a server that keeps parameters reads as under
// /admin, is), each also with backslashes read as slashes, as IIS does.
func pathReadings(p string) [][]string {
	spellings := []string{p}
	if strings.Contains(p, `\`) {
		spellings = append(spellings, strings.ReplaceAll(p, `\`, "/"))
	}
	var out [][]string
	for _, s := range spellings {
		s = "/" + s
		out = append(out, segments(stripParams(path.Clean(s))), segments(path.Clean(stripParams(s))))
	}
	// Windows servers drop trailing dots and spaces from a segment:
	// /admin. and /admin%20 are /admin there.
	for _, segs := range out {
		if slices.ContainsFunc(segs, func(seg string) bool { return strings.TrimRight(seg, ". ") != seg }) {
			trimmed := make([]string, len(segs))
			for i, seg := range segs {
				trimmed[i] = strings.TrimRight(seg, ". ")
			}
			out = append(out, trimmed)
		}
	}
	return out
}

// stripParams removes the ;parameters of every segment of p.
func stripParams(p string) string {
	if !strings.Contains(p, ";") {
		return p
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i], _, _ = strings.Cut(s, ";")
	}
	return strings.Join(segs, "/")
}

// segments splits a path into its non-empty segments.
func segments(p string) []string {
	return strings.FieldsFunc(p, func(r rune) bool { return r == '/' })
}

// underRulePath reports whether the path of segs is rulePath or under it,
// compared without case.
func underRulePath(segs []string, rulePath string) bool {
	want := segments(rulePath)
	if len(segs) < len(want) {
		return false
	}
	for i, w := range want {
		if !strings.EqualFold(segs[i], w) {
			return false
		}
	}
	return true
}
