//go:build ignore

// gen_redirects writes open-redirect.txt, the corpus of returnTo values
// that SafeReturnTo must reject: run `go run gen_redirects.go` here.
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

func main() {
	hosts := []string{"evil.example", "evil.example:443", "127.0.0.1", "[::1]", "evil。example", "0x7f000001"}
	// Ways to make a browser or a decoding proxy leave the site.
	prefixes := []string{
		"//", "///", "////", "/\\", "\\/", "\\\\", "\\", "/\\/", "/ /\\",
		"https://", "http://", "HTTPS://", "hTtP://", "ftp://", "https:", "http:/", "https:\\\\", "https:/\\",
		"//user@", "//user:pass@", "https://app.example@", "/\t/", "/\n/", "/\r/", "\t//", "\n//", " //", "\x00//",
		"/%2f", "/%2F", "/%5c", "/%5C", "%2f%2f", "%2F%2F", "/%2f%2f", "/%5c%5c", "%5c%5c", "/%09/", "/%0a/", "/%0d/", "/%00/",
		"/／", "／／", "/＼", "＼＼", "/∕", "/⁄", "/﹨", "/∖",
		"javascript://", "data://", "//%09", "/.%2f/",
	}
	suffixes := []string{"", "/", "/path?next=/", "#/", "?x=1"}
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			out = append(out, strconv.Quote(s))
		}
	}
	for _, p := range prefixes {
		for i, h := range hosts {
			add(p + h + suffixes[i%len(suffixes)])
		}
	}
	for _, s := range []string{
		"", "evil.example", "profile", ".", "..", "./x", "../x",
		"javascript:alert(1)", "JavaScript:alert(1)", "java\tscript:alert(1)", "data:text/html,<script>alert(1)</script>",
		"vbscript:msgbox(1)", "mailto:a@evil.example", "/ok\r\nLocation: https://evil.example",
		"/ok\nSet-Cookie: session=x", "/%zz", "/%", "/" + strings.Repeat("a", 2100),
	} {
		add(s)
	}
	f := "# returnTo values SafeReturnTo must reject; one Go-quoted string per line (written by gen_redirects.go)\n" + strings.Join(out, "\n") + "\n"
	if err := os.WriteFile("open-redirect.txt", []byte(f), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(len(out), "payloads")
}
