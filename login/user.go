package login

import (
	"encoding/json"
	"time"

	"github.com/gologin/gologin/sessionstore"
)

// User is the signed-in user, as the provider described them.
type User struct {
	// Subject is the provider's identifier for the user (the sub claim).
	Subject string
	// Name is a name to greet the user by: the name claim, else nickname,
	// preferred_username, email, and finally sub.
	Name    string
	Email   string
	Picture string
	// SID is the provider's session ID (sid claim), when it sends one.
	SID string
	// ClaimsJSON holds every claim of the ID token and userinfo, as JSON.
	ClaimsJSON json.RawMessage
}

// Claims returns the user's claims decoded.
func (u User) Claims() map[string]any {
	var m map[string]any
	json.Unmarshal(u.ClaimsJSON, &m)
	return m
}

// tokens are the user's tokens; they stay server-side in the session and
// are never shown on pages or written to logs.
type tokens struct {
	IDToken      string
	AccessToken  string
	RefreshToken string
	Expiry       time.Time
}

const (
	userKey   = "login.user"
	tokensKey = "login.tokens"
	csrfKey   = "login.csrf"
	sinceKey  = "login.since" // when the user signed in
	seenKey   = "login.seen"  // the user's last request, to a minute
)

func init() {
	sessionstore.RegisterType("login.User", User{})
	sessionstore.RegisterType("login.tokens", tokens{})
}

// newUser builds a User from merged claims.
func newUser(claims map[string]any, raw []byte) User {
	str := func(k string) string { s, _ := claims[k].(string); return s }
	u := User{Subject: str("sub"), Email: str("email"), Picture: str("picture"), SID: str("sid"), ClaimsJSON: raw}
	for _, k := range []string{"name", "nickname", "preferred_username", "email", "sub"} {
		if u.Name = str(k); u.Name != "" {
			break
		}
	}
	return u
}
