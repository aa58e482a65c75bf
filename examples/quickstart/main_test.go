package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/gologin/gologin/devidp"
	"github.com/gologin/gologin/devidp/devidptest"
	"github.com/gologin/gologin/internal/testclient"
	"github.com/gologin/gologin/login"
	"github.com/gologin/gologin/sessionstore"
)

// TestREADMEShowsThisProgram keeps README.md's "Add login to your own Go
// app" snippet and this file the same, so the snippet always compiles.
func TestREADMEShowsThisProgram(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "## Add login to your own Go app\n")
	_, snippet, ok2 := strings.Cut(section, "```go\n")
	snippet, _, ok3 := strings.Cut(snippet, "```\n")
	if !ok || !ok2 || !ok3 {
		t.Fatal(`README.md has no go block under "## Add login to your own Go app"`)
	}
	program, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	if snippet != string(program) {
		t.Fatal("README.md's snippet differs from examples/quickstart/main.go: copy main.go into it")
	}
}

// TestQuickstartSignsInAndOut runs the program's handler against the
// development provider: a guest is greeted, /account sends them through
// sign-in and back, the home page then has the logout form, and logging
// out makes them a guest again.
func TestQuickstartSignsInAndOut(t *testing.T) {
	app := httptest.NewUnstartedServer(nil)
	base := "http://" + app.Listener.Addr().String()
	_, idp := devidptest.NewServer(t, devidp.Client{ID: "demo", Secret: "demo-secret",
		RedirectURIs: []string{base + "/callback"}, PostLogoutRedirectURIs: []string{base + "/"}})
	cfg := login.Config{Issuer: idp.Issuer(), ClientID: "demo", ClientSecret: "demo-secret",
		RedirectURL: base + "/callback", PostLogoutRedirectURL: base + "/"}
	store := sessionstore.NewMemory()
	defer store.Close()
	h, err := newHandler(cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	app.Config.Handler = h
	app.Start()
	defer app.Close()

	b := testclient.New(t)
	if p := b.Get(base + "/"); !strings.Contains(p.Body, "Welcome Guest") {
		t.Fatalf("guest home page: %d %s", p.Status, p.Body)
	}
	p := b.Get(base + "/account")
	p = b.Submit(p.Form(t, "/authorize"), map[string]string{"name": "Ada <3", "email": "ada@example.com"})
	if p.Status != http.StatusOK || p.URL.Path != "/account" || !strings.Contains(p.Body, "Signed in as ada@example.com") {
		t.Fatalf("after sign-in: want /account of Ada, got %d %s:\n%s", p.Status, p.URL, p.Body)
	}
	home := b.Get(base + "/")
	if !strings.Contains(home.Body, "Welcome Ada &lt;3!") {
		t.Fatalf("signed-in home page: %s", home.Body)
	}
	if p := b.Submit(home.Form(t, "/logout"), nil); !strings.Contains(p.Body, "Welcome Guest") {
		t.Fatalf("after logout: want the guest home page, got %d %s:\n%s", p.Status, p.URL, p.Body)
	}
}
