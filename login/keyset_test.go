package login

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gologin/gologin/devidp/devidptest"
	"github.com/gologin/gologin/internal/testclient"
)

// TestKeyFetchIsBoundedByTimeout: a JWKS endpoint that never answers fails
// verification after Timeout, even for a caller whose context has no
// deadline (a back-channel logout request) and with a client without a
// timeout of its own.
func TestKeyFetchIsBoundedByTimeout(t *testing.T) {
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	token := signedToken(t, key, "k1")

	ks := newKeySet(hang.URL, &http.Client{}, 50*time.Millisecond, []string{"RS256"})
	done := make(chan error, 1)
	go func() {
		_, err := ks.VerifySignature(context.Background(), token)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, errKeysUnavailable) {
			t.Fatalf("VerifySignature = %v, want errKeysUnavailable", err)
		}
	case <-time.After(time.Minute): // a guard against hanging, not a timing check
		t.Fatal("VerifySignature still waits for the JWKS endpoint")
	}
}

// TestKeySelection: a token is checked with the JWKS key its kid names,
// among the signing keys only; a token without kid only when the JWKS has a
// single signing key.
func TestKeySelection(t *testing.T) {
	keyA, _ := rsa.GenerateKey(rand.Reader, 2048)
	keyB, _ := rsa.GenerateKey(rand.Reader, 2048)
	pub := func(key *rsa.PrivateKey, kid, use string) jose.JSONWebKey {
		return jose.JSONWebKey{Key: &key.PublicKey, KeyID: kid, Use: use, Algorithm: "RS256"}
	}
	tests := []struct {
		name  string
		jwks  []jose.JSONWebKey
		token string
		ok    bool
	}{
		{"kid names a signing key", []jose.JSONWebKey{pub(keyB, "b", "sig"), pub(keyA, "a", "sig")}, signedToken(t, keyA, "a"), true},
		{"kid names another key", []jose.JSONWebKey{pub(keyB, "a", "sig")}, signedToken(t, keyA, "a"), false},
		{"kid names an encryption key", []jose.JSONWebKey{pub(keyA, "a", "enc"), pub(keyB, "b", "sig")}, signedToken(t, keyA, "a"), false},
		{"no kid, one signing key", []jose.JSONWebKey{pub(keyA, "a", ""), pub(keyB, "b", "enc")}, signedToken(t, keyA, ""), true},
		{"no kid, two signing keys", []jose.JSONWebKey{pub(keyA, "a", "sig"), pub(keyB, "b", "sig")}, signedToken(t, keyA, ""), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: tt.jwks})
			}))
			defer srv.Close()
			ks := newKeySet(srv.URL, srv.Client(), time.Second, []string{"RS256"})
			payload, err := ks.VerifySignature(context.Background(), tt.token)
			if tt.ok && (err != nil || string(payload) != `{"sub":"u"}`) {
				t.Fatalf("VerifySignature: %q, %v; want the payload", payload, err)
			}
			if !tt.ok && err == nil {
				t.Fatal("VerifySignature accepted the token")
			}
		})
	}
}

// signedToken is an RS256 JWS of {"sub":"u"} by key, with kid in its
// header unless empty.
func signedToken(t *testing.T, key *rsa.PrivateKey, kid string) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign([]byte(`{"sub":"u"}`))
	if err != nil {
		t.Fatal(err)
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// TestKeyRotation: after the provider rotates its signing key, the next
// sign-in's token, under the new key's ID, is verified with the refetched
// JWKS.
func TestKeyRotation(t *testing.T) {
	rp := newRP(t, nil)
	for i, email := range []string{"before@example.com", "after@example.com"} {
		if i == 1 {
			rp.idp.RotateKey(t)
		}
		b := testclient.New(t)
		rp.signIn(t, b, email, nil)
		if u, ok := rp.user(t, b); !ok || u.Email != email {
			t.Fatalf("sign-in as %s (key rotated: %v) failed: %+v", email, i == 1, rp.failures(t))
		}
	}
	if got := rp.idp.Hits("/jwks"); got != 2 {
		t.Errorf("%d JWKS requests, want 2: one per key", got)
	}
}

// TestUnknownKeyIDsCannotFloodTheProvider: ID tokens naming key IDs the
// JWKS lacks are refused, and refetch the JWKS a burst of 3 times, then
// once every 10 s at most.
func TestUnknownKeyIDsCannotFloodTheProvider(t *testing.T) {
	rp := newRP(t, nil)
	var n atomic.Int32
	rp.idp.Set(devidptest.Faults{Mint: func(c map[string]any) (string, error) {
		return devidptest.Sign(rp.idp.Key(), fmt.Sprintf("made-up-%d", n.Add(1)), "JWT", c)
	}})
	for i := range 20 {
		rp.reset()
		b := testclient.New(t)
		p := rp.signIn(t, b, "flood@example.com", nil)
		if e := rp.onlyError(t); p.Status != http.StatusBadRequest || e.Reason != "invalid_id_token" {
			t.Fatalf("login %d with an unknown kid: got %d, %s; want 400, invalid_id_token", i, p.Status, e.Reason)
		}
	}
	if got := rp.idp.Hits("/jwks"); got > 5 {
		t.Errorf("20 tokens with unknown kids made %d JWKS requests, want at most 5", got)
	}
}
