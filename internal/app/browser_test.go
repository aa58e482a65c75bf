package app

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gologin/gologin/devidp"
	"github.com/gologin/gologin/devidp/devidptest"
	"github.com/gologin/gologin/internal/testskip"
)

// chromiumPath is Debian's Chromium, the browser the browser test drives.
const chromiumPath = "/usr/bin/chromium"

// browserTimeout bounds the whole browser run, start to finish.
const browserTimeout = 60 * time.Second

// Screenshots are taken at this desktop viewport size.
const viewportWidth, viewportHeight = 1000, 800

// TestBrowserSignInOut signs in and out through the development provider
// in a real headless Chromium, and saves screenshots of the sign-in, home
// and profile pages in screenshots/ at the repository root (and in docs/img/,
// where the README shows them, when UPDATE_SCREENSHOTS=1).
func TestBrowserSignInOut(t *testing.T) {
	ctx := startChromium(t)
	shots := screenshotDirs(t)
	base, _ := startApp(t, nil)

	start := time.Now()
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v%s", what, err, describePage(ctx))
		}
	}
	text := func(what string, sel chromedp.CSS) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel, chromedp.NodeVisible))
		if err != nil {
			t.Fatalf("%s: reading %q: %v%s", what, sel, err, describePage(ctx))
		}
		return strings.TrimSpace(s)
	}
	location := func() string {
		t.Helper()
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatalf("reading the location: %v", err)
		}
		return loc
	}
	screenshot := func(name string) {
		t.Helper()
		// Wait for the images (the avatar) and the style sheet before taking it.
		if err := chromedp.Do(ctx, waitLoaded()); err != nil {
			t.Fatalf("screenshot %s: waiting for the page: %v%s", name, err, describePage(ctx))
		}
		data, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		var paths []string
		for _, dir := range shots {
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			paths = append(paths, path)
		}
		t.Logf("screenshot: %s", strings.Join(paths, ", "))
		if testing.Verbose() {
			fmt.Printf("screenshot: %s\n", paths[0])
		}
	}

	// A guest sees the welcome page with a way to sign in.
	run("opening the home page",
		chromedp.EmulateViewport(viewportWidth, viewportHeight),
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS("main h1")),
	)
	if got := text("guest home page", "main h1"); got != "Welcome Guest" {
		t.Fatalf("guest home page heading = %q, want %q", got, "Welcome Guest")
	}

	// "Log in" leads to the development provider's sign-in page.
	run("clicking Log in",
		chromedp.Click(chromedp.CSS(`main a.button[href="/login"]`)),
		chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.WaitVisible(chromedp.CSS(`button[name="signin"]`)),
	)
	if loc := location(); !strings.HasPrefix(loc, base+"/devidp/") {
		t.Errorf("sign-in page at %s, want under %s/devidp/", loc, base)
	}
	if got := text("sign-in page", ".banner"); !strings.Contains(got, "Development provider") {
		t.Errorf("sign-in page banner = %q, want it to say it is the development provider", got)
	}
	if got := text("sign-in page", "main h1"); got != "Sign in" {
		t.Errorf("sign-in page heading = %q, want %q", got, "Sign in")
	}
	screenshot("signin.png")

	// Replace the demo user with our own, as a person would: clear, type.
	// (Clear, not SetValue(sel, ""): chromedp v0.23.0 drops an empty string
	// argument, so SetValue(sel, "") sets the value to "undefined".)
	run("filling in the sign-in form",
		chromedp.Clear(chromedp.ID("name")),
		chromedp.SendKeys(chromedp.ID("name"), "Ada Lovelace"),
		chromedp.Clear(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "ada@example.com"),
	)
	for id, want := range map[chromedp.ID]string{"name": "Ada Lovelace", "email": "ada@example.com"} {
		got, err := chromedp.Run(ctx, chromedp.Value(id))
		if err != nil || got != want {
			t.Fatalf("field %s = %q (%v), want %q", id, got, err, want)
		}
	}
	run("clicking Sign in",
		chromedp.Click(chromedp.CSS(`button[name="signin"]`)),
		// Only the signed-in home page has a logout form under a welcome.
		chromedp.WaitVisible(chromedp.CSS(`main form[action="/logout"] button[type="submit"]`)),
	)
	if got := text("signed-in home page", "main h1"); got != "Welcome Ada Lovelace!" {
		t.Fatalf("signed-in home page heading = %q, want %q", got, "Welcome Ada Lovelace!")
	}
	if loc := location(); loc != base+"/" {
		t.Errorf("after sign-in the browser is at %s, want %s/", loc, base)
	}
	screenshot("home.png")

	// The profile shows the email.
	run("opening the profile",
		chromedp.Navigate(base+"/profile"),
		chromedp.WaitVisible(chromedp.CSS("main table")),
	)
	if got := text("profile page", "main h1"); got != "Ada Lovelace" {
		t.Errorf("profile heading = %q, want %q", got, "Ada Lovelace")
	}
	if got := text("profile page", "main h1 + p"); got != "ada@example.com" {
		t.Errorf("profile email line = %q, want %q", got, "ada@example.com")
	}
	if got := text("profile page", "main table"); !strings.Contains(got, "ada@example.com") {
		t.Errorf("profile claims lack the email:\n%s", got)
	}
	screenshot("profile.png")

	// Back home, "Log out" signs out.
	run("going back home",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS(`main form[action="/logout"] button[type="submit"]`)),
	)
	if got := text("logout button", `main form[action="/logout"] button[type="submit"]`); got != "Log out" {
		t.Errorf("logout button says %q, want %q", got, "Log out")
	}
	run("clicking Log out",
		chromedp.Click(chromedp.CSS(`main form[action="/logout"] button[type="submit"]`)),
		// Only the guest home page has the Log in button in the card.
		chromedp.WaitVisible(chromedp.CSS(`main a.button[href="/login"]`)),
	)
	if got := text("home page after logout", "main h1"); got != "Welcome Guest" {
		t.Fatalf("home page after logout heading = %q, want %q", got, "Welcome Guest")
	}
	if loc := location(); loc != base+"/" {
		t.Errorf("after logout the browser is at %s, want %s/", loc, base)
	}
	t.Logf("browser run took %s", time.Since(start).Round(time.Millisecond))
}

