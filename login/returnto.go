package login

import (
	"net/url"
	"strings"
)

// maxReturnTo bounds the length of a saved return path.
const maxReturnTo = 2048

// SafeReturnTo reports whether s is a path on this site that is safe to send
// the browser back to after sign-in, and returns it. Only paths of the form
// "/x" are accepted: never "//host", "/\host", a scheme, control characters,
// look-alike slashes, dot segments ("/.//host" becomes "//host" once they
// are removed), or a percent-encoding of any of these, which a browser or a
// decoding proxy could read as another site.
func SafeReturnTo(s string) (string, bool) {
	if len(s) > maxReturnTo || !localPath(s) {
		return "", false
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "", false
	}
	decoded, err := url.PathUnescape(s)
	if err != nil || !localPath(decoded) {
		return "", false
	}
	return s, true
}

// slashLike are characters that some browsers, servers or Unicode
// normalisations turn into '/' or '\'.
const slashLike = "\\／＼∕⁄﹨∖⧸"

func localPath(s string) bool {
	if !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") || strings.ContainsAny(s, slashLike) {
		return false
	}
	for _, r := range s {
		// Browsers drop tabs and newlines anywhere in a URL.
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	path, _, _ := strings.Cut(s, "?")
	path, _, _ = strings.Cut(path, "#")
	for seg := range strings.SplitSeq(path, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}
