package login

import (
	"net/url"
	"strings"
)

// maxReturnTo bounds the length of a saved return path.
const maxReturnTo = 2048

// SafeReturnTo reports whether s is a path on this site that is safe to send
// the browser back to after sign-in, and returns it. Only paths of the form
// "/x" are accepted: never "//host", "/\host", a scheme, control characters
// or an encoding of any of these, which browsers would read as another site.
func SafeReturnTo(s string) (string, bool) {
	if s == "" || len(s) > maxReturnTo || s[0] != '/' {
		return "", false
	}
	for _, r := range s {
		// Browsers drop tabs and newlines and treat '\' as '/'.
		if r < 0x20 || r == 0x7f || r == '\\' {
			return "", false
		}
	}
	if strings.HasPrefix(s, "//") {
		return "", false
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "", false
	}
	// An encoded slash or backslash right after the first one would become
	// "//" or "/\" for a server or proxy that decodes the path.
	if p, err := url.PathUnescape(u.EscapedPath()); err != nil || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return "", false
	}
	return s, true
}
