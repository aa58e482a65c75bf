package login

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"

	"github.com/gologin/gologin/sessionstore"
)

// refreshMargin is how long before expiry an access token is refreshed, so
// that it does not expire on its way to an API.
const refreshMargin = 30 * time.Second

// ErrNotSignedIn is returned by AccessToken for a request without a user.
var ErrNotSignedIn = errors.New("login: not signed in")

// The user's tokens live in a store record of their own, beside the
// session: scs writes a whole session back at the end of every request that
// changed it, so tokens kept in the session would be overwritten with stale
// ones by any request that overlapped a refresh, bringing back a spent
// refresh token. Only sign-in, refresh and logout write this record.
const tokensPrefix = sessionstore.AuxPrefix + "tokens:"

func tokensKeyOf(sessionToken string) string { return tokensPrefix + sessionToken }

// saveTokens writes the tokens record of a session; it carries the
// session's sid and sub, so deleting the sessions of a sid or sub deletes
// their tokens too. The tokens are sealed with a key derived from the
// session token, which the store never holds (it keeps its hash): whoever
// reads the store cannot use them.
func (a *Auth) saveTokens(ctx context.Context, sessionToken string, t tokens, sid, sub string, expiry time.Time) error {
	sealed, err := sealTokens(sessionToken, t)
	if err != nil {
		return err
	}
	b, err := sessionstore.Codec{}.Encode(expiry, map[string]any{
		sealedTokensKey: sealed, sessionstore.SIDKey: sid, sessionstore.SubjectKey: sub,
	})
	if err != nil {
		return err
	}
	return a.cfg.Store.CommitCtx(ctx, tokensKeyOf(sessionToken), b, expiry)
}

// sealedTokensKey holds a tokens record's sealed tokens; records from
// before hold them in the clear under tokensKey, and are still read.
const sealedTokensKey = "login.tokens.sealed"

// tokensInfo separates the tokens record's key from any other use of a
// session token.
const tokensInfo = "gologin tokens record v1"

// tokensCipher is the AEAD of a session's tokens record.
func tokensCipher(sessionToken string) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, []byte(sessionToken), nil, tokensInfo, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func sealTokens(sessionToken string, t tokens) ([]byte, error) {
	aead, err := tokensCipher(sessionToken)
	if err != nil {
		return nil, err
	}
	plain, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	rand.Read(nonce) // crypto/rand.Read never fails
	return aead.Seal(nonce, nonce, plain, nil), nil
}

func openTokens(sessionToken string, sealed []byte) (tokens, error) {
	aead, err := tokensCipher(sessionToken)
	if err != nil {
		return tokens{}, err
	}
	n := aead.NonceSize()
	if len(sealed) < n {
		return tokens{}, errors.New("login: tokens record too short")
	}
	plain, err := aead.Open(nil, sealed[:n], sealed[n:], nil)
	if err != nil {
		return tokens{}, fmt.Errorf("login: tokens record: %w", err)
	}
	var t tokens
	return t, json.Unmarshal(plain, &t)
}

// tokensRecord is a decoded tokens record.
type tokensRecord struct {
	tokens   tokens
	sid, sub string
	expiry   time.Time
}

func (a *Auth) loadTokens(ctx context.Context, sessionToken string) (tokensRecord, bool, error) {
	b, found, err := a.cfg.Store.FindCtx(ctx, tokensKeyOf(sessionToken))
	if err != nil || !found {
		return tokensRecord{}, false, err
	}
	expiry, values, err := sessionstore.Codec{}.Decode(b)
	if err != nil {
		return tokensRecord{}, false, err
	}
	t, ok := values[tokensKey].(tokens)
	if sealed, isSealed := values[sealedTokensKey].([]byte); isSealed {
		if t, err = openTokens(sessionToken, sealed); err != nil {
			return tokensRecord{}, false, err
		}
		ok = true
	}
	sid, _ := values[sessionstore.SIDKey].(string)
	sub, _ := values[sessionstore.SubjectKey].(string)
	return tokensRecord{tokens: t, sid: sid, sub: sub, expiry: expiry}, ok, nil
}

// AccessToken returns the signed-in user's current access token, for
// calling APIs. An access token about to expire is refreshed first, if the
// provider gave a refresh token: concurrent requests of one session refresh
// once within an instance (single-flight) and one after the other across
// instances (a lock in Config.Store), each starting from the stored tokens,
// and the rotated tokens are stored in one write. A refresh token the
// provider refuses ends the session: the error is then an *Error with
// status 401.
func (a *Auth) AccessToken(r *http.Request) (string, error) {
	t, err := a.currentTokens(r)
	return t.AccessToken, err
}

// currentTokens are the session's tokens, refreshed first when the access
// token is about to expire, as AccessToken describes.
func (a *Auth) currentTokens(r *http.Request) (tokens, error) {
	ctx := r.Context()
	if u, ok := a.User(r); !ok {
		return tokens{}, ErrNotSignedIn
	} else if u.Provider != a.cfg.Name {
		return tokens{}, NewError("other_provider", nil)
	}
	token := a.cfg.Sessions.Token(ctx)
	rec, found, err := a.loadTokens(ctx, token)
	switch {
	case err != nil:
		return tokens{}, storeError(err)
	case !found:
		return tokens{}, a.endSession(ctx, nil)
	case a.fresh(rec.tokens) || rec.tokens.RefreshToken == "":
		return rec.tokens, nil
	}
	// The refresh outlives this request if the client goes away: the
	// provider may already have rotated the refresh token, and the new one
	// must be stored.
	ch := a.refreshes.DoChan(token, func() (any, error) {
		return a.refresh(context.WithoutCancel(ctx), token)
	})
	var res singleflight.Result
	select {
	case <-ctx.Done():
		return tokens{}, ctx.Err()
	case res = <-ch:
	}
	if res.Err != nil {
		a.emit(ctx, Event{Kind: RefreshFailed})
		var e *Error
		if errors.As(res.Err, &e) && e.Status == http.StatusUnauthorized {
			return tokens{}, a.endSession(ctx, res.Err)
		}
		return tokens{}, res.Err
	}
	return res.Val.(tokens), nil
}

