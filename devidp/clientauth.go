package devidp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// JWTBearerAssertionType is the client_assertion_type of a client assertion
// (RFC 7523 2.2).
const JWTBearerAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// authMethodsSupported are the client authentication methods of the token
// and PAR endpoints (OpenID Connect Core 9).
var authMethodsSupported = []string{"client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt"}

// assertionAlgs are the algorithms a client assertion may be signed with:
// HS256 for client_secret_jwt, the others for private_key_jwt.
var assertionAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.HS256}

func algNames(algs []jose.SignatureAlgorithm) []string {
	names := make([]string, len(algs))
	for i, a := range algs {
		names[i] = string(a)
	}
	return names
}

// clientAuth is an authenticated client. For a client assertion, jti and
// until are what the replay set must hold once the request is accepted.
type clientAuth struct {
	client Client
	jti    string
	until  time.Time
}

// authenticate identifies the client of a token or PAR request by
// client_secret_basic, client_secret_post, client_secret_jwt or
// private_key_jwt; audiences are the aud values an assertion may name. It
// returns why it refused, for an invalid_client answer: this provider is
// for developers, who need to know what their client got wrong. The
// assertion's jti is only checked here; spend records it.
func (p *Provider) authenticate(r *http.Request, audiences ...string) (clientAuth, string) {
	form := r.PostForm
	_, _, basic := r.BasicAuth()
	if form.Has("client_assertion") || form.Has("client_assertion_type") {
		// One request, one method (RFC 6749 2.3).
		if basic || form.Has("client_secret") {
			return clientAuth{}, "use one client authentication method: a client assertion, or a secret"
		}
		if t := form.Get("client_assertion_type"); t != JWTBearerAssertionType {
			return clientAuth{}, fmt.Sprintf("client_assertion_type must be %s", JWTBearerAssertionType)
		}
		return p.verifyAssertion(form.Get("client_assertion"), form.Get("client_id"), audiences)
	}
	id, secret, ok := r.BasicAuth()
	if ok {
		// RFC 6749 2.3.1: the credentials are form-encoded inside Basic.
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	c, found := p.clients[id]
	switch {
	case !found:
		return clientAuth{}, "unknown client"
	case c.Secret == "" && len(c.Keys) > 0:
		return clientAuth{}, "the client has no secret: it must authenticate with a private_key_jwt client assertion"
	case subtle.ConstantTimeCompare([]byte(c.Secret), []byte(secret)) != 1:
		return clientAuth{}, "wrong client secret"
	}
	return clientAuth{client: c}, ""
}

// verifyAssertion checks a client assertion (RFC 7523 3, OpenID Connect
// Core 9): its signature by the client's secret (HS256) or keys, iss and
// sub the client, an aud of ours, a short life, and a jti. The signature is
// checked before the claims, so that only the client learns what is wrong
// with them.
func (p *Provider) verifyAssertion(raw, clientID string, audiences []string) (clientAuth, string) {
	jws, err := jose.ParseSignedCompact(raw, assertionAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return clientAuth{}, "client_assertion is not a compact JWS signed with one of " + strings.Join(algNames(assertionAlgs), ", ")
	}
	var claims jwt.Claims
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &claims); err != nil {
		return clientAuth{}, "the client assertion's claims are not a JSON object of JWT claims"
	}
	c, ok := p.clients[claims.Issuer]
	switch {
	case !ok:
		return clientAuth{}, "the client assertion's iss is not a registered client_id"
	case claims.Subject != claims.Issuer:
		return clientAuth{}, "the client assertion's sub must be its iss, the client_id"
	case clientID != "" && clientID != c.ID:
		return clientAuth{}, "client_id is not the client assertion's iss"
	}
	h := jws.Signatures[0].Protected
	if problem := verifyClientSignature(jws, h, c); problem != "" {
		return clientAuth{}, problem
	}
	now := p.now()
	switch {
	case claims.Expiry == nil:
		return clientAuth{}, "the client assertion has no exp"
	case !now.Before(claims.Expiry.Time()):
		return clientAuth{}, "the client assertion has expired"
	case claims.Expiry.Time().Sub(now) > MaxAssertionLifetime,
		claims.IssuedAt != nil && claims.Expiry.Time().Sub(claims.IssuedAt.Time()) > MaxAssertionLifetime:
		return clientAuth{}, fmt.Sprintf("the client assertion lives too long: exp may be at most %v after now and after its iat", MaxAssertionLifetime)
	case claims.NotBefore != nil && now.Before(claims.NotBefore.Time()):
		return clientAuth{}, "the client assertion is not valid yet (nbf)"
	case !slices.ContainsFunc(audiences, func(a string) bool { return slices.Contains(claims.Audience, a) }):
		return clientAuth{}, "the client assertion's aud must contain one of " + strings.Join(audiences, ", ")
	case claims.ID == "":
		return clientAuth{}, "the client assertion has no jti"
	}
	auth := clientAuth{client: c, jti: c.ID + " " + claims.ID, until: claims.Expiry.Time()}
	p.mu.Lock()
	defer p.mu.Unlock()
	if exp, ok := p.jtis[auth.jti]; ok && !now.After(exp) {
		return clientAuth{}, "the client assertion's jti was already used"
	}
	return auth, ""
}

