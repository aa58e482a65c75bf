package login

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// Client authentication methods at the token endpoint (OpenID Connect Core
// 9, RFC 7523).
const (
	ClientSecretBasic = "client_secret_basic"
	ClientSecretPost  = "client_secret_post"
	ClientSecretJWT   = "client_secret_jwt"
	PrivateKeyJWT     = "private_key_jwt"
)

// clientAssertionType is the client_assertion_type of RFC 7523 2.2.
const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionLifetime is how long a client assertion is valid: long enough
// for a slow request, short enough that a copy is soon useless.
const assertionLifetime = 60 * time.Second

// authMethod picks the client authentication at the token endpoint from
// what is configured and what discovery advertises (nil: the document is
// silent, which means client_secret_basic, RFC 8414 2): private_key_jwt
// with a ClientKey; else TokenAuthMethod if the provider offers it, else
// client_secret_basic, client_secret_post or client_secret_jwt, the first
// the provider offers.
func authMethod(cfg *Config, advertised []string) (string, error) {
	if len(advertised) == 0 {
		advertised = []string{ClientSecretBasic}
	}
	if cfg.ClientKey != nil {
		if !slices.Contains(advertised, PrivateKeyJWT) {
			return "", fmt.Errorf("login: a ClientKey is set, but the provider does not offer private_key_jwt (it offers %v)", advertised)
		}
		return PrivateKeyJWT, nil
	}
	for _, m := range []string{cfg.TokenAuthMethod, ClientSecretBasic, ClientSecretPost, ClientSecretJWT} {
		// HS256 wants a key of 256 bits or more (RFC 7518 3.2).
		if m != "" && m != PrivateKeyJWT && slices.Contains(advertised, m) && (m != ClientSecretJWT || len(cfg.ClientSecret) >= 32) {
			return m, nil
		}
	}
	return "", fmt.Errorf("login: the provider offers no client authentication this client can do (%v); set ClientKey for private_key_jwt", advertised)
}

// authStyle is how x/oauth2 sends the client's credentials for method:
// for the JWT methods only client_id goes in the form, and the
// clientAuthTransport adds the assertion.
func authStyle(method string) oauth2.AuthStyle {
	if method == ClientSecretBasic {
		return oauth2.AuthStyleInHeader
	}
	return oauth2.AuthStyleInParams
}

// assertionSigner signs client assertions, or is nil for the secret
// methods.
type assertionSigner struct {
	signer   jose.Signer
	clientID string
	audience string // empty: the URL the assertion is sent to
}

// newAssertionSigner returns the signer of method's assertions.
func newAssertionSigner(cfg *Config, method string) (*assertionSigner, error) {
	var key jose.SigningKey
	switch method {
	case PrivateKeyJWT:
		alg, err := signingAlg(cfg.ClientKey)
		if err != nil {
			return nil, err
		}
		kid := cfg.ClientKeyID
		if kid == "" {
			if kid, err = Thumbprint(cfg.ClientKey.Public()); err != nil {
				return nil, err
			}
		}
		key = jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: cfg.ClientKey, KeyID: kid}}
	case ClientSecretJWT:
		if cfg.ClientSecret == "" {
			return nil, errors.New("login: client_secret_jwt needs a ClientSecret")
		}
		key = jose.SigningKey{Algorithm: jose.HS256, Key: []byte(cfg.ClientSecret)}
	default:
		return nil, nil
	}
	s, err := jose.NewSigner(key, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("login: client assertion signer: %w", err)
	}
	return &assertionSigner{signer: s, clientID: cfg.ClientID, audience: cfg.ClientAssertionAudience}, nil
}

// signingAlg is the JWS algorithm of a client key.
func signingAlg(key crypto.Signer) (jose.SignatureAlgorithm, error) {
	switch k := key.Public().(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return "", errors.New("login: ClientKey: an RSA key needs 2048 bits or more")
		}
		return jose.RS256, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return jose.ES256, nil
		case elliptic.P384():
			return jose.ES384, nil
		case elliptic.P521():
			return jose.ES512, nil
		}
	}
	return "", fmt.Errorf("login: ClientKey: unsupported key type %T; use RSA or ECDSA", key.Public())
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of a public key,
// base64url: the key ID of a client key whose file names none.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	sum, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// PublicJWKS is the JSON Web Key Set of key's public half, with key ID kid
// (its thumbprint if empty), for registering the client with a provider.
func PublicJWKS(key crypto.Signer, kid string) ([]byte, error) {
	alg, err := signingAlg(key)
	if err != nil {
		return nil, err
	}
	if kid == "" {
		if kid, err = Thumbprint(key.Public()); err != nil {
			return nil, err
		}
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: kid, Algorithm: string(alg), Use: "sig"}}}
	return json.MarshalIndent(set, "", "  ")
}

