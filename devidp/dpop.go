package devidp

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// dpopAlgs are the algorithms a DPoP proof may be signed with.
var dpopAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.PS256, jose.RS256}

// dpopProof is a checked DPoP proof (RFC 9449 4).
type dpopProof struct {
	jkt   string    // RFC 7638 thumbprint of its key, base64url
	jti   string    // unique per key
	until time.Time // when its iat is too old to be accepted anyway
}

// dpopError is a refused DPoP proof: invalid_dpop_proof, or
// use_dpop_nonce when it lacks the provider's current nonce.
type dpopError struct{ code, desc string }

func badProof(format string, args ...any) *dpopError {
	return &dpopError{"invalid_dpop_proof", fmt.Sprintf(format, args...)}
}

// checkProof checks the DPoP proof of a request with method to uri (RFC
// 9449 4.3); accessToken, when set, is the token the proof must name in
// ath. The proof's jti is only checked by spend, once the request is
// otherwise accepted.
func (p *Provider) checkProof(headers []string, method, uri, accessToken string) (*dpopProof, *dpopError) {
	switch len(headers) {
	case 0:
		return nil, badProof("a DPoP proof is required: send one in the DPoP header")
	case 1:
	default:
		return nil, badProof("send exactly one DPoP header")
	}
	// go-jose refuses a jwk header that is not a valid public key.
	jws, err := jose.ParseSignedCompact(headers[0], dpopAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, badProof("the DPoP proof is not a compact JWS signed with one of %s, with a public jwk", strings.Join(algNames(dpopAlgs), ", "))
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, "dpop+jwt") {
		return nil, badProof("the DPoP proof's typ must be dpop+jwt")
	}
	if h.JSONWebKey == nil {
		return nil, badProof("the DPoP proof has no jwk header")
	}
	if algs, err := keyAlgs(h.JSONWebKey.Key); err != nil || !slices.Contains(algs, jose.SignatureAlgorithm(h.Algorithm)) {
		return nil, badProof("the DPoP proof's jwk is not a key for %s (RSA of 2048 bits or more, or P-256)", h.Algorithm)
	}
	payload, err := jws.Verify(h.JSONWebKey.Key)
	if err != nil {
		return nil, badProof("the DPoP proof's signature does not verify with its jwk")
	}
	var claims struct {
		JTI   string           `json:"jti"`
		HTM   string           `json:"htm"`
		HTU   string           `json:"htu"`
		IAT   *jwt.NumericDate `json:"iat"`
		ATH   string           `json:"ath"`
		Nonce string           `json:"nonce"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, badProof("the DPoP proof's claims are not a JSON object of JWT claims")
	}
	now := p.now()
	switch {
	case claims.JTI == "":
		return nil, badProof("the DPoP proof has no jti")
	case claims.HTM != method:
		return nil, badProof("the DPoP proof's htm must be %s", method)
	case !sameHTU(claims.HTU, uri):
		return nil, badProof("the DPoP proof's htu must be %s", uri)
	case claims.IAT == nil:
		return nil, badProof("the DPoP proof has no iat")
	case claims.IAT.Time().Before(now.Add(-DPoPProofWindow)) || claims.IAT.Time().After(now.Add(DPoPProofWindow)):
		return nil, badProof("the DPoP proof's iat must be within %v of the provider's clock", DPoPProofWindow)
	case accessToken != "" && subtle.ConstantTimeCompare([]byte(claims.ATH), []byte(b64hash(accessToken))) != 1:
		return nil, badProof("the DPoP proof's ath must be base64url(SHA-256(access token))")
	case p.nonces && !p.validNonce(claims.Nonce):
		return nil, &dpopError{"use_dpop_nonce", "the DPoP proof must carry the nonce of the DPoP-Nonce header"}
	}
	thumb, err := h.JSONWebKey.Thumbprint(crypto256)
	if err != nil {
		return nil, badProof("the DPoP proof's jwk has no thumbprint")
	}
	return &dpopProof{
		jkt:   base64.RawURLEncoding.EncodeToString(thumb),
		jti:   claims.JTI,
		until: claims.IAT.Time().Add(DPoPProofWindow),
	}, nil
}

// sameHTU compares a proof's htu with the endpoint's URL, ignoring the
// query and fragment and the case of scheme and host, and a default port
// (RFC 9449 4.3, RFC 3986 6.2.2 and 6.2.3). The endpoint's URL is the one
// discovery advertises, not the request's: behind a proxy, that is what the
// client was told.
func sameHTU(htu, uri string) bool {
	a, err1 := url.Parse(htu)
	b, err2 := url.Parse(uri)
	return err1 == nil && err2 == nil && a.IsAbs() && normalURL(a) == normalURL(b)
}

func normalURL(u *url.URL) string {
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if scheme == "http" && port == "80" || scheme == "https" && port == "443" {
		port = ""
	}
	switch {
	case port != "":
		host = net.JoinHostPort(host, port)
	case strings.Contains(host, ":"):
		host = "[" + host + "]"
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path
}

// dpopNonce is the nonce proofs must carry when Config.DPoPNonce is set.
// It changes every dpopNonceLifetime, lazily; the previous one stays good.
func (p *Provider) dpopNonce() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if p.nonce == "" || now.Sub(p.nonceSince) > dpopNonceLifetime {
		p.prevNonce, p.nonce, p.nonceSince = p.nonce, rand.Text(), now
	}
	return p.nonce
}

func (p *Provider) validNonce(n string) bool {
	cur := p.dpopNonce()
	p.mu.Lock()
	prev := p.prevNonce
	p.mu.Unlock()
	return n != "" && (n == cur || n == prev)
}

// dpopChallenge refuses a request to userinfo (a protected resource) for
// its DPoP-bound token or proof (RFC 9449 7.1 and 9).
func (p *Provider) dpopChallenge(w http.ResponseWriter, code, desc string) {
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`DPoP error=%q, error_description=%q, algs="%s"`,
		code, desc, strings.Join(algNames(dpopAlgs), " ")))
	writeJSON(w, http.StatusUnauthorized, map[string]string{"error": code, "error_description": desc})
}
