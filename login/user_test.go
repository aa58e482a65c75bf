package login

import (
	"reflect"
	"testing"
	"time"

	"github.com/gologin/gologin/sessionstore"
)

func TestUserSurvivesTheSessionCodec(t *testing.T) {
	for _, u := range []User{
		{},
		{Subject: "dev|1", Name: "Ada Lovelace", Email: "ada@example.com", Picture: "https://example.com/a.png",
			SID: "sid-1", ClaimsJSON: []byte(`{"sub":"dev|1","name":"Ada Lovelace","groups":["a","b"]}`)},
		{Subject: "ユーザー", Name: "<script>\x00", ClaimsJSON: []byte(`{}`)},
		{Subject: "dev|1", Name: "Ada", ClaimsJSON: []byte(`{}`), Provider: "partner"},
	} {
		b, err := sessionstore.Codec{}.Encode(time.Now(), map[string]any{userKey: u})
		if err != nil {
			t.Fatal(err)
		}
		_, values, err := sessionstore.Codec{}.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if got := values[userKey]; !reflect.DeepEqual(got, u) {
			t.Errorf("decoded %#v, want %#v", got, u)
		}
	}
}

// TestUserOfAnUnnamedProviderKeepsItsForm: sessions written before
// providers had names still decode, and users written now decode in a
// version that predates them, unless they came from a named provider.
func TestUserOfAnUnnamedProviderKeepsItsForm(t *testing.T) {
	before := []byte{userFormat, 1, 's', 1, 'n', 0, 0, 0, 2, '{', '}'}
	got, _ := User{Subject: "s", Name: "n", ClaimsJSON: []byte(`{}`)}.MarshalBinary()
	if string(got) != string(before) {
		t.Errorf("MarshalBinary = %q, want the six-field form %q", got, before)
	}
	named, _ := User{Subject: "s", Provider: "partner"}.MarshalBinary()
	var u User
	if err := u.UnmarshalBinary(named); err != nil || u.Provider != "partner" {
		t.Errorf("a named provider's user decoded to %+v, %v", u, err)
	}
}

func TestUserUnmarshalBinaryRejectsDamagedInput(t *testing.T) {
	good, _ := User{Subject: "s", Name: "n", ClaimsJSON: []byte(`{}`)}.MarshalBinary()
	for name, b := range map[string][]byte{
		"empty":          {},
		"unknown format": append([]byte{userFormat + 1}, good[1:]...),
		"truncated":      good[:len(good)-1],
		"trailing bytes": append(append([]byte{}, good...), 0),
		"huge length":    {userFormat, 0xff, 0xff, 0xff, 0xff, 0x0f},
	} {
		var u User
		if err := u.UnmarshalBinary(b); err == nil {
			t.Errorf("%s: UnmarshalBinary succeeded with %#v", name, u)
		}
	}
}
