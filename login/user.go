package login

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
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
	// Provider is the Config.Name of the Auth the user signed in with.
	Provider string
}

// Claims returns the user's claims decoded.
func (u User) Claims() map[string]any {
	var m map[string]any
	json.Unmarshal(u.ClaimsJSON, &m)
	return m
}

// userFormat is the first byte of a User's binary form.
const userFormat = 1

// MarshalBinary implements encoding.BinaryMarshaler. Sessions store the
// user in this form: it is read on every request, and decodes several
// times faster than JSON. Provider, when set, is a seventh field, so a
// user of an unnamed provider has the form it had before providers had
// names.
func (u User) MarshalBinary() ([]byte, error) {
	fields := []string{u.Subject, u.Name, u.Email, u.Picture, u.SID, string(u.ClaimsJSON)}
	if u.Provider != "" {
		fields = append(fields, u.Provider)
	}
	n := 1
	for _, f := range fields {
		n += binary.MaxVarintLen16 + len(f)
	}
	b := make([]byte, 1, n)
	b[0] = userFormat
	for _, f := range fields {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b, nil
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler.
func (u *User) UnmarshalBinary(b []byte) error {
	if len(b) == 0 || b[0] != userFormat {
		return errors.New("login: unknown encoding of a user")
	}
	b = b[1:]
	var fields [7][]byte
	n := 0
	for ; n < len(fields) && (n < 6 || len(b) > 0); n++ {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return errors.New("login: truncated user")
		}
		fields[n], b = b[k:k+int(l)], b[k+int(l):]
	}
	// An empty seventh field is never written: it is a stray byte.
	if len(b) != 0 || (n == 7 && len(fields[6]) == 0) {
		return errors.New("login: trailing bytes after a user")
	}
	*u = User{Subject: string(fields[0]), Name: string(fields[1]), Email: string(fields[2]),
		Picture: string(fields[3]), SID: string(fields[4]), Provider: string(fields[6])}
	if len(fields[5]) > 0 {
		u.ClaimsJSON = bytes.Clone(fields[5])
	}
	return nil
}

// tokens are the user's tokens; they stay server-side in the session and
// are never shown on pages or written to logs.
type tokens struct {
	IDToken      string
	AccessToken  string
	RefreshToken string
	Expiry       time.Time
	// TokenType is the token response's token_type: Bearer or DPoP.
	TokenType string `json:",omitempty"`
	// DPoPKey is the session's DPoP private key (PKCS #8) when the tokens
	// are bound to it.
	DPoPKey []byte `json:",omitempty"`
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