// verifyClientSignature checks the signature of a client assertion: HS256
// keyed with the client's secret, or another algorithm with one of its
// keys, the one kid names if it names one.
func verifyClientSignature(jws *jose.JSONWebSignature, h jose.Header, c Client) string {
	alg := jose.SignatureAlgorithm(h.Algorithm)
	if alg == jose.HS256 {
		// go-jose refuses keys shorter than the hash, as RFC 7518 3.2 says
		// they must not be; the check here says why.
		switch {
		case c.Secret == "":
			return "the client has no secret to sign a client_secret_jwt assertion with"
		case len(c.Secret) < sha256.Size:
			return "client_secret_jwt needs a client secret of at least 32 bytes (RFC 7518 3.2)"
		}
		if _, err := jws.Verify([]byte(c.Secret)); err != nil {
			return "the client assertion's HS256 signature does not verify with the client secret"
		}
		return ""
	}
	if len(c.Keys) == 0 {
		return "the client has no registered keys for a private_key_jwt assertion"
	}
	for _, k := range c.Keys {
		if h.KeyID != "" && k.KeyID != h.KeyID || k.Algorithm != "" && k.Algorithm != string(alg) {
			continue
		}
		if _, err := jws.Verify(k.Key); err == nil {
			return ""
		}
	}
	if h.KeyID != "" && !slices.ContainsFunc(c.Keys, func(k jose.JSONWebKey) bool { return k.KeyID == h.KeyID }) {
		return fmt.Sprintf("the client has no key with the client assertion's kid %q", h.KeyID)
	}
	return fmt.Sprintf("the client assertion's %s signature does not verify with the client's keys", alg)
}

// spend records the jtis of a client assertion and a DPoP proof, refusing
// either if seen before; it answers the problem and its error code.
func (p *Provider) spend(auth clientAuth, proof *dpopProof) (problem, code string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if auth.jti != "" {
		if exp, ok := p.jtis[auth.jti]; ok && !now.After(exp) {
			return "the client assertion's jti was already used", "invalid_client"
		}
	}
	if proof != nil && p.seen(p.proofs, proof.jkt+" "+proof.jti, proof.until) {
		return "the DPoP proof's jti was already used", "invalid_dpop_proof"
	}
	if auth.jti != "" && p.seen(p.jtis, auth.jti, auth.until) {
		return "too many client assertions outstanding", "invalid_client"
	}
	return "", ""
}

// checkClientKeys refuses a client whose Keys the provider could not
// verify assertions with, or that hold a private key: the provider should
// never be given one.
func checkClientKeys(c Client) error {
	for i, k := range c.Keys {
		if !k.Valid() || !k.IsPublic() {
			return fmt.Errorf("devidp: client %q: key %d is not a valid public key", c.ID, i)
		}
		if k.Use != "" && k.Use != "sig" {
			return fmt.Errorf("devidp: client %q: key %d is not for signatures (use %q)", c.ID, i, k.Use)
		}
		algs, err := keyAlgs(k.Key)
		if err != nil {
			return fmt.Errorf("devidp: client %q: key %d: %w", c.ID, i, err)
		}
		if k.Algorithm != "" && !slices.Contains(algs, jose.SignatureAlgorithm(k.Algorithm)) {
			return fmt.Errorf("devidp: client %q: key %d: algorithm %q is not one of %v for its key type", c.ID, i, k.Algorithm, algs)
		}
	}
	return nil
}

// keyAlgs are the signature algorithms the provider accepts for a public
// key: RS256 and PS256 for RSA keys of 2048 bits or more, ES256 for P-256.
func keyAlgs(key any) ([]jose.SignatureAlgorithm, error) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("RSA key of %d bits; at least 2048 are needed", k.N.BitLen())
		}
		return []jose.SignatureAlgorithm{jose.RS256, jose.PS256}, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("EC key on %s; only P-256 (ES256) is supported", k.Curve.Params().Name)
		}
		return []jose.SignatureAlgorithm{jose.ES256}, nil
	}
	return nil, fmt.Errorf("unsupported key type %T; want an RSA or P-256 public key", key)
}

// b64hash is base64url(SHA-256(s)), as PKCE and DPoP's ath use.
func b64hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
