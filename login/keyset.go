package login

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/time/rate"
)

// keySet verifies ID token signatures with the provider's JWKS. It stands in
// for go-oidc's RemoteKeySet, which refetches the JWKS on every unknown key
// ID with no limit: here refetches are rate limited, so a flood of tokens
// with made-up kids cannot make us hammer the provider, while a real key
// rotation is picked up at the next login.
type keySet struct {
	url     string
	client  *http.Client
	timeout time.Duration // of each fetch
	algs    []jose.SignatureAlgorithm

	mu      sync.Mutex
	keys    []jose.JSONWebKey
	limiter *rate.Limiter
}

// errKeysUnavailable means the JWKS could not be fetched: the provider's
// fault, not the token's.
var errKeysUnavailable = errors.New("provider's signing keys unavailable")

// fetchErrKey carries a *error through go-oidc to the caller: go-oidc
// flattens KeySet errors to text, and a JWKS the provider fails to serve
// must be told apart from a bad token.
type fetchErrKey struct{}

func newKeySet(url string, client *http.Client, timeout time.Duration, algs []string) *keySet {
	ks := &keySet{url: url, client: client, timeout: timeout, limiter: rate.NewLimiter(rate.Every(10*time.Second), 3)}
	for _, a := range algs {
		ks.algs = append(ks.algs, jose.SignatureAlgorithm(a))
	}
	return ks
}

// VerifySignature implements oidc.KeySet.
func (ks *keySet) VerifySignature(ctx context.Context, token string) ([]byte, error) {
	jws, err := jose.ParseSigned(token, ks.algs)
	if err != nil {
		return nil, fmt.Errorf("malformed token: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("token must have exactly one signature")
	}
	key, err := ks.key(ctx, jws.Signatures[0].Header.KeyID)
	if err != nil {
		return nil, err
	}
	// Outside the lock: concurrent logins check their signatures in
	// parallel.
	return jws.Verify(&key)
}

// key returns the signing key for kid, fetching the JWKS when kid is new.
func (ks *keySet) key(ctx context.Context, kid string) (jose.JSONWebKey, error) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if key, ok := ks.find(kid); ok {
		return key, nil
	}
	if !ks.limiter.Allow() {
		return jose.JSONWebKey{}, fmt.Errorf("no signing key %q, and the JWKS was refetched too recently", kid)
	}
	if err := ks.fetch(ctx); err != nil {
		err = errors.Join(errKeysUnavailable, err)
		if p, ok := ctx.Value(fetchErrKey{}).(*error); ok {
			*p = err
		}
		return jose.JSONWebKey{}, err
	}
	key, ok := ks.find(kid)
	if !ok {
		return jose.JSONWebKey{}, fmt.Errorf("no signing key %q in the provider's JWKS", kid)
	}
	return key, nil
}

// find returns the key for kid. A token without kid names no key: it is
// accepted only when the JWKS has a single signing key.
func (ks *keySet) find(kid string) (jose.JSONWebKey, bool) {
	var only *jose.JSONWebKey
	signing := 0
	for i := range ks.keys {
		k := &ks.keys[i]
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if kid != "" && k.KeyID == kid {
			return *k, true
		}
		signing++
		only = k
	}
	if kid == "" && signing == 1 {
		return *only, true
	}
	return jose.JSONWebKey{}, false
}

// fetch replaces the cached keys with the provider's JWKS; ks.mu is held, so
// concurrent logins wait for one fetch instead of each making their own.
func (ks *keySet) fetch(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, ks.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ks.url, nil)
	if err != nil {
		return err
	}
	resp, err := ks.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", ks.url, resp.Status)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return fmt.Errorf("GET %s: %w", ks.url, err)
	}
	ks.keys = set.Keys
	return nil
}
