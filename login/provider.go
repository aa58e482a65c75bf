package login

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// discovered is what discovery told us about the provider.
type discovered struct {
	provider   *oidc.Provider
	verifier   *oidc.IDTokenVerifier
	oauth      oauth2.Config
	endSession string
}

// lazyProvider discovers the provider on first use rather than at startup,
// so the app serves while the provider is unreachable and recovers by itself
// when it comes back. Failed attempts are retried at most every retryAfter.
type lazyProvider struct {
	a *Auth

	mu      sync.Mutex
	d       *discovered
	lastErr error
	lastTry time.Time
}

const retryAfter = 2 * time.Second

// ErrProviderUnavailable means discovery has not succeeded yet.
var ErrProviderUnavailable = errors.New("login: OpenID provider unavailable")

func (lp *lazyProvider) get(ctx context.Context) (*discovered, error) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	if lp.d != nil {
		return lp.d, nil
	}
	if lp.lastErr != nil && time.Since(lp.lastTry) < retryAfter {
		return nil, lp.lastErr
	}
	lp.lastTry = time.Now()
	d, err := lp.a.discover(ctx)
	if err != nil {
		lp.lastErr = errors.Join(ErrProviderUnavailable, err)
		return nil, lp.lastErr
	}
	lp.d, lp.lastErr = d, nil
	return d, nil
}

// status reports discovery's state without starting it.
func (lp *lazyProvider) status() (ok bool, err error) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	return lp.d != nil, lp.lastErr
}

func (a *Auth) discover(ctx context.Context) (*discovered, error) {
	ctx, cancel := context.WithTimeout(a.clientContext(ctx), a.cfg.Timeout)
	defer cancel()
	// go-oidc checks that the document's issuer is exactly ours.
	p, err := oidc.NewProvider(ctx, a.cfg.Issuer)
	if err != nil {
		return nil, err
	}
	var meta struct {
		EndSession  string   `json:"end_session_endpoint"`
		AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
		JWKS        string   `json:"jwks_uri"`
		Algs        []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := p.Claims(&meta); err != nil {
		return nil, err
	}
	ep := p.Endpoint()
	ep.AuthStyle = authStyle(a.cfg.TokenAuthMethod, meta.AuthMethods)
	algs := signingAlgs(meta.Algs)
	if meta.JWKS == "" || len(algs) == 0 {
		return nil, errors.New("discovery document lacks jwks_uri or a supported ID token signing algorithm")
	}
	keys := newKeySet(meta.JWKS, a.cfg.HTTPClient, algs)
	return &discovered{
		provider: p,
		verifier: oidc.NewVerifier(a.cfg.Issuer, keys, &oidc.Config{
			ClientID: a.cfg.ClientID,
			// Only what the provider advertises, never none or HMAC.
			SupportedSigningAlgs: algs,
			// Expiry is checked by verifyIDToken, with the configured clock skew.
			SkipExpiryCheck: true,
		}),
		oauth: oauth2.Config{
			ClientID:     a.cfg.ClientID,
			ClientSecret: a.cfg.ClientSecret,
			Endpoint:     ep,
			RedirectURL:  a.cfg.RedirectURL,
			Scopes:       a.cfg.Scopes,
		},
		endSession: meta.EndSession,
	}, nil
}

// clientContext carries the HTTP client that go-oidc and oauth2 use.
func (a *Auth) clientContext(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, a.cfg.HTTPClient)
}

// authStyle picks client authentication at the token endpoint: the
// configured method if discovery allows it, else what discovery advertises,
// client_secret_basic first; a silent document means client_secret_basic
// (RFC 8414 2).
func authStyle(preferred string, advertised []string) oauth2.AuthStyle {
	if len(advertised) == 0 {
		advertised = []string{"client_secret_basic"}
	}
	for _, m := range []string{preferred, "client_secret_basic", "client_secret_post"} {
		if m == "" || !slices.Contains(advertised, m) {
			continue
		}
		if m == "client_secret_post" {
			return oauth2.AuthStyleInParams
		}
		return oauth2.AuthStyleInHeader
	}
	return oauth2.AuthStyleAutoDetect
}

// asymmetricAlgs are the ID token algorithms we accept when the provider
// advertises them (RFC 7518 3.1): public-key signatures only, so neither
// "none" nor an HMAC keyed with the client secret can pass.
var asymmetricAlgs = []string{"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA"}

// signingAlgs filters the advertised algorithms to asymmetricAlgs; a
// document that advertises none means RS256 (OpenID Connect Discovery 3).
func signingAlgs(advertised []string) []string {
	if len(advertised) == 0 {
		return []string{"RS256"}
	}
	var algs []string
	for _, a := range advertised {
		if slices.Contains(asymmetricAlgs, a) {
			algs = append(algs, a)
		}
	}
	return algs
}
