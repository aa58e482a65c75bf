package signinform

import (
	"net/url"
	"reflect"
	"testing"
)

func TestFind(t *testing.T) {
	page, _ := url.Parse("http://127.0.0.1:3000/devidp/authorize?client_id=app")
	tests := []struct {
		name, body string
		action     string
		form       url.Values // nil: no sign-in form found
	}{
		{"the sign-in form after another form", `<form action="/search"><input name="q" value="x"></form>
<form method="post" action="/devidp/authorize">
<input type="hidden" name="state" value="a&amp;b">
<input id="email" name="email" type="email" value="" required>
<button type="submit" name="signin" value="1">Sign in</button>
</form>`, "http://127.0.0.1:3000/devidp/authorize", url.Values{"state": {"a&b"}, "email": {""}}},
		{"attributes across lines; data-name is not name", `<form
action="https://idp.example/oauth2/authorize"><input data-name="x"
name="email" value="a@example.com"><inputmode name="no" value="no"></form>`, "https://idp.example/oauth2/authorize", url.Values{"email": {"a@example.com"}}},
		{"an email field posting elsewhere, then the sign-in form", `<form method="post" action="/subscribe"><input name="email" value="news@example.com"></form>
<form method="post" action="authorize"><input name="email" value=""></form>`, "http://127.0.0.1:3000/devidp/authorize", url.Values{"email": {""}}},
		{"only an email field posting elsewhere", `<form method="post" action="/subscribe"><input name="email" value=""></form>`, "", nil},
		{"data-name is not an email field", `<form action="/authorize"><input data-name="email" name="q" value=""></form>`, "", nil},
		{"no email field", `<form action="/authorize"><input name="user" value=""></form>`, "", nil},
		{"unclosed form", `<form action="/authorize"><input name="email" value="">`, "", nil},
		{"no form", `<p>Signed in</p>`, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			action, form, err := Find(page, []byte(tt.body))
			if tt.form == nil {
				if err == nil {
					t.Fatalf("found a sign-in form: %s %v", action, form)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if action != tt.action || !reflect.DeepEqual(form, tt.form) {
				t.Errorf("got %s %v, want %s %v", action, form, tt.action, tt.form)
			}
		})
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

func TestFindDevProviderPage(t *testing.T) {
	page, _ := url.Parse("http://127.0.0.1:9000/authorize?client_id=gw")
	action, form, err := Find(page, []byte(signInPage))
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
	if _, _, err := Find(page, []byte(`<form method="post" action="/logout"><input name="email" value=""></form>`)); err == nil {
		t.Error("found a sign-in form posting elsewhere than /authorize")
	}
}
