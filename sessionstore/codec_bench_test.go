package sessionstore_test

import (
	"encoding/binary"
	"encoding/json"
	"testing"
	"time"

	"github.com/gologin/gologin/login"
	"github.com/gologin/gologin/sessionstore"
)

// BenchmarkCodec weighs the record format Codec writes (format 2: strings,
// times and login.User in binary) against the simpler one it replaced and
// still reads (format 1: every value as JSON), side by side in one run, on
// the session a signed-in user's every request decodes. Decode is what a
// page view pays; Encode is paid when a request changes the session.
//
//	go test ./sessionstore -run '^$' -bench Codec -benchmem -count 6
func BenchmarkCodec(b *testing.B) {
	now := time.Now()
	claims := []byte(`{"aud":"webapp","auth_time":1764759600,"email":"ada@example.com","email_verified":true,` +
		`"exp":1764763200,"iat":1764759600,"iss":"http://localhost:3000/devidp","name":"Ada Lovelace",` +
		`"nonce":"Q2NWRMKZ4V2B5JXH7TQY3CSN4A","picture":"https://www.gravatar.com/avatar/0?d=identicon",` +
		`"sid":"6J3Q4MZKX7W2NRYD5B8TCAVHGE","sub":"dev|ada@example.com"}`)
	values := map[string]any{
		"login.user": login.User{Subject: "dev|ada@example.com", Name: "Ada Lovelace", Email: "ada@example.com",
			Picture: "https://www.gravatar.com/avatar/0?d=identicon", SID: "6J3Q4MZKX7W2NRYD5B8TCAVHGE", ClaimsJSON: claims},
		"login.csrf":            "H5J2K7M4N6P3Q8R2S5T7V4W6X3",
		"login.since":           now,
		"login.seen":            now,
		sessionstore.SIDKey:     "6J3Q4MZKX7W2NRYD5B8TCAVHGE",
		sessionstore.SubjectKey: "dev|ada@example.com",
	}
	deadline := now.Add(24 * time.Hour)
	formats := []struct {
		name   string
		encode func() ([]byte, error)
	}{
		{"binary", func() ([]byte, error) { return sessionstore.Codec{}.Encode(deadline, values) }},
		{"json", func() ([]byte, error) { return encodeJSON(deadline, values) }},
	}
	for _, f := range formats {
		record, err := f.encode()
		if err != nil {
			b.Fatal(err)
		}
		if _, got, err := (sessionstore.Codec{}).Decode(record); err != nil || got["login.user"].(login.User).Email != "ada@example.com" {
			b.Fatalf("%s record does not decode: %v", f.name, err)
		}
		b.Run("decode/"+f.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := (sessionstore.Codec{}).Decode(record); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(record)), "record-B")
		})
		b.Run("encode/"+f.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.encode(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// encodeJSON writes values in format 1, as Codec did before its binary
// values: the same header, then every value as JSON under its type's name.
func encodeJSON(deadline time.Time, values map[string]any) ([]byte, error) {
	appendString := func(b []byte, s []byte) []byte {
		return append(binary.AppendUvarint(b, uint64(len(s))), s...)
	}
	sid, _ := values[sessionstore.SIDKey].(string)
	sub, _ := values[sessionstore.SubjectKey].(string)
	b := []byte{1}
	b = appendString(b, []byte(sid))
	b = appendString(b, []byte(sub))
	b = binary.AppendVarint(b, deadline.UnixNano())
	for k, v := range values {
		name := map[bool]string{true: "time", false: "string"}[isTime(v)]
		if _, ok := v.(login.User); ok {
			name = "login.User"
		}
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		b = appendString(b, []byte(k))
		b = appendString(b, []byte(name))
		b = appendString(b, raw)
	}
	return b, nil
}

func isTime(v any) bool { _, ok := v.(time.Time); return ok }
