package login

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gologin/gologin/sessionstore"
)

// maxLogoutTokenAge bounds how old a logout token's iat may be; with the
// jti mark below it makes replays fail.
const maxLogoutTokenAge = 5 * time.Minute

// BackchannelLogout implements OpenID Connect Back-Channel Logout 1.0: the
// provider posts a signed logout token, and every session of its sid (or,
// without sid, of its sub) is deleted from Config.Store, in every instance
// sharing it. It answers 200, or 400 for an invalid or replayed token
// without touching any session. It needs no cookie and no CSRF token: the
// signed token is the proof, so exempt its route from cross-origin
// protection.
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
	sid, sub, jti, err := a.verifyLogoutToken(ctx, d, raw)
	if err != nil {
		a.cfg.Logger.InfoContext(ctx, "back-channel logout refused", "error", err)
		reply(http.StatusBadRequest, "invalid_request", "the logout token is not valid")
		return
	}
	// The jti is marked used in the store, in one step with the check, so
	// of parallel copies of a token, on any instances, exactly one gets
	// through. The mark outlasts the token's acceptance window.
	release, err := a.cfg.Store.TryLock(ctx, "logout-jti:"+a.cfg.Issuer+"\x00"+jti, 2*maxLogoutTokenAge+2*a.cfg.ClockSkew)
	switch {
	case errors.Is(err, sessionstore.ErrLocked):
		a.cfg.Logger.InfoContext(ctx, "back-channel logout refused", "error", "logout token jti already used")
		reply(http.StatusBadRequest, "invalid_request", "the logout token is not valid")
		return
	case err != nil:
		a.cfg.Logger.ErrorContext(ctx, "back-channel logout: store failed", "error", err)
		reply(http.StatusServiceUnavailable, "temporarily_unavailable", "sessions could not be deleted")
		return
	}
	var n int
	if sid != "" {
		n, err = a.cfg.Store.DeleteBySID(ctx, a.indexKey(sid))
	} else {
		n, err = a.cfg.Store.DeleteBySubject(ctx, a.indexKey(sub))
	}
	if err != nil {
		// Only a logout that took effect uses up its jti: a provider
		// retrying after our 503 must get through.
		release()
		a.cfg.Logger.ErrorContext(ctx, "back-channel logout: store failed", "error", err)
		reply(http.StatusServiceUnavailable, "temporarily_unavailable", "sessions could not be deleted")
		return
	}
	a.cfg.Logger.InfoContext(ctx, "back-channel logout", "sessions_deleted", n, "by_sid", sid != "")
	a.emit(ctx, Event{Kind: BackchannelLogout})
	reply(http.StatusOK, "", "")
}

// verifyLogoutToken checks a logout token (Back-Channel Logout 1.0, 2.6):
// go-oidc checks the signature, iss, aud, the presence of the logout event,
// jti, sid or sub and the absence of nonce; we add the header's typ, the
// event's form, azp with several audiences, and exp and iat with clock
// skew. The caller checks jti replay.
func (a *Auth) verifyLogoutToken(ctx context.Context, d *discovered, raw string) (sid, sub, jti string, err error) {
	// Section 2.4 recommends explicit typing; a token typed as anything
	// else (an access token, say) is not a logout token. "JWT" counts as
	// untyped: some providers (Keycloak) send it on logout tokens.
	if typ, ok := jwtType(raw); ok && !slices.ContainsFunc([]string{"logout+jwt", "application/logout+jwt", "JWT"},
		func(want string) bool { return strings.EqualFold(typ, want) }) {
		return "", "", "", fmt.Errorf("logout token typ %q, want logout+jwt", typ)
	}
	var fetchErr error
	lt, err := d.verifier.VerifyLogout(context.WithValue(ctx, fetchErrKey{}, &fetchErr), raw)
	if err != nil {
		return "", "", "", errors.Join(err, fetchErr)
	}
	var claims struct {
		Events map[string]json.RawMessage `json:"events"`
		AZP    string                     `json:"azp"`
	}
	if err := lt.Claims(&claims); err != nil {
		return "", "", "", fmt.Errorf("logout token events is not an object: %w", err)
	}
	if ev := bytes.TrimSpace(claims.Events[backchannelLogoutEvent]); len(ev) == 0 || ev[0] != '{' {
		return "", "", "", errors.New("logout token's back-channel logout event is not a JSON object")
	}
	if (len(lt.Audience) > 1 || claims.AZP != "") && claims.AZP != a.cfg.ClientID {
		return "", "", "", errors.New("logout token for several audiences, or with an azp, whose azp is not our client ID")
	}
	now, skew := a.cfg.Now(), a.cfg.ClockSkew
	switch {
	case !now.Before(lt.Expiry.Add(skew)):
		return "", "", "", errors.New("logout token expired")
	case lt.IssuedAt.IsZero() || lt.IssuedAt.After(now.Add(skew)) || now.Sub(lt.IssuedAt) > maxLogoutTokenAge+skew:
		return "", "", "", errors.New("logout token iat missing or outside the accepted window")
	}
	if strings.ContainsRune(lt.SessionID+lt.Subject, 0) {
		// See indexKey: it could name another provider's sessions.
		return "", "", "", errors.New("logout token sid or sub holds a NUL")
	}
	return lt.SessionID, lt.Subject, lt.TokenID, nil
}

// backchannelLogoutEvent is the member of a logout token's events claim.
const backchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// jwtType returns the typ of a compact JWS's protected header, if it has
// one. A malformed header reports none: the signature check refuses it.
func jwtType(raw string) (string, bool) {
	head, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return "", false
	}
	var h struct {
		Typ *string `json:"typ"`
	}
	if json.Unmarshal(b, &h) != nil || h.Typ == nil {
		return "", false
	}
	return *h.Typ, true
}
