package login

import (
	"context"
	"errors"
	"net/http"
	"time"

	"golang.org/x/oauth2"
)

// refreshMargin is how long before expiry an access token is refreshed, so
// that it does not expire on its way to an API.
const refreshMargin = 30 * time.Second

// ErrNotSignedIn is returned by AccessToken for a request without a user.
var ErrNotSignedIn = errors.New("login: not signed in")

// AccessToken returns the signed-in user's current access token, for
// calling APIs. An access token about to expire is refreshed first, if the
// provider gave a refresh token: concurrent requests of one session refresh
// once within an instance (single-flight) and across instances (a lock in
// Config.Store), and the rotated tokens are written to the store at once. A
// refresh the provider refuses ends the session: the error is an *Error
// with status 401.
func (a *Auth) AccessToken(r *http.Request) (string, error) {
	ctx := r.Context()
	sm := a.cfg.Sessions
	toks, ok := sm.Get(ctx, tokensKey).(tokens)
	if !ok {
		return "", ErrNotSignedIn
	}
	if a.fresh(toks) || toks.RefreshToken == "" {
		return toks.AccessToken, nil
	}
	v, err, _ := a.refreshes.Do(sm.Token(ctx), func() (any, error) {
		return a.refresh(ctx, toks)
	})
	if err != nil {
		a.emit(ctx, Event{Kind: RefreshFailed})
		var e *Error
		if errors.As(err, &e) && e.Status == http.StatusUnauthorized {
			if derr := sm.Destroy(ctx); derr != nil {
				return "", errors.Join(err, derr)
			}
		}
		return "", err
	}
	toks = v.(tokens)
	sm.Put(ctx, tokensKey, toks)
	return toks.AccessToken, nil
}

func (a *Auth) fresh(t tokens) bool {
	return t.Expiry.IsZero() || a.cfg.Now().Add(refreshMargin).Before(t.Expiry)
}

// refresh redeems old's refresh token and saves the result in the session
// and the store, under the session's lock when the store is shared.
func (a *Auth) refresh(ctx context.Context, old tokens) (tokens, error) {
	sm := a.cfg.Sessions
	token := sm.Token(ctx)
	if a.cfg.Store != nil {
		unlock, err := a.cfg.Store.Lock(ctx, "refresh:"+token, a.cfg.Timeout+5*time.Second)
		if err != nil {
			return tokens{}, &Error{Status: http.StatusServiceUnavailable, Title: "Session unavailable",
				Message: "We could not reach our session storage. Please try again.", Err: err}
		}
		defer unlock()
		// Another request may have refreshed while this one waited: then
		// its tokens are the current ones, and ours hold a spent refresh
		// token.
		if b, found, err := a.cfg.Store.FindCtx(ctx, token); err == nil && found {
			if _, values, err := sm.Codec.Decode(b); err == nil {
				if t, ok := values[tokensKey].(tokens); ok && t.RefreshToken != "" {
					if a.fresh(t) {
						return t, nil
					}
					old = t
				}
			}
		}
	}
	d, err := a.provider.get(ctx)
	if err != nil {
		return tokens{}, &Error{Status: http.StatusServiceUnavailable, Title: "Provider unavailable",
			Message: "We cannot reach the sign-in provider right now. Please try again in a moment.", Err: err}
	}
	cctx, cancel := context.WithTimeout(a.clientContext(ctx), a.cfg.Timeout)
	defer cancel()
	nt, err := d.oauth.TokenSource(cctx, &oauth2.Token{RefreshToken: old.RefreshToken}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
			return tokens{}, &Error{Status: http.StatusUnauthorized, Title: "Session ended",
				Message: "Your sign-in has ended. Please sign in again.", Err: err}
		}
		return tokens{}, &Error{Status: http.StatusBadGateway, Title: "Provider failed",
			Message: "The sign-in provider failed to renew your access. Please try again.", Err: err}
	}
	t := tokens{IDToken: old.IDToken, AccessToken: nt.AccessToken, RefreshToken: nt.RefreshToken, Expiry: nt.Expiry}
	if t.RefreshToken == "" {
		t.RefreshToken = old.RefreshToken // the provider does not rotate them
	}
	if raw, _ := nt.Extra("id_token").(string); raw != "" {
		// A refreshed ID token must be valid and of the same user (Core 12.2);
		// it serves as the logout hint.
		if idt, err := d.verifier.Verify(cctx, raw); err == nil && a.sameSubject(ctx, idt.Subject) {
			t.IDToken = raw
		}
	}
	a.emit(ctx, Event{Kind: TokenRefreshed})
	// Write the rotated tokens now, so other instances waiting on the lock
	// read them instead of redeeming the spent refresh token.
	sm.Put(ctx, tokensKey, t)
	if _, _, err := sm.Commit(ctx); err != nil {
		return tokens{}, &Error{Status: http.StatusServiceUnavailable, Title: "Session unavailable",
			Message: "We could not save your session. Please try again.", Err: err}
	}
	return t, nil
}

func (a *Auth) sameSubject(ctx context.Context, sub string) bool {
	u, ok := a.cfg.Sessions.Get(ctx, userKey).(User)
	return ok && u.Subject == sub
}

// Client returns an HTTP client that calls APIs with the signed-in user's
// access token, refreshed as AccessToken does.
func (a *Auth) Client(r *http.Request) (*http.Client, error) {
	at, err := a.AccessToken(r)
	if err != nil {
		return nil, err
	}
	return oauth2.NewClient(a.clientContext(r.Context()), staticToken(at)), nil
}

// UserInfoURL returns the provider's userinfo endpoint, an API every
// OpenID provider protects with the access token.
func (a *Auth) UserInfoURL(ctx context.Context) (string, error) {
	d, err := a.provider.get(ctx)
	if err != nil {
		return "", err
	}
	return d.provider.UserInfoEndpoint(), nil
}
