package gateway

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
)

// PublicPath is a kind of request the gateway proxies without sign-in: one
// of Methods (any method when empty) for a path under Prefix, or matching
// Pattern.
type PublicPath struct {
	Methods []string
	// Prefix matches whole segments: /health matches /health and
	// /health/live, not /healthz; /static/ matches what is under /static/.
	Prefix  string
	Pattern *regexp.Regexp
}

// ParsePublicPaths reads a comma-separated list of public paths, each
// "[METHODS=]PATH": METHODS is one method or several joined by "|", and
// PATH a path prefix starting with "/" or a regular expression starting
// with "^", as in GET=^/api/v1/status$ or /static/.
func ParsePublicPaths(s string) ([]PublicPath, error) {
	var out []PublicPath
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		var p PublicPath
		rest := entry
		if methods, path, ok := strings.Cut(entry, "="); ok && !strings.HasPrefix(entry, "/") && !strings.HasPrefix(entry, "^") {
			for m := range strings.SplitSeq(methods, "|") {
				if m == "" || strings.ContainsFunc(m, func(r rune) bool { return r < 'A' || r > 'Z' }) {
					return nil, fmt.Errorf("public path %q: %q is not an HTTP method in capitals, such as GET", entry, m)
				}
				p.Methods = append(p.Methods, m)
			}
			rest = path
		}
		switch {
		case strings.HasPrefix(rest, "^"):
			re, err := regexp.Compile(rest)
			if err != nil {
				return nil, fmt.Errorf("public path %q: %v", entry, err)
			}
			p.Pattern = re
		case strings.HasPrefix(rest, "/") && canonicalPath(rest):
			p.Prefix = rest
		default:
			return nil, fmt.Errorf("public path %q: want a path such as /static/ or a regular expression starting with ^", entry)
		}
		out = append(out, p)
	}
	return out, nil
}

// isPublic reports whether r may pass without sign-in. Only a path in one
// plain spelling can be public: one with dot segments, doubled slashes,
// encoded slashes or backslashes, matrix parameters or a double
// encoding is not, whatever it looks like, since the upstream may read it
// as another path (/public/../admin). Letters are compared as they are:
// /PUBLIC is not /public.
func (g *Gateway) isPublic(r *http.Request) bool {
	if len(g.cfg.Public) == 0 || !canonicalPath(r.URL.Path) || !plainEscaping(r.URL.EscapedPath()) {
		return false
	}
	for _, p := range g.cfg.Public {
		if len(p.Methods) > 0 && !slices.Contains(p.Methods, r.Method) {
			continue
		}
		if p.Pattern != nil && p.Pattern.MatchString(r.URL.Path) || p.Prefix != "" && underPrefix(r.URL.Path, p.Prefix) {
			return true
		}
	}
	return false
}

func underPrefix(path, prefix string) bool {
	if strings.HasSuffix(prefix, "/") {
		return strings.HasPrefix(path, prefix)
	}
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// canonicalPath reports whether a decoded path has one spelling only.
func canonicalPath(p string) bool {
	if !strings.HasPrefix(p, "/") || strings.Contains(p, "//") || strings.ContainsAny(p, "\\;%") {
		return false
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	for _, c := range []byte(p) {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// plainEscaping reports whether an escaped path encodes no character that
// changes what the path means once decoded: '/', '\', ';' or '%'.
func plainEscaping(escaped string) bool {
	for i := 0; i+2 < len(escaped); i++ {
		if escaped[i] != '%' {
			continue
		}
		switch strings.ToUpper(escaped[i+1 : i+3]) {
		case "2F", "5C", "3B", "25":
			return false
		}
	}
	return true
}
