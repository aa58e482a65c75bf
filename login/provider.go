package login

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"
)

// discovered is what discovery told us about the provider.
type discovered struct {
	provider   *oidc.Provider
	verifier   *oidc.IDTokenVerifier
	oauth      oauth2.Config
	endSession string
	sendsIss   bool
	// tokenClient calls the token (and PAR) endpoints, authenticating the
	// client as authMethod chose.
	tokenClient *http.Client
	authMethod  string
	parURL      string // the PAR endpoint; empty: authorization requests go through the browser
}

// lazyProvider discovers the provider on first use rather than at startup,
// so the app serves while the provider is unreachable and recovers by itself
// when it comes back. One attempt runs at a time, and callers share it; a
// failure is remembered for retryAfter, so an outage costs one attempt per
// retryAfter rather than one per request. The mutex guards only the state,
// never a network call.
type lazyProvider struct {
	a       *Auth
	attempt singleflight.Group

	mu      sync.Mutex
	d       *discovered
	lastErr error
	lastTry time.Time // when the last attempt ended
}

const retryAfter = 2 * time.Second

// ErrProviderUnavailable means discovery has not succeeded yet.
var ErrProviderUnavailable = errors.New("login: OpenID provider unavailable")

func (lp *lazyProvider) get(ctx context.Context) (*discovered, error) {
	lp.mu.Lock()
	d, lastErr, lastTry := lp.d, lp.lastErr, lp.lastTry
	lp.mu.Unlock()
	if d != nil {
		return d, nil
	}
	if lastErr != nil && time.Since(lastTry) < retryAfter {
		return nil, lastErr
	}
	// The attempt is bounded by Config.Timeout, not by the first caller's
	// request, whose end must not fail the others sharing it.
	ch := lp.attempt.DoChan("discover", func() (any, error) {
		d, err := lp.a.discover(context.WithoutCancel(ctx))
		lp.mu.Lock()
		defer lp.mu.Unlock()
		lp.lastTry = time.Now()
		if err != nil {
			lp.lastErr = errors.Join(ErrProviderUnavailable, err)
			return nil, lp.lastErr
		}
		lp.d, lp.lastErr = d, nil
		return d, nil
	})
	select {
	case <-ctx.Done():
		return nil, errors.Join(ErrProviderUnavailable, ctx.Err())
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*discovered), nil
	}
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
		// RFC 9207: the provider puts iss in every authorization response.
		IssParameter bool `json:"authorization_response_iss_parameter_supported"`
		// RFC 9126: where authorization requests are pushed, and whether
		// the provider takes them no other way.
		PAR         string `json:"pushed_authorization_request_endpoint"`
		PARRequired bool   `json:"require_pushed_authorization_requests"`
	}
	if err := p.Claims(&meta); err != nil {
		return nil, err
	}
	ep := p.Endpoint()
	method, err := authMethod(&a.cfg, meta.AuthMethods)
	if err != nil {
		return nil, err
	}
	ep.AuthStyle = authStyle(method)
	signer, err := newAssertionSigner(&a.cfg, method)
	if err != nil {
		return nil, err
	}
	secret := a.cfg.ClientSecret
	if signer != nil {
		secret = "" // the assertion authenticates; the secret never travels
	}
	base := a.cfg.HTTPClient.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	if meta.PAR == "" && (a.cfg.UsePAR || meta.PARRequired) {
		return nil, errors.New("login: pushed authorization requests are required, but the provider advertises no pushed_authorization_request_endpoint")
	}
	tokenClient := &http.Client{Transport: &clientAuthTransport{base: base, signer: signer,
		endpoints: []string{withoutQuery(ep.TokenURL), withoutQuery(meta.PAR)}, nonces: &a.dpopNonces, now: a.cfg.Now},
		Timeout: a.cfg.HTTPClient.Timeout}
	algs := signingAlgs(meta.Algs)
	if meta.JWKS == "" || len(algs) == 0 {
		return nil, errors.New("discovery document lacks jwks_uri or a supported ID token signing algorithm")
	}
	keys := newKeySet(meta.JWKS, a.cfg.HTTPClient, a.cfg.Timeout, algs)
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
			ClientSecret: secret,
			Endpoint:     ep,
			RedirectURL:  a.cfg.RedirectURL,
			Scopes:       a.cfg.Scopes,
		},
		endSession:  meta.EndSession,
		sendsIss:    meta.IssParameter,
		tokenClient: tokenClient,
		authMethod:  method,
		parURL:      meta.PAR,
	}, nil
}

// clientContext carries the HTTP client that go-oidc and oauth2 use.
func (a *Auth) clientContext(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, a.cfg.HTTPClient)
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

// withoutQuery is an endpoint URL as clientAuthTransport compares
// requests with it: without query and fragment (some token endpoints, such
// as Azure AD B2C's, carry a query).
func withoutQuery(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || endpoint == "" {
		return endpoint
	}
	return u.Scheme + "://" + u.Host + u.EscapedPath()
}
