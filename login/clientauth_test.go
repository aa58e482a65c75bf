package login

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// TestClientAssertions posts token requests through the transport that
// authenticates with a signed assertion and checks what the endpoint gets:
// RFC 7523's claims, signed by the client's key (or HMAC-keyed with its
// secret), a new jti each time, and the other form fields untouched.
func TestClientAssertions(t *testing.T) {
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	var forms []url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f, _ := url.ParseQuery(string(b))
		forms = append(forms, f)
	}))
	defer srv.Close()
	tokenURL := srv.URL + "/token"
	now := time.Now()
	tests := []struct {
		name   string
		cfg    Config
		method string
		verify any // what checks the signature
		alg    jose.SignatureAlgorithm
		aud    string
	}{
		{"private_key_jwt, EC", Config{ClientID: "app", ClientKey: ecKey}, PrivateKeyJWT, &ecKey.PublicKey, jose.ES256, tokenURL},
		{"private_key_jwt, RSA, aud the issuer", Config{ClientID: "app", ClientKey: rsaKey, ClientAssertionAudience: "https://op.example/"},
			PrivateKeyJWT, &rsaKey.PublicKey, jose.RS256, "https://op.example/"},
		{"client_secret_jwt", Config{ClientID: "app", ClientSecret: "0123456789abcdef0123456789abcdef"}, ClientSecretJWT,
			[]byte("0123456789abcdef0123456789abcdef"), jose.HS256, tokenURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forms = nil
			signer, err := newAssertionSigner(&tt.cfg, tt.method)
			if err != nil {
				t.Fatal(err)
			}
			c := &http.Client{Transport: &clientAuthTransport{base: http.DefaultTransport, signer: signer,
				// As discovery gives it: some token endpoints carry a query.
				endpoints: []string{withoutQuery(tokenURL + "?x=1")}, now: func() time.Time { return now }}}
			for range 2 {
				resp, err := c.PostForm(tokenURL+"?x=1", url.Values{"grant_type": {"authorization_code"}, "code": {"c"}, "client_id": {"app"}})
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
			}
			// Other endpoints get no assertion.
			if resp, err := c.PostForm(srv.URL+"/userinfo", url.Values{"a": {"b"}}); err == nil {
				resp.Body.Close()
			}
			if len(forms) != 3 || forms[2].Has("client_assertion") {
				t.Fatalf("requests: %v; want 3, the last without an assertion", forms)
			}
			jtis := map[string]bool{}
			for _, f := range forms[:2] {
				if f.Get("client_assertion_type") != clientAssertionType || f.Get("code") != "c" || f.Get("grant_type") != "authorization_code" || f.Has("client_secret") {
					t.Fatalf("form %v", f)
				}
				jws, err := jose.ParseSigned(f.Get("client_assertion"), []jose.SignatureAlgorithm{tt.alg})
				if err != nil {
					t.Fatal(err)
				}
				payload, err := jws.Verify(tt.verify)
				if err != nil {
					t.Fatalf("assertion does not verify with the client's key: %v", err)
				}
				var c struct {
					Iss, Sub, Aud, Jti string
					Iat, Exp           int64
				}
				json.Unmarshal(payload, &c)
				if c.Iss != "app" || c.Sub != "app" || c.Aud != tt.aud || c.Jti == "" || c.Iat != now.Unix() || c.Exp-c.Iat > 60 || c.Exp <= c.Iat {
					t.Errorf("assertion claims %+v; want iss=sub=app, aud %s, a jti, and at most 60 s of life", c, tt.aud)
				}
				if tt.method == PrivateKeyJWT && jws.Signatures[0].Header.KeyID == "" {
					t.Error("private_key_jwt assertion without a kid")
				}
				jtis[c.Jti] = true
			}
			if len(jtis) != 2 {
				t.Error("two assertions share a jti")
			}
		})
	}
}

func TestPublicJWKS(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	b, err := PublicJWKS(key, "")
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("PublicJWKS = %s, %v", b, err)
	}
	k := set.Keys[0]
	thumb, _ := Thumbprint(&key.PublicKey)
	if !k.IsPublic() || k.KeyID != thumb || k.Algorithm != "ES256" || k.Use != "sig" || strings.Contains(string(b), `"d"`) {
		t.Errorf("JWKS %s: want the public key only, kid its thumbprint %s, alg ES256, use sig", b, thumb)
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	if _, err := PublicJWKS(small, ""); err == nil {
		t.Error("a 1024-bit RSA key was accepted")
	}
}

func TestParseClientKey(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(ec)
	sec1, _ := x509.MarshalECPrivateKey(ec)
	jwk, _ := json.Marshal(jose.JSONWebKey{Key: ec, KeyID: "my-key"})
	thumb, _ := Thumbprint(&ec.PublicKey)
	tests := []struct {
		name, data, kid string
	}{
		{"PKCS #8 PEM", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})), thumb},
		{"SEC 1 PEM", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})), thumb},
		{"PKCS #1 PEM", string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)})), ""},
		{"JWK with kid", string(jwk), "my-key"},
	}
	for _, tt := range tests {
		key, kid, err := ParseClientKey([]byte(tt.data))
		if err != nil || key == nil || (tt.kid != "" && kid != tt.kid) || kid == "" {
			t.Errorf("%s: key %v, kid %q, %v; want kid %q", tt.name, key != nil, kid, err, tt.kid)
		}
	}
	pub, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	for name, data := range map[string]string{
		"garbage":    "not a key",
		"public key": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})),
		"public JWK": `{"kty":"EC","crv":"P-256","x":"` + strings.Repeat("A", 43) + `","y":"` + strings.Repeat("A", 43) + `"}`,
	} {
		if _, _, err := ParseClientKey([]byte(data)); err == nil {
			t.Errorf("%s: accepted as a private key", name)
		}
	}
}
