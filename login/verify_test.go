package login

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/gologin/gologin/devidp/devidptest"
	"github.com/gologin/gologin/sessionstore"
)

// TestIDTokenChecks covers the checks go-oidc leaves to its callers, on
// tokens the provider signs: max_age against auth_time, azp.
func TestIDTokenChecks(t *testing.T) {
	_, idp := devidptest.NewServer(t)
	now := time.Now().Truncate(time.Second)
	sm := scs.New()
	sm.Store = sessionstore.NewMemory()
	sm.Codec = sessionstore.Codec{}
	a, err := New(Config{Issuer: idp.Issuer(), ClientID: "app", RedirectURL: "http://app.test/callback", Sessions: sm,
		ClockSkew: time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	d, err := a.provider.get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ago := func(d time.Duration) int64 { return now.Add(-d).Unix() }
	plain := transaction{Nonce: "n"}
	maxAge := transaction{Nonce: "n", MaxAge: 300, CheckMaxAge: true}
	tests := []struct {
		name  string
		edit  map[string]any // claims added to a valid token's
		tx    transaction
		error string // "": accepted
	}{
		{"valid", nil, plain, ""},
		{"max_age, recent sign-in", map[string]any{"auth_time": ago(299 * time.Second)}, maxAge, ""},
		{"max_age, fractional auth_time", map[string]any{"auth_time": float64(ago(10*time.Second)) + 0.5}, maxAge, ""},
		{"max_age, stale sign-in within skew", map[string]any{"auth_time": ago(330 * time.Second)}, maxAge, ""},
		{"max_age, stale sign-in", map[string]any{"auth_time": ago(10 * time.Minute)}, maxAge, "older than max_age"},
		{"max_age, no auth_time", nil, maxAge, "missing or older than max_age"},
		{"auth_time in the future", map[string]any{"auth_time": now.Add(time.Hour).Unix()}, maxAge, "not a time in the past"},
		{"auth_time in the future, without max_age", map[string]any{"auth_time": now.Add(time.Hour).Unix()}, plain, "not a time in the past"},
		{"auth_time zero", map[string]any{"auth_time": 0}, plain, "not a time in the past"},
		{"auth_time huge", map[string]any{"auth_time": 1e300}, maxAge, "not a time in the past"},
		{"auth_time a string", map[string]any{"auth_time": "yesterday"}, plain, "not a time in the past"},
		{"azp of this client", map[string]any{"azp": "app", "aud": []string{"app", "api"}}, plain, ""},
		{"azp of another client", map[string]any{"azp": "other"}, plain, "azp is not this client"},
		{"two audiences, no azp", map[string]any{"aud": []string{"app", "api"}}, plain, "azp is not this client"},
		{"azp not a string", map[string]any{"azp": 7}, plain, "azp is not a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims := map[string]any{"iss": idp.Issuer(), "aud": "app", "sub": "u1", "nonce": "n",
				"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
			for k, v := range tt.edit {
				claims[k] = v
			}
			raw, err := idp.Sign(claims)
			if err != nil {
				t.Fatal(err)
			}
			_, got, err := a.verifyIDToken(context.Background(), d, raw, tt.tx)
			switch {
			case tt.error == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.error == "" && got["sub"] != "u1":
				t.Fatalf("claims %v, want sub u1", got)
			case tt.error != "" && (err == nil || !strings.Contains(err.Error(), tt.error)):
				t.Fatalf("got error %v, want one with %q", err, tt.error)
			}
		})
	}
}
