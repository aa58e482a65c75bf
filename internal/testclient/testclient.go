// Package testclient is a browser-like HTTP client for tests: it keeps
// cookies, follows redirects and submits HTML forms the way a browser would.
package testclient

import (
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// Browser is one browser: its own cookie jar.
type Browser struct {
	t      testing.TB
	Client *http.Client
}

// Page is a response with its body read.
type Page struct {
	Status int
	URL    *url.URL // after redirects
	Header http.Header
	Body   string
}

// New returns a Browser that follows redirects.
func New(t testing.TB) *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{t: t, Client: &http.Client{Jar: jar}}
}

// NoRedirects returns a copy of b, sharing its cookies, that stops at
// the first response.
func (b *Browser) NoRedirects() *Browser {
	c := *b.Client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Browser{t: b.t, Client: &c}
}

// Get fetches rawURL.
func (b *Browser) Get(rawURL string) Page {
	b.t.Helper()
	resp, err := b.Client.Get(rawURL)
	if err != nil {
		b.t.Fatalf("GET %s: %v", rawURL, err)
	}
	return read(b.t, resp)
}

// PostForm posts form to rawURL.
func (b *Browser) PostForm(rawURL string, form url.Values) Page {
	b.t.Helper()
	resp, err := b.Client.PostForm(rawURL, form)
	if err != nil {
		b.t.Fatalf("POST %s: %v", rawURL, err)
	}
	return read(b.t, resp)
}

func read(t testing.TB, resp *http.Response) Page {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading %s: %v", resp.Request.URL, err)
	}
	return Page{Status: resp.StatusCode, URL: resp.Request.URL, Header: resp.Header, Body: string(body)}
}

var (
	formRe  = regexp.MustCompile(`(?s)<form\b([^>]*)>(.*?)</form>`)
	inputRe = regexp.MustCompile(`<input\b[^>]*>`)
	attrRe  = regexp.MustCompile(`\b(name|value|action|method)="([^"]*)"`)
)

// Form is an HTML form found on a page.
type Form struct {
	Action string // resolved against the page URL
	Method string
	Values url.Values // the inputs' current values
}

// Form returns the first form on the page whose action contains
// actionContains, failing the test if there is none.
func (p Page) Form(t testing.TB, actionContains string) Form {
	t.Helper()
	for _, m := range formRe.FindAllStringSubmatch(p.Body, -1) {
		attrs := attrsOf(m[1])
		if !strings.Contains(attrs["action"], actionContains) {
			continue
		}
		f := Form{Method: strings.ToUpper(attrs["method"]), Values: url.Values{}}
		action, err := p.URL.Parse(attrs["action"])
		if err != nil {
			t.Fatalf("form action %q: %v", attrs["action"], err)
		}
		f.Action = action.String()
		for _, in := range inputRe.FindAllString(m[2], -1) {
			a := attrsOf(in)
			if a["name"] != "" {
				f.Values.Set(a["name"], a["value"])
			}
		}
		return f
	}
	t.Fatalf("no form with action containing %q on %s:\n%s", actionContains, p.URL, p.Body)
	return Form{}
}

func attrsOf(tag string) map[string]string {
	m := make(map[string]string)
	for _, a := range attrRe.FindAllStringSubmatch(tag, -1) {
		m[a[1]] = html.UnescapeString(a[2])
	}
	return m
}

// Submit posts the form with its values, changed by set.
func (b *Browser) Submit(f Form, set map[string]string) Page {
	b.t.Helper()
	v := url.Values{}
	for k, vs := range f.Values {
		v[k] = append([]string(nil), vs...)
	}
	for k, s := range set {
		v.Set(k, s)
	}
	return b.PostForm(f.Action, v)
}
