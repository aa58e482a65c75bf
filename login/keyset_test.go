package login

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
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
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign([]byte(`{"sub":"u"}`))
	if err != nil {
		t.Fatal(err)
	}
	token, _ := jws.CompactSerialize()

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
