package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The baseline page has what loadtest's page phase looks for in the app's
// signed-in page: a logout form with a CSRF token.
const (
	baselineHead = "<!doctype html>\n<html><head><title>Baseline</title></head><body>\n" +
		`<form method="post" action="/logout"><input type="hidden" name="` + csrfField + `" value="baseline"></form>` + "\n<p>"
	baselineTail = "</p></body></html>\n"
)

// baselineSession is the login baseline's session cookie.
const baselineSession = "baseline_session"

// baselineHandler writes the same page of size bytes for every request: the
// least a Go server can do to answer, to compare the app with.
func baselineHandler(size int) http.Handler {
	page := []byte(baselineHead + strings.Repeat("x", size-len(baselineHead)-len(baselineTail)) + baselineTail)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	})
}

// loginBaseline is the least a Go web app can do to sign users in with an
// OpenID provider, to compare the app's logins with: the same HTTP
// exchanges as the app's (GET /login redirects to the authorization
// endpoint with state, nonce and a PKCE challenge; GET /callback redeems
// the code at the token endpoint over a kept-alive connection, then
// redirects), with net/http and encoding/json alone, and nothing more: it
// does not check the ID token, keeps no session, writes no log and counts
// no metric. It keeps a login's state and verifier in a cookie. GET
// /profile gets the baseline page with the cookie its callback sets, and a
// redirect to /login without, so that loadtest's check of each sign-in
// means something here too; other paths get the baseline page.
type loginBaseline struct {
	page              http.Handler
	authURL, tokenURL string
	clientID, secret  string
	redirectURI       string
	client            *http.Client
}

// newLoginBaseline discovers the provider at issuer. The baseline's
// callback, base/callback, must be a redirect URI of the client.
func newLoginBaseline(ctx context.Context, issuer, client, base string, size int) (*loginBaseline, error) {
	id, secret, ok := strings.Cut(client, ":")
	if !ok || id == "" {
		return nil, fmt.Errorf("-client %q: want ID:SECRET", client)
	}
	hc := &http.Client{Transport: newTransport(32)}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(issuer, "/")+"/.well-known/openid-configuration", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("provider discovery: %w", cleanErr(err))
	}
	defer resp.Body.Close()
	var d struct {
		Auth  string `json:"authorization_endpoint"`
		Token string `json:"token_endpoint"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil || resp.StatusCode != http.StatusOK || d.Auth == "" || d.Token == "" {
		return nil, fmt.Errorf("provider discovery at %s: status %d, no endpoints", issuer, resp.StatusCode)
	}
	return &loginBaseline{page: baselineHandler(size), authURL: d.Auth, tokenURL: d.Token,
		clientID: id, secret: secret, redirectURI: base + "/callback", client: hc}, nil
}

func (b *loginBaseline) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/login":
		b.login(w, r)
	case "/callback":
		b.callback(w, r)
	case "/profile":
		if _, err := r.Cookie(baselineSession); err != nil {
			http.Redirect(w, r, "/login?returnTo=%2Fprofile", http.StatusFound)
			return
		}
		b.page.ServeHTTP(w, r)
	default:
		b.page.ServeHTTP(w, r)
	}
}

func (b *loginBaseline) login(w http.ResponseWriter, r *http.Request) {
	state, verifier := rand.Text(), rand.Text()+rand.Text() // a verifier needs 43 characters or more
	challenge := sha256.Sum256([]byte(verifier))
	http.SetCookie(w, &http.Cookie{Name: "baseline_login", Value: state + "." + verifier, Path: "/", HttpOnly: true})
	q := url.Values{"response_type": {"code"}, "client_id": {b.clientID}, "redirect_uri": {b.redirectURI},
		"scope": {"openid profile email"}, "state": {state}, "nonce": {rand.Text()},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(challenge[:])}, "code_challenge_method": {"S256"}}
	http.Redirect(w, r, b.authURL+"?"+q.Encode(), http.StatusFound)
}

func (b *loginBaseline) callback(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie("baseline_login")
	if err != nil {
		http.Error(w, "no login under way", http.StatusBadRequest)
		return
	}
	state, verifier, _ := strings.Cut(c.Value, ".")
	if state != r.URL.Query().Get("state") {
		http.Error(w, "unknown login", http.StatusBadRequest)
		return
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {r.URL.Query().Get("code")},
		"redirect_uri": {b.redirectURI}, "code_verifier": {verifier}}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(b.clientID), url.QueryEscape(b.secret))
	if err := b.redeem(req); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: baselineSession, Value: rand.Text(), Path: "/", HttpOnly: true})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// redeem sends the token request and checks that an ID token came back.
func (b *loginBaseline) redeem(req *http.Request) error {
	resp, err := b.client.Do(req)
	if err != nil {
		return cleanErr(err)
	}
	defer resp.Body.Close()
	var t struct {
		IDToken string `json:"id_token"`
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("token endpoint: status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&t); err != nil {
		return fmt.Errorf("token endpoint: %w", err)
	}
	if t.IDToken == "" {
		return errors.New("token endpoint: no ID token")
	}
	return nil
}
