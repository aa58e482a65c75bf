// Package signinform reads the pages of the development provider and of
// the app as the measurement tools need: the provider's sign-in form, and
// any element's attributes.
//
// It reads them with the bytes package rather than an HTML parser or
// regular expressions: the tools run on the CPUs they measure, and those
// cost more per login than the rest of a sign-in. The pages are simple:
// attributes in double quotes, as html/template writes them.
package signinform

import (
	"bytes"
	"fmt"
	"html"
	"net/url"
	"strings"
)

// Find finds the provider's sign-in form in body, the page at page: the
// form posting to its authorization endpoint, a path ending in /authorize,
// with an email field. It returns the form's absolute action URL and its
// inputs' values (the hidden fields carry the authorization request).
func Find(page *url.URL, body []byte) (string, url.Values, error) {
	for rest := body; ; {
		attrs, inner, after, ok := Element(rest, "form")
		if !ok {
			break
		}
		rest = after
		form := url.Values{}
		for in := inner; ; {
			input, _, after, ok := Element(in, "input")
			if !ok {
				break
			}
			in = after
			if name := Attr(input, "name"); name != "" {
				form.Set(name, Attr(input, "value"))
			}
		}
		if !form.Has("email") {
			continue
		}
		action, err := page.Parse(Attr(attrs, "action"))
		if err != nil || !strings.HasSuffix(action.Path, "/authorize") {
			continue
		}
		return action.String(), form, nil
	}
	// Not the query: it may carry a state or a code.
	return "", nil, fmt.Errorf("no sign-in form posting to /authorize with an email field at %s://%s%s", page.Scheme, page.Host, page.Path)
}

// Element finds the first <name ...> tag in b and returns its attributes,
// its content up to </name> (none for an input, a void element), and what
// follows.
func Element(b []byte, name string) (attrs, content, rest []byte, ok bool) {
	open := []byte("<" + name)
	for {
		i := bytes.Index(b, open)
		if i < 0 {
			return nil, nil, nil, false
		}
		b = b[i+len(open):]
		// <form but not <formula.
		if len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\t' || b[0] == '\r' || b[0] == '>' || b[0] == '/') {
			break
		}
	}
	end := bytes.IndexByte(b, '>')
	if end < 0 {
		return nil, nil, nil, false
	}
	attrs, b = b[:end], b[end+1:]
	if name == "input" {
		return attrs, nil, b, true
	}
	stop := bytes.Index(b, []byte("</"+name+">"))
	if stop < 0 {
		return nil, nil, nil, false
	}
	return attrs, b[:stop], b[stop:], true
}

// Attr is the unescaped value of the attribute name="..." in attrs, or "".
func Attr(attrs []byte, name string) string {
	key := []byte(name + `="`)
	for i := 0; ; {
		j := bytes.Index(attrs[i:], key)
		if j < 0 {
			return ""
		}
		i += j
		// A whole attribute name: data-name="..." is not name="...".
		if i > 0 && (attrs[i-1] == ' ' || attrs[i-1] == '\n' || attrs[i-1] == '\t' || attrs[i-1] == '\r') {
			v := attrs[i+len(key):]
			if end := bytes.IndexByte(v, '"'); end >= 0 {
				return html.UnescapeString(string(v[:end]))
			}
			return ""
		}
		i += len(key)
	}
}
