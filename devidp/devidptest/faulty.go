package devidptest

import (
	"bytes"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/gologin/gologin/devidp"
)

// Faulty is a development provider that misbehaves on demand, for tests of
// how a relying party copes with a provider's faults: an endpoint that
// refuses, fails or hangs, ID tokens with wrong claims or signatures, a
// JWKS that is down, a signing key that rotates. Without faults it is the
// development provider itself. Its issuer is its server's URL, so the
// paths of its endpoints are /token, /jwks, /userinfo and so on.
//
// The misbehaviour lives here, in test support, and never in package
// devidp. Its methods are safe for concurrent use.
type Faulty struct {
	issuer string

	mu     sync.Mutex
	cfg    devidp.Config
	idp    *devidp.Provider
	faults Faults
	watch  func(body map[string]any)
	hits   map[string]int // requests by path
}

// Faults are what a Faulty does wrong; the zero Faults is a provider that
// behaves.
type Faults struct {
	// Token, JWKS and Userinfo, when set, answer the token endpoint (for
	// codes and refresh tokens alike), the JWKS and the userinfo endpoint
	// instead of the provider.
	Token, JWKS, Userinfo http.HandlerFunc
	// Handlers answer other requests instead of the provider, by path (such
	// as "/.well-known/openid-configuration"). Token, JWKS and Userinfo take
	// precedence over them.
	Handlers map[string]http.HandlerFunc
	// Claims, when set, edits the claims of each ID token the token
	// endpoint issues. The edited token is signed by Mint, or else with the
	// provider's key as usual.
	Claims func(claims map[string]any)
	// Mint, when set, signs each ID token the token endpoint issues, after
	// Claims, instead of the provider's key: with another key, another kid,
	// another algorithm or none.
	Mint func(claims map[string]any) (string, error)
}

// NewFaulty starts a Faulty with a fresh signing key and the given
// clients, on a loopback server that is closed when the test ends.
func NewFaulty(t testing.TB, clients ...devidp.Client) *Faulty {
	t.Helper()
	key, err := devidp.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	f := &Faulty{hits: make(map[string]int)}
	srv := httptest.NewUnstartedServer(f)
	f.issuer = "http://" + srv.Listener.Addr().String()
	f.cfg = devidp.Config{Issuer: f.issuer, Key: key, Clients: clients}
	if f.idp, err = devidp.New(f.cfg); err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return f
}

// Issuer returns the provider's issuer URL, its server's URL.
func (f *Faulty) Issuer() string { return f.issuer }

// Set replaces the provider's faults, all at once; Set(Faults{}) makes it
// behave again.
func (f *Faulty) Set(faults Faults) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = faults
}

// Hits returns how many requests the provider received for path, such as
// "/jwks", faulty or not.
func (f *Faulty) Hits(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[path]
}

// Provider returns the development provider behind the faults, as it is
// now: to sign tokens with its key (Provider().Sign), or to serve requests
// from a fault's handler that changes the provider's answer rather than
// replacing it.
func (f *Faulty) Provider() *devidp.Provider {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.idp
}

// Key returns the provider's current signing key.
func (f *Faulty) Key() *rsa.PrivateKey {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cfg.Key
}

// OnTokens has fn called with every JSON answer of the token endpoint, as
// the relying party receives it (after faults), such as to note the tokens
// that a test then checks no log holds. fn must not block.
func (f *Faulty) OnTokens(fn func(body map[string]any)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.watch = fn
}

// Reconfigure replaces the provider behind the faults with one of the
// configuration edit makes of the current one (its issuer must stay).
// Like a restart of a provider that keeps nothing, it forgets the codes and
// tokens issued before.
func (f *Faulty) Reconfigure(t testing.TB, edit func(cfg *devidp.Config)) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	cfg := f.cfg
	cfg.Clients = append([]devidp.Client(nil), f.cfg.Clients...)
	edit(&cfg)
	if cfg.Issuer != f.issuer {
		t.Fatalf("devidptest: Reconfigure cannot change the issuer %s", f.issuer)
	}
	idp, err := devidp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.cfg, f.idp = cfg, idp
}

// RotateKey replaces the provider's signing key with a new one, as a
// provider's key rotation does: the JWKS then holds only the new key, whose
// key ID is new. Codes issued before are forgotten.
func (f *Faulty) RotateKey(t testing.TB) {
	t.Helper()
	key, err := devidp.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	f.Reconfigure(t, func(cfg *devidp.Config) { cfg.Key = key })
}

// ServeHTTP implements http.Handler.
func (f *Faulty) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	idp, faults, watch := f.idp, f.faults, f.watch
	f.hits[r.URL.Path]++
	f.mu.Unlock()
	h := faults.Handlers[r.URL.Path]
	switch r.URL.Path {
	case "/token":
		h = first(faults.Token, h)
	case "/jwks":
		h = first(faults.JWKS, h)
	case "/userinfo":
		h = first(faults.Userinfo, h)
	}
	switch {
	case h != nil:
		h(w, r)
	case r.URL.Path == "/token":
		serveToken(w, r, idp, faults, watch)
	default:
		idp.ServeHTTP(w, r)
	}
}

// first is the first of hs that is set.
func first(hs ...http.HandlerFunc) http.HandlerFunc {
	for _, h := range hs {
		if h != nil {
			return h
		}
	}
	return nil
}

// serveToken answers the token endpoint with the provider's answer, its ID
// token rewritten as faults say.
func serveToken(w http.ResponseWriter, r *http.Request, idp *devidp.Provider, faults Faults, watch func(map[string]any)) {
	rec := httptest.NewRecorder()
	idp.ServeHTTP(rec, r)
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		body = nil
	}
	raw, _ := body["id_token"].(string)
	if rec.Code != http.StatusOK || raw == "" || (faults.Claims == nil && faults.Mint == nil) {
		if body != nil && watch != nil {
			watch(body)
		}
		for k, vs := range rec.Header() {
			w.Header()[k] = vs
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
		return
	}
	claims, err := Claims(raw)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if faults.Claims != nil {
		faults.Claims(claims)
	}
	mint := faults.Mint
	if mint == nil {
		mint = idp.Sign
	}
	if body["id_token"], err = mint(claims); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if watch != nil {
		watch(body)
	}
	// The provider's headers stay, such as DPoP-Nonce; the body's length
	// changed.
	for k, vs := range rec.Header() {
		w.Header()[k] = vs
	}
	w.Header().Del("Content-Length")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(body)
}

// Claims returns the claims of a compact JWS without checking its
// signature; numbers are json.Numbers, so that times stay integers when
// the claims are signed again.
func Claims(jws string) (map[string]any, error) {
	parts := strings.Split(jws, ".")
	if len(parts) != 3 {
		return nil, errors.New("devidptest: not a compact JWS")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	d := json.NewDecoder(bytes.NewReader(payload))
	d.UseNumber()
	if err := d.Decode(&claims); err != nil {
		return nil, err
	}
	return claims, nil
}

// Sign signs claims as an RS256 JWS with key, naming kid and typ in its
// header unless they are empty: to make tokens whose key ID the provider's
// JWKS does not hold, tokens without a key ID, or tokens of another type.
func Sign(key *rsa.PrivateKey, kid, typ string, claims map[string]any) (string, error) {
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	sk := jose.SigningKey{Algorithm: jose.RS256, Key: key}
	if kid != "" {
		sk.Key = jose.JSONWebKey{Key: key, KeyID: kid}
	}
	signer, err := jose.NewSigner(sk, opts)
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}
