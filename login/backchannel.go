package login

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"
)

// maxLogoutTokenAge bounds how old a logout token's iat may be; with the
// jti cache below it makes replays fail.
const maxLogoutTokenAge = 5 * time.Minute

// BackchannelLogout implements OpenID Connect Back-Channel Logout 1.0: the
// provider posts a signed logout token, and every session of its sid (or,
// without sid, of its sub) is deleted from Config.Store, in every instance
// sharing it. It answers 200, or 400 for an invalid token without touching
// any session. It needs no cookie and no CSRF token: the signed token is
// the proof, so exempt its route from cross-origin protection.
func (a *Auth) BackchannelLogout(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	reply := func(status int, code, desc string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if code != "" {
			json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
		}
	}
	ctx := r.Context()
	raw := r.PostFormValue("logout_token")
	if raw == "" {
		reply(http.StatusBadRequest, "invalid_request", "logout_token is missing")
		return
	}
	d, err := a.provider.get(ctx)
	if err != nil {
		a.cfg.Logger.WarnContext(ctx, "back-channel logout: provider unavailable", "error", err)
		reply(http.StatusServiceUnavailable, "temporarily_unavailable", "the provider's keys are unavailable")
		return
	}
	sid, sub, id, err := a.verifyLogoutToken(ctx, d, raw)
	if err != nil {
		a.cfg.Logger.InfoContext(ctx, "back-channel logout refused", "error", err)
		reply(http.StatusBadRequest, "invalid_request", "the logout token is not valid")
		return
	}
	var n int
	if sid != "" {
		n, err = a.cfg.Store.DeleteBySID(ctx, sid)
	} else {
		n, err = a.cfg.Store.DeleteBySubject(ctx, sub)
	}
	if err != nil {
		a.cfg.Logger.ErrorContext(ctx, "back-channel logout: store failed", "error", err)
		reply(http.StatusServiceUnavailable, "temporarily_unavailable", "sessions could not be deleted")
		return
	}
	// Only a logout that took effect uses up its jti: a provider retrying
	// after our 503 must get through.
	a.jtis.record(string(id), a.cfg.Now())
	a.cfg.Logger.InfoContext(ctx, "back-channel logout", "sessions_deleted", n, "by_sid", sid != "")
	a.emit(ctx, Event{Kind: BackchannelLogout})
	reply(http.StatusOK, "", "")
}

// verifyLogoutToken checks a logout token (Back-Channel Logout 1.0, 2.6):
// go-oidc checks the signature, iss, aud, events, jti, sid or sub and the
// absence of nonce; we add exp and iat with clock skew, and jti replay.
func (a *Auth) verifyLogoutToken(ctx context.Context, d *discovered, raw string) (sid, sub string, id jti, err error) {
	var fetchErr error
	lt, err := d.verifier.VerifyLogout(context.WithValue(ctx, fetchErrKey{}, &fetchErr), raw)
	if err != nil {
		return "", "", "", errors.Join(err, fetchErr)
	}
	now, skew := a.cfg.Now(), a.cfg.ClockSkew
	switch {
	case !now.Before(lt.Expiry.Add(skew)):
		return "", "", "", errors.New("logout token expired")
	case lt.IssuedAt.IsZero() || lt.IssuedAt.After(now.Add(skew)) || now.Sub(lt.IssuedAt) > maxLogoutTokenAge+skew:
		return "", "", "", errors.New("logout token iat missing or outside the accepted window")
	case a.jtis.seen(lt.TokenID, now):
		return "", "", "", errors.New("logout token jti already used")
	}
	return lt.SessionID, lt.Subject, jti(lt.TokenID), nil
}

// jtiCache remembers the jti of recent logout tokens. It is per instance:
// a replay to another instance could only repeat a deletion that already
// happened, since the token's sessions are gone from the shared store.
type jtiCache struct {
	mu   sync.Mutex
	used map[string]time.Time
}

// jti is a logout token's ID.
type jti string

// seen reports whether jti was recorded within the accepted token age.
func (c *jtiCache) seen(jti string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.used[jti]
	return ok && now.Sub(t) <= 2*maxLogoutTokenAge
}

// record remembers jti, dropping entries older than the accepted token age,
// which bounds the cache.
func (c *jtiCache) record(jti string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.used == nil {
		c.used = make(map[string]time.Time)
	}
	for k, t := range c.used {
		if now.Sub(t) > 2*maxLogoutTokenAge {
			delete(c.used, k)
		}
	}
	c.used[jti] = now
}