// endSession destroys the session whose tokens are gone or refused, and its
// tokens record, and returns the 401 error that says so.
func (a *Auth) endSession(ctx context.Context, cause error) error {
	err := sessionEnded(cause)
	derr := a.cfg.Store.DeleteCtx(ctx, tokensKeyOf(a.cfg.Sessions.Token(ctx)))
	return errors.Join(err, derr, a.cfg.Sessions.Destroy(ctx))
}

// sessionEnded is the 401 of a session whose tokens are gone or refused.
func sessionEnded(cause error) *Error {
	return NewError("session_ended", cause)
}

func storeError(err error) error {
	return NewError("session_unavailable", err)
}

func (a *Auth) fresh(t tokens) bool {
	return t.Expiry.IsZero() || a.cfg.Now().Add(refreshMargin).Before(t.Expiry)
}

// refresh redeems the session's stored refresh token under the session's
// lock and stores the result.
func (a *Auth) refresh(ctx context.Context, sessionToken string) (tokens, error) {
	hold := a.cfg.Timeout + 5*time.Second
	ctx, cancel := context.WithTimeout(ctx, hold)
	defer cancel()
	unlock, err := a.cfg.Store.Lock(ctx, "refresh:"+sessionToken, hold)
	if err != nil {
		return tokens{}, storeError(err)
	}
	defer unlock()
	// Read under the lock: another request may have refreshed meanwhile,
	// and then only the stored refresh token is still valid.
	rec, found, err := a.loadTokens(ctx, sessionToken)
	if err != nil {
		return tokens{}, storeError(err)
	}
	if !found {
		return tokens{}, sessionEnded(nil)
	}
	if a.fresh(rec.tokens) {
		return rec.tokens, nil
	}
	d, err := a.provider.get(ctx)
	if err != nil {
		return tokens{}, NewError("provider_unavailable", err)
	}
	tctx, cancelCall := context.WithTimeout(a.tokenContext(ctx, d), a.cfg.Timeout)
	defer cancelCall()
	if rec.tokens.DPoPKey != nil {
		// A bound refresh token works only with the session's key.
		key, err := parseDPoPKey(rec.tokens.DPoPKey)
		if err != nil {
			return tokens{}, sessionEnded(err)
		}
		tctx = withDPoPKey(tctx, key)
	}
	nt, err := d.oauth.TokenSource(tctx, &oauth2.Token{RefreshToken: rec.tokens.RefreshToken}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		// Only invalid_grant means the refresh token is dead (RFC 6749 5.2);
		// a rate limit or a misconfigured client must not sign users out.
		if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
			return tokens{}, sessionEnded(err)
		}
		return tokens{}, NewError("refresh_failed", err)
	}
	t := tokens{IDToken: rec.tokens.IDToken, AccessToken: nt.AccessToken, RefreshToken: nt.RefreshToken, Expiry: nt.Expiry,
		TokenType: nt.TokenType}
	if isDPoP(nt.TokenType) {
		t.DPoPKey = rec.tokens.DPoPKey
	}
	if t.RefreshToken == "" {
		t.RefreshToken = rec.tokens.RefreshToken // the provider does not rotate them
	}
	if raw, _ := nt.Extra("id_token").(string); raw != "" {
		// A refreshed ID token must be valid, of the same issuer (which the
		// verifier checks) and of the same user (Core 12.2); it serves as
		// the logout hint. One that is not is refused with its tokens.
		idt, err := d.verifier.Verify(ctx, raw)
		if err == nil && idt.Subject != rec.sub {
			err = errors.New("the refreshed ID token is of another subject")
		}
		if err != nil {
			return tokens{}, NewError("refresh_failed", err)
		}
		t.IDToken = raw
	}
	if err := a.saveTokens(ctx, sessionToken, t, rec.sid, rec.sub, rec.expiry); err != nil {
		return tokens{}, storeError(err)
	}
	a.emit(ctx, Event{Kind: TokenRefreshed})
	return t, nil
}

// Client returns an HTTP client that calls APIs with the signed-in user's
// access token, refreshed as AccessToken does. Each of its calls is bounded
// by Config.Timeout unless Config.HTTPClient sets a Timeout of its own.
func (a *Auth) Client(r *http.Request) (*http.Client, error) {
	t, err := a.currentTokens(r)
	if err != nil {
		return nil, err
	}
	return a.apiClient(r.Context(), t)
}

// apiClient is a client that calls APIs with the access token of t: with
// Authorization: Bearer, or DPoP and a proof for tokens bound to the
// session's key.
func (a *Auth) apiClient(ctx context.Context, t tokens) (*http.Client, error) {
	var c *http.Client
	if t.DPoPKey != nil {
		key, err := parseDPoPKey(t.DPoPKey)
		if err != nil {
			return nil, err
		}
		base := a.cfg.HTTPClient.Transport
		if base == nil {
			base = http.DefaultTransport
		}
		c = &http.Client{Transport: &dpopAPITransport{base: base, key: key, accessToken: t.AccessToken,
			nonces: &a.dpopNonces, now: a.cfg.Now}, Timeout: a.cfg.HTTPClient.Timeout}
	} else {
		c = oauth2.NewClient(a.clientContext(ctx), staticToken(t.AccessToken))
	}
	if c.Timeout == 0 {
		c.Timeout = a.cfg.Timeout
	}
	return c, nil
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