// assertion is a fresh client assertion for a request to endpoint (RFC
// 7523 3): iss and sub the client, aud the endpoint (or the configured
// audience), a unique jti and a short life.
func (s *assertionSigner) assertion(endpoint string, now time.Time) (string, error) {
	aud := s.audience
	if aud == "" {
		aud = endpoint
	}
	claims, _ := json.Marshal(map[string]any{
		"iss": s.clientID, "sub": s.clientID, "aud": aud, "jti": rand.Text(),
		"iat": now.Unix(), "exp": now.Add(assertionLifetime).Unix(),
	})
	jws, err := s.signer.Sign(claims)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// clientAuthTransport adds to every POST to the token or PAR endpoint the
// client's assertion, for the JWT methods, and a DPoP proof, when the
// request's context carries the session's DPoP key, retrying once with the
// server's DPoP nonce if it asks for one: x/oauth2 knows only the secret
// methods and no DPoP, and its refreshes have no other hook.
type clientAuthTransport struct {
	base      http.RoundTripper
	signer    *assertionSigner
	endpoints []string // token and PAR endpoint URLs
	nonces    *dpopNonces
	now       func() time.Time
}

func (t *clientAuthTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	endpoint := target(r)
	key := dpopKeyFrom(r.Context())
	if (t.signer == nil && key == nil) || r.Method != http.MethodPost || !slices.Contains(t.endpoints, endpoint) {
		return t.base.RoundTrip(r)
	}
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		return nil, err
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, err
	}
	send := func() (*http.Response, error) {
		req := r.Clone(r.Context())
		if t.signer != nil {
			// A new assertion each time: its jti is used once.
			a, err := t.signer.assertion(endpoint, t.now())
			if err != nil {
				return nil, fmt.Errorf("login: signing the client assertion: %w", err)
			}
			form.Set("client_assertion_type", clientAssertionType)
			form.Set("client_assertion", a)
		}
		if key != nil {
			proof, err := dpopProof(key, http.MethodPost, endpoint, t.nonces.get(origin(r)), "", t.now())
			if err != nil {
				return nil, fmt.Errorf("login: signing the DPoP proof: %w", err)
			}
			req.Header.Set("DPoP", proof)
		}
		enc := form.Encode()
		req.Body = io.NopCloser(strings.NewReader(enc))
		req.ContentLength = int64(len(enc))
		req.Header.Set("Content-Length", strconv.Itoa(len(enc)))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(enc)), nil }
		return t.base.RoundTrip(req)
	}
	resp, err := send()
	if err != nil || key == nil {
		return resp, err
	}
	t.nonces.update(origin(r), resp)
	if wantsNonce(resp) {
		resp.Body.Close()
		if resp, err = send(); err == nil {
			t.nonces.update(origin(r), resp)
		}
	}
	return resp, err
}

// tokenContext carries the HTTP client for calls to the token and PAR
// endpoints, which authenticates the client as discovery chose.
func (a *Auth) tokenContext(ctx context.Context, d *discovered) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, d.tokenClient)
}

// ParseClientKey reads a private key for ClientKey from a PEM block
// (PKCS #8, PKCS #1 RSA or SEC 1 EC) or a private JWK, and returns it with
// its key ID: the JWK's kid, else the RFC 7638 thumbprint.
func ParseClientKey(data []byte) (crypto.Signer, string, error) {
	var key any
	kid := ""
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '{' {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(trimmed); err != nil {
			return nil, "", fmt.Errorf("login: client key JWK: %w", err)
		}
		key, kid = jwk.Key, jwk.KeyID
	} else {
		block, _ := pem.Decode(data)
		if block == nil {
			return nil, "", errors.New("login: client key: neither a PEM block nor a JWK")
		}
		var err error
		for _, parse := range []func([]byte) (any, error){
			x509.ParsePKCS8PrivateKey,
			func(b []byte) (any, error) { return x509.ParsePKCS1PrivateKey(b) },
			func(b []byte) (any, error) { return x509.ParseECPrivateKey(b) },
		} {
			if key, err = parse(block.Bytes); err == nil {
				break
			}
		}
		if err != nil {
			return nil, "", fmt.Errorf("login: client key: not a PKCS #8, PKCS #1 or SEC 1 private key: %w", err)
		}
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, "", fmt.Errorf("login: client key: %T is not a private key", key)
	}
	if _, err := signingAlg(signer); err != nil {
		return nil, "", err
	}
	if kid == "" {
		var err error
		if kid, err = Thumbprint(signer.Public()); err != nil {
			return nil, "", err
		}
	}
	return signer, kid, nil
}
