package sessionstore

import (
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
	"time"
)

// jsonValue is stored as JSON: it has no binary form.
type jsonValue struct {
	Name  string
	Count int
}

// binaryValue is stored in its own binary form.
type binaryValue struct{ S string }

func (v binaryValue) MarshalBinary() ([]byte, error) { return append([]byte{'!'}, v.S...), nil }

func (v *binaryValue) UnmarshalBinary(b []byte) error {
	if len(b) == 0 || b[0] != '!' {
		return errors.New("not a binaryValue")
	}
	v.S = string(b[1:])
	return nil
}

func init() {
	RegisterType("sessionstore.jsonValue", jsonValue{})
	RegisterType("sessionstore.binaryValue", binaryValue{})
}

func TestCodecRoundTripsEveryKindOfValue(t *testing.T) {
	values := map[string]any{
		"string": "héllo", "empty": "", "bytes": []byte{0, 1, 255}, "true": true, "false": false,
		"int": -42, "int64": int64(1) << 62, "float": 3.25, "time": time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC),
		"json": jsonValue{"a", 2}, "binary": binaryValue{"b"},
	}
	deadline := time.Date(2031, 1, 1, 0, 0, 0, 7, time.UTC)
	b, err := Codec{}.Encode(deadline, values)
	if err != nil {
		t.Fatal(err)
	}
	gotDeadline, got, err := Codec{}.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !gotDeadline.Equal(deadline) {
		t.Errorf("deadline = %v, want %v", gotDeadline, deadline)
	}
	if !reflect.DeepEqual(got, values) {
		t.Errorf("decoded %#v\nwant %#v", got, values)
	}
}

// format1 builds a record in format 1, where every value was JSON.
func format1(sid, sub string, deadline time.Time, kv ...string) []byte {
	b := header(sid, sub)
	b[0] = formatJSON
	b = binary.AppendVarint(b, deadline.UnixNano())
	for _, s := range kv {
		b = appendString(b, s)
	}
	return b
}

func TestCodecReadsFormat1Records(t *testing.T) {
	deadline := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	b := format1("sid-1", "user-1", deadline,
		SIDKey, "string", `"sid-1"`,
		SubjectKey, "string", `"user-1"`,
		"count", "int", `3`,
		"since", "time", `"2030-01-02T03:04:05Z"`,
		"binary", "sessionstore.binaryValue", `{"S":"b"}`,
	)
	idx, _, err := ParseIndex(b)
	if err != nil || idx != (Index{"sid-1", "user-1"}) {
		t.Fatalf("ParseIndex = %+v, %v", idx, err)
	}
	gotDeadline, got, err := Codec{}.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{SIDKey: "sid-1", SubjectKey: "user-1", "count": 3,
		"since": time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), "binary": binaryValue{"b"}}
	if !gotDeadline.Equal(deadline) || !reflect.DeepEqual(got, want) {
		t.Errorf("Decode = %v, %#v; want %v, %#v", gotDeadline, got, deadline, want)
	}
}

func TestCodecRejectsMalformedValues(t *testing.T) {
	for _, tt := range []struct{ name, typ, payload string }{
		{"bool of two bytes", "bool", "\x01\x01"},
		{"bool of 2", "bool", "\x02"},
		{"empty int", "int", ""},
		{"int with trailing bytes", "int", "\x02\x00"},
		{"short float", "float64", "\x00\x00"},
		{"bad time", "time", "\x00"},
		{"bad JSON", "sessionstore.jsonValue", "{"},
		{"bad binary", "sessionstore.binaryValue", "?"},
		{"unregistered type", "nope", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := binary.AppendVarint(header("", ""), 0)
			b = appendString(appendString(appendString(b, "k"), tt.typ), tt.payload)
			if _, _, err := (Codec{}).Decode(b); err == nil {
				t.Fatal("Decode succeeded, want an error")
			}
		})
	}
}
