package login

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// verifyIDToken validates an ID token as OpenID Connect Core 3.1.3.7 asks,
// and returns it with its claims. go-oidc checks the signature against the
// provider's JWKS with the algorithms discovery advertises, iss and aud; the
// checks it leaves to its callers are here: exp and iat with clock skew
// (iat no earlier than the login's start), nonce, azp, auth_time and sub.
func (a *Auth) verifyIDToken(ctx context.Context, d *discovered, raw string, tx transaction) (*oidc.IDToken, map[string]any, error) {
	var fetchErr error
	tok, err := d.verifier.Verify(context.WithValue(ctx, fetchErrKey{}, &fetchErr), raw)
	if fetchErr != nil {
		return nil, nil, fetchErr
	}
	if err != nil {
		return nil, nil, err
	}
	now := a.cfg.Now()
	skew := a.cfg.ClockSkew
	switch {
	case tok.Expiry.IsZero():
		return nil, nil, errors.New("ID token has no exp")
	case !now.Before(tok.Expiry.Add(skew)):
		return nil, nil, fmt.Errorf("ID token expired at %s", tok.Expiry.UTC().Format(time.RFC3339))
	case tok.IssuedAt.IsZero():
		return nil, nil, errors.New("ID token has no iat")
	case tok.IssuedAt.After(now.Add(skew)):
		return nil, nil, errors.New("ID token issued in the future")
	case !tx.Started.IsZero() && tok.IssuedAt.Before(tx.Started.Add(-skew)):
		// Issued before this login started: a token from another time,
		// replayed (the FAPI suites send one a week old).
		return nil, nil, errors.New("ID token issued before this login started")
	case tok.Subject == "":
		return nil, nil, errors.New("ID token has no sub")
	case strings.ContainsRune(tok.Subject, 0):
		// Sessions are indexed by provider name, NUL, sub: a sub with a
		// NUL could name another provider's user.
		return nil, nil, errors.New("ID token sub holds a NUL")
	case subtle.ConstantTimeCompare([]byte(tok.Nonce), []byte(tx.Nonce)) != 1:
		return nil, nil, errors.New("ID token nonce does not match this login")
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return nil, nil, err
	}
	azp, azpOK := claims["azp"].(string)
	hasAuthTime := claims["auth_time"] != nil
	authTime, authTimeOK := claims["auth_time"].(float64) // a JSON number: seconds since the epoch
	switch {
	case claims["azp"] != nil && !azpOK:
		return nil, nil, errors.New("ID token azp is not a string")
	case strings.ContainsRune(fmt.Sprint(claims["sid"]), 0):
		return nil, nil, errors.New("ID token sid holds a NUL")
	case hasAuthTime && (!authTimeOK || authTime <= 0 || authTime > float64(now.Add(skew).Unix())):
		return nil, nil, errors.New("ID token auth_time is not a time in the past")
	// Core 3.1.3.7 (11): with max_age, auth_time must show a recent sign-in.
	case tx.CheckMaxAge && (!hasAuthTime || float64(now.Unix())-authTime > float64(tx.MaxAge)+skew.Seconds()):
		return nil, nil, errors.New("ID token auth_time missing or older than max_age")
	case (len(tok.Audience) > 1 || azp != "") && azp != a.cfg.ClientID:
		return nil, nil, errors.New("ID token azp is not this client")
	}
	return tok, claims, nil
}

// needsUserinfo reports whether the ID token lacks the profile claims the
// user would expect, as with providers that release them only from userinfo.
func needsUserinfo(claims map[string]any) bool {
	for _, k := range []string{"name", "email"} {
		if _, ok := claims[k]; !ok {
			return true
		}
	}
	return false
}

// mergeUserinfo adds to claims what userinfo has and the ID token has not.
// A userinfo response of another subject is an error (Core 5.3.2: its
// values must not be used): the provider's answers disagree, so the
// sign-in fails. A userinfo endpoint that fails leaves the ID token's
// claims alone.
func (a *Auth) mergeUserinfo(ctx context.Context, d *discovered, claims map[string]any, t tokens) error {
	if d.provider.UserInfoEndpoint() == "" || t.AccessToken == "" {
		return nil
	}
	client, err := a.apiClient(ctx, t)
	if err != nil {
		a.cfg.Logger.WarnContext(ctx, "userinfo request failed; using ID token claims only", "error", err)
		return nil
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, client), a.cfg.Timeout)
	defer cancel()
	info, err := d.provider.UserInfo(ctx, staticToken(t.AccessToken))
	if err != nil {
		a.cfg.Logger.WarnContext(ctx, "userinfo request failed; using ID token claims only", "error", err)
		return nil
	}
	if info.Subject != claims["sub"] {
		return errors.New("the userinfo response's sub differs from the ID token's")
	}
	var extra map[string]any
	if err := info.Claims(&extra); err != nil {
		return nil
	}
	for k, v := range extra {
		if _, ok := claims[k]; !ok && !slices.Contains([]string{"iss", "aud", "exp", "iat", "nonce"}, k) {
			claims[k] = v
		}
	}
	return nil
}

func marshalClaims(m map[string]any) []byte {
	b, _ := json.Marshal(m)
	return b
}
