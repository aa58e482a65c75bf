package login

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// DPoP (RFC 9449) binds a session's access and refresh tokens to a key of
// the session's own: whoever copies the tokens cannot use them without the
// private key, which stays server-side in the session's tokens record and
// is deleted with it.

// sessionKey is a session's DPoP key, with its PKCS #8 form for the
// tokens record.
type sessionKey struct {
	key *ecdsa.PrivateKey
	der []byte
}

// newSessionKey makes a session's DPoP key.
func newSessionKey() (sessionKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return sessionKey{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	return sessionKey{key, der}, err
}

// parseDPoPKey reads a key newSessionKey made.
func parseDPoPKey(der []byte) (*ecdsa.PrivateKey, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("login: the session's DPoP key is not an EC key")
	}
	return key, nil
}

// dpopNonces remembers the latest DPoP-Nonce each server gave (RFC 9449 8
// and 9), by origin, so proofs carry it without a retry each time.
type dpopNonces struct {
	mu sync.Mutex
	m  map[string]string
}

func (n *dpopNonces) get(origin string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.m[origin]
}

// update records resp's DPoP-Nonce, if any, and reports whether it is new.
func (n *dpopNonces) update(origin string, resp *http.Response) bool {
	v := resp.Header.Get("DPoP-Nonce")
	if v == "" {
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.m == nil {
		n.m = make(map[string]string)
	}
	fresh := n.m[origin] != v
	n.m[origin] = v
	return fresh
}

// dpopProof is a proof for a request of method to target (its URL without
// query and fragment) with key: a JWT of type dpop+jwt carrying the public
// key, a unique jti, and, for a resource request, the hash of the access
// token it goes with (ath).
func dpopProof(key *ecdsa.PrivateKey, method, target, nonce, accessToken string, now time.Time) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		return "", err
	}
	claims := map[string]any{"jti": rand.Text(), "htm": method, "htu": target, "iat": now.Unix()}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		claims["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// dpopKeyKey carries the DPoP key of a token request in its context.
type dpopKeyKey struct{}

func withDPoPKey(ctx context.Context, key *ecdsa.PrivateKey) context.Context {
	if key == nil {
		return ctx
	}
	return context.WithValue(ctx, dpopKeyKey{}, key)
}

func dpopKeyFrom(ctx context.Context) *ecdsa.PrivateKey {
	k, _ := ctx.Value(dpopKeyKey{}).(*ecdsa.PrivateKey)
	return k
}

// wantsNonce reports whether resp asks the request again with the nonce it
// carries: 400 use_dpop_nonce from an authorization server, 401 with a
// WWW-Authenticate of that error from a resource server. It leaves resp's
// body readable.
func wantsNonce(resp *http.Response) bool {
	if resp.Header.Get("DPoP-Nonce") == "" {
		return false
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return strings.Contains(resp.Header.Get("WWW-Authenticate"), "use_dpop_nonce")
	case http.StatusBadRequest:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		var e struct {
			Error string `json:"error"`
		}
		return json.Unmarshal(body, &e) == nil && e.Error == "use_dpop_nonce"
	}
	return false
}

// isDPoP reports whether a token response's token_type is DPoP; RFC 9449
// 5 and RFC 6749 5.1 make it case-insensitive.
func isDPoP(tokenType string) bool { return strings.EqualFold(tokenType, "DPoP") }

// origin is a URL's scheme and host, the key of dpopNonces.
func origin(r *http.Request) string { return r.URL.Scheme + "://" + r.URL.Host }

// target is a request's URL without query and fragment, a proof's htu.
func target(r *http.Request) string { return origin(r) + r.URL.EscapedPath() }

// dpopAPITransport sends the API calls of Auth.Client with a DPoP-bound
// access token: Authorization: DPoP and a fresh proof with its hash, once
// more with the server's nonce if it asks for one.
type dpopAPITransport struct {
	base        http.RoundTripper
	key         *ecdsa.PrivateKey
	accessToken string
	nonces      *dpopNonces
	now         func() time.Time
}

func (t *dpopAPITransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.GetBody != nil {
		r.Body.Close() // each send reads a copy from GetBody
	}
	send := func() (*http.Response, error) {
		proof, err := dpopProof(t.key, r.Method, target(r), t.nonces.get(origin(r)), t.accessToken, t.now())
		if err != nil {
			return nil, err
		}
		req := r.Clone(r.Context())
		if r.GetBody != nil {
			if req.Body, err = r.GetBody(); err != nil {
				return nil, err
			}
		}
		req.Header.Set("Authorization", "DPoP "+t.accessToken)
		req.Header.Set("DPoP", proof)
		return t.base.RoundTrip(req)
	}
	resp, err := send()
	if err != nil {
		return nil, err
	}
	t.nonces.update(origin(r), resp)
	if wantsNonce(resp) && (r.Body == nil || r.GetBody != nil) {
		resp.Body.Close()
		resp, err = send()
		if err == nil {
			t.nonces.update(origin(r), resp)
		}
	}
	return resp, err
}
