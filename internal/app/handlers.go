package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gologin/gologin/internal/config"
	"github.com/gologin/gologin/login"
)

func (a *App) handleIndex(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusOK, "index", nil)
}

// choice is a provider on the sign-in page.
type choice struct{ Label, URL string }

// handleSignIn lists the providers to sign in with, each returning to the
// same returnTo.
func (a *App) handleSignIn(w http.ResponseWriter, r *http.Request) {
	returnTo := r.URL.Query().Get("returnTo")
	var choices []choice
	for i, p := range a.providers {
		label, path := p.Name(), a.cfg.Prefix()+"/login/"+p.Name()
		if i == 0 {
			label, path = a.mainProviderLabel(), a.cfg.Prefix()+"/login"
		}
		if back, ok := login.SafeReturnTo(returnTo); ok && back != "/" {
			path += "?" + url.Values{"returnTo": {back}}.Encode()
		}
		choices = append(choices, choice{label, path})
	}
	a.render(w, r, http.StatusOK, "signin", choices)
}

// mainProviderLabel names the main provider on the sign-in page.
func (a *App) mainProviderLabel() string {
	if a.cfg.Provider == config.Auth0 {
		return "Auth0"
	}
	if u, err := url.Parse(a.auth.Issuer()); err == nil && u.Host != "" {
		return u.Host
	}
	return a.auth.Issuer()
}

func (a *App) handleLogoutPage(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusOK, "logout", nil)
}

// claim is one row of the profile page.
type claim struct{ Name, Value string }

// hiddenClaims are protocol details, not facts about the user.
var hiddenClaims = []string{"nonce", "at_hash", "c_hash"}

func (a *App) handleProfile(w http.ResponseWriter, r *http.Request) {
	u, _ := a.auth.User(r)
	var rows []claim
	for k, v := range u.Claims() {
		if slices.Contains(hiddenClaims, k) {
			continue
		}
		rows = append(rows, claim{k, claimText(k, v)})
	}
	slices.SortFunc(rows, func(x, y claim) int { return strings.Compare(x.Name, y.Name) })
	a.render(w, r, http.StatusOK, "profile", rows)
}

// timeClaims hold seconds since the epoch (OpenID Connect Core 2 and 5.1).
var timeClaims = []string{"exp", "iat", "auth_time", "updated_at"}

// claimText shows a claim's value as text; times are shown as times.
func claimText(name string, v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	if n, ok := v.(float64); ok && slices.Contains(timeClaims, name) {
		return time.Unix(int64(n), 0).UTC().Format("2006-01-02 15:04:05 UTC")
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func (a *App) handleNotFound(w http.ResponseWriter, r *http.Request) {
	a.renderError(w, r, &pageError{Status: http.StatusNotFound, Title: "Page not found", Message: "There is no page at this address."})
}

func (a *App) handleHealthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok")
}

// readiness is the /readyz body.
type readiness struct {
	Ready    bool           `json:"ready"`
	Store    componentState `json:"store"`
	Provider componentState `json:"provider"`
}

type componentState struct {
	Kind   string `json:"kind,omitempty"`
	Issuer string `json:"issuer,omitempty"`
	State  string `json:"state"`
	Error  string `json:"error,omitempty"`
}

// handleReadyz is ready when the session store answers. A provider outage
// alone does not fail readiness: signed-in pages still work without it.
func (a *App) handleReadyz(w http.ResponseWriter, r *http.Request) {
	res := readiness{
		Store:    componentState{Kind: a.storeKind(), State: "ok"},
		Provider: componentState{Kind: string(a.cfg.Provider), Issuer: a.auth.Issuer(), State: "ok"},
	}
	if err := a.store.Ping(r.Context()); err != nil {
		a.log.ErrorContext(r.Context(), "session store not answering", "error", err)
		res.Store.State, res.Store.Error = "unavailable", "the session store does not answer"
	}
	switch ok, err := a.auth.ProviderStatus(); {
	case ok:
	case err != nil:
		// The detail may hold the provider's response or internal
		// addresses: discoverUntilReady logs it, with backoff, rather than
		// every probe, and whoever asks does not see it.
		res.Provider.State, res.Provider.Error = "unavailable", "discovery has not succeeded; see the log"
	default:
		res.Provider.State = "pending"
	}
	res.Ready = res.Store.State == "ok"
	status := http.StatusOK
	if !res.Ready {
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(res)
}

// apiCall is the userinfo page's data.
type apiCall struct {
	URL    string
	Status string
	Body   string
}

// handleUserinfo calls an API with the user's access token, refreshed when
// needed: the provider's userinfo endpoint, which every provider has.
func (a *App) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	client, err := a.providers.For(r).Client(r)
	var e *login.Error
	if errors.As(err, &e) && e.Status == http.StatusUnauthorized {
		http.Redirect(w, r, a.auth.LoginURL(a.cfg.Prefix()+"/userinfo"), http.StatusFound)
		return
	}
	if err != nil {
		a.renderError(w, r, err)
		return
	}
	endpoint, err := a.providers.For(r).UserInfoURL(r.Context())
	if err != nil || endpoint == "" {
		a.renderError(w, r, &pageError{Status: http.StatusServiceUnavailable, Title: "API unavailable",
			Message: "The provider has no userinfo endpoint, or cannot be reached.", Err: err})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.ProviderTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	resp, err := client.Do(req)
	if err != nil {
		a.renderError(w, r, &pageError{Status: http.StatusBadGateway, Title: "API call failed",
			Message: "The API did not answer. Please try again.", Err: err})
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var pretty bytes.Buffer
	if json.Indent(&pretty, body, "", "  ") != nil {
		pretty.Reset()
		pretty.Write(body)
	}
	a.render(w, r, http.StatusOK, "userinfo", apiCall{URL: endpoint, Status: resp.Status, Body: pretty.String()})
}