// TestBrowserFormPostAcrossSites signs in with OIDC_RESPONSE_MODE=form_post
// in a real Chromium, the provider on another site (127.0.0.1) than the app
// (localhost): the provider's page posts the response to the app across
// sites, and the login attempt's cookie must come with that post.
func TestBrowserFormPostAcrossSites(t *testing.T) {
	ctx := startChromium(t)
	srv := httptest.NewUnstartedServer(nil)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	base := "http://localhost:" + port
	idp := devidptest.NewFaulty(t, devidp.Client{ID: "app", Secret: "app-secret",
		RedirectURIs: []string{base + "/callback"}, PostLogoutRedirectURIs: []string{base + "/"}})
	serveApp(t, srv, map[string]string{"APP_BASE_URL": base, "SESSION_STORE": "memory", "OIDC_RESPONSE_MODE": "form_post",
		"OIDC_ISSUER": idp.Issuer(), "OIDC_CLIENT_ID": "app", "OIDC_CLIENT_SECRET": "app-secret"})
	if !strings.HasPrefix(idp.Issuer(), "http://127.0.0.1:") {
		t.Fatalf("the provider is at %s, want another site than %s", idp.Issuer(), base)
	}
	var welcome string
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SetValue(chromedp.ID("name"), "Ada Lovelace"),
		chromedp.SetValue(chromedp.ID("email"), "ada@example.com"),
		chromedp.Click(chromedp.CSS(`button[name="signin"]`)),
		// The provider's page submits itself to the app's /callback.
		chromedp.WaitVisible(chromedp.CSS(`main form[action="/logout"] button[type="submit"]`)),
	)
	if err == nil {
		welcome, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main h1"), chromedp.NodeVisible))
	}
	if err != nil {
		t.Fatalf("signing in with form_post across sites: %v%s", err, describePage(ctx))
	}
	if !strings.Contains(welcome, "Welcome Ada Lovelace!") {
		t.Errorf("after the posted callback: %q, want Welcome Ada Lovelace!", welcome)
	}
}

