package login

import (
	"testing"

	"golang.org/x/oauth2"
)

func TestAuthStyle(t *testing.T) {
	tests := []struct {
		preferred  string
		advertised []string
		want       oauth2.AuthStyle
	}{
		{"", nil, oauth2.AuthStyleInHeader},
		{"", []string{"client_secret_post"}, oauth2.AuthStyleInParams},
		{"", []string{"client_secret_post", "client_secret_basic"}, oauth2.AuthStyleInHeader},
		{"client_secret_post", []string{"client_secret_basic", "client_secret_post"}, oauth2.AuthStyleInParams},
		{"client_secret_post", []string{"client_secret_basic"}, oauth2.AuthStyleInHeader},
		{"", []string{"private_key_jwt"}, oauth2.AuthStyleAutoDetect},
	}
	for _, tt := range tests {
		if got := authStyle(tt.preferred, tt.advertised); got != tt.want {
			t.Errorf("authStyle(%q, %q) = %v, want %v", tt.preferred, tt.advertised, got, tt.want)
		}
	}
}