// TestBrowserThroughGateway signs in to an upstream app through the
// gateway in a real Chromium: the guest's first page is the one it comes
// back to, the page shows who the gateway said the user is, and after
// signing out the app is out of reach again.
func TestBrowserThroughGateway(t *testing.T) {
	ctx := startChromium(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><title>App</title><h1 id=who>Hello %s</h1><p id=at>%s</p>",
			html.EscapeString(r.Header.Get("X-Forwarded-Email")), html.EscapeString(r.URL.RequestURI()))
	}))
	t.Cleanup(up.Close)
	base := startGateway(t, up.URL, nil)
	var who, at, loc string
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/reports/q?year=2026"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SetValue(chromedp.ID("name"), "Ada Lovelace"),
		chromedp.SetValue(chromedp.ID("email"), "ada@example.com"),
		chromedp.Click(chromedp.CSS(`button[name="signin"]`)),
		chromedp.WaitVisible(chromedp.ID("who")),
	)
	if err == nil {
		who, err = chromedp.Run(ctx, chromedp.Text(chromedp.ID("who"), chromedp.NodeVisible))
	}
	if err == nil {
		at, err = chromedp.Run(ctx, chromedp.Text(chromedp.ID("at"), chromedp.NodeVisible))
	}
	if err != nil {
		t.Fatalf("signing in through the gateway: %v%s", err, describePage(ctx))
	}
	if who != "Hello ada@example.com" || at != "/reports/q?year=2026" {
		t.Errorf("after sign-in the app shows %q at %q, want Hello ada@example.com at /reports/q?year=2026", who, at)
	}
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/_auth/logout"),
		chromedp.Click(chromedp.CSS(`main form[action="/_auth/logout"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/_auth/login"]`)),
		chromedp.Navigate(base+"/reports/q"),
		chromedp.WaitVisible(chromedp.ID("email")),
	)
	if err == nil {
		loc, err = chromedp.Run(ctx, chromedp.Location())
	}
	if err != nil {
		t.Fatalf("signing out through the gateway: %v%s", err, describePage(ctx))
	}
	if !strings.Contains(loc, "/_auth/devidp/authorize") {
		t.Errorf("after signing out, the app sent the browser to %s, want the sign-in page", loc)
	}
}

// startChromium starts a headless Chromium for t, stopped when t ends or
// after browserTimeout, and returns its context; without Chromium the test
// skips (fails under CI).
func startChromium(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("headless Chromium not found at %s, and CI must run the browser test: %v", chromiumPath, err)
		}
		testskip.Skipped.Add("no headless Chromium at "+chromiumPath, "apt-get install chromium")
		t.Skipf("headless Chromium not found at %s; install Debian's chromium to run the browser test", chromiumPath)
	}
	var chromeOut lockedBuffer
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox,
		chromedp.Headless,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(viewportWidth, viewportHeight),
		// Keep the browser off the network: it talks only to the app.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-client-side-phishing-detection", true),
		chromedp.Flag("safebrowsing-disable-auto-update", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter"),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.CombinedOutput(&chromeOut),
	}

	// The timeout covers the whole browser: when it ends, Chromium stops.
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	ctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() {
		if t.Failed() && chromeOut.Len() > 0 {
			t.Logf("Chromium output:\n%s", chromeOut.String())
		}
		cancelBrowser()
		cancelAlloc()
		cancel()
	})
	return ctx

}

// waitLoaded waits until the document and every image in it have loaded.
func waitLoaded() chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](`document.readyState === "complete" &&
		Array.from(document.images).every(i => i.complete && i.naturalWidth > 0) &&
		Array.from(document.styleSheets).length > 0`,
		chromedp.WithPollingTimeout(10*time.Second))
}

// describePage says where the browser is and what it shows, for failures.
func describePage(ctx context.Context) string {
	if ctx.Err() != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return ""
	}
	body, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		return "\nat " + loc
	}
	return fmt.Sprintf("\nat %s, showing:\n%s", loc, body)
}

// screenshotDirs creates and returns the repository's git-ignored
// screenshots/ folder, and docs/img/, where the README takes its images,
// when UPDATE_SCREENSHOTS=1.
func screenshotDirs(t *testing.T) []string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root %s has no go.mod: %v", root, err)
	}
	dirs := []string{filepath.Join(root, "screenshots")}
	if os.Getenv("UPDATE_SCREENSHOTS") == "1" {
		dirs = append(dirs, filepath.Join(root, "docs", "img"))
	}
	for _, dir := range dirs {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dirs
}

// lockedBuffer is a bytes.Buffer that Chromium's output goroutine and the
// test can share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
