package sessionstore

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"
)

// Codec is an scs.Codec that writes a session's sid and sub in a small
// header before the values, so stores can index a record without decoding
// it: scs hands stores opaque bytes, and this header is the one thing they
// need to read.
//
// The values are JSON, each with the name of its type so that it decodes to
// the same Go type: strings, booleans, ints, float64s, byte slices and
// time.Time are built in; register other types with RegisterType, as one
// would with gob.Register for scs's default codec. JSON rather than gob
// because gob sends and compiles type descriptions anew for every record,
// which made decoding the largest cost of a signed-in page view.
type Codec struct{}

// codecVersion, the first byte of a record, names its format.
const codecVersion = 1

var errBadRecord = errors.New("sessionstore: malformed session record")

// types maps type names to types and back, for the built-in types and
// those given to RegisterType.
var types = struct {
	sync.RWMutex
	byName map[string]reflect.Type
	byType map[reflect.Type]string
}{byName: map[string]reflect.Type{}, byType: map[reflect.Type]string{}}

func init() {
	for name, v := range map[string]any{
		"string": "", "bool": false, "int": 0, "int64": int64(0), "float64": 0.0, "bytes": []byte(nil), "time": time.Time{},
	} {
		RegisterType(name, v)
	}
}

// RegisterType lets Codec store values of value's type in sessions under
// name, which must stay the same for as long as records may hold it.
func RegisterType(name string, value any) {
	t := reflect.TypeOf(value)
	types.Lock()
	defer types.Unlock()
	types.byName[name] = t
	types.byType[t] = name
}

// Encode implements scs.Codec. After the header come the deadline (Unix
// nanoseconds, a varint) and, for each value, its key, its type's name and
// its JSON, each preceded by its length (a uvarint). The framing is ours
// so that decoding parses each value's JSON once, and no enclosing
// document.
func (Codec) Encode(deadline time.Time, values map[string]any) ([]byte, error) {
	sid, _ := values[SIDKey].(string)
	sub, _ := values[SubjectKey].(string)
	b := make([]byte, 0, 512)
	b = append(b, codecVersion)
	b = appendString(b, sid)
	b = appendString(b, sub)
	b = binary.AppendVarint(b, deadline.UnixNano())
	types.RLock()
	defer types.RUnlock()
	for k, v := range values {
		name, ok := types.byType[reflect.TypeOf(v)]
		if !ok {
			return nil, fmt.Errorf("sessionstore: type %T of session value %q is not registered", v, k)
		}
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("sessionstore: session value %q: %w", k, err)
		}
		b = appendString(b, k)
		b = appendString(b, name)
		b = appendString(b, string(raw))
	}
	return b, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// readBytes reads a length-prefixed field from b and returns it and the rest.
func readBytes(b []byte) ([]byte, []byte, bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, false
	}
	return b[k : k+int(n)], b[k+int(n):], true
}

// Decode implements scs.Codec.
func (Codec) Decode(b []byte) (time.Time, map[string]any, error) {
	_, body, err := ParseIndex(b)
	if err != nil {
		return time.Time{}, nil, err
	}
	ns, k := binary.Varint(body)
	if k <= 0 {
		return time.Time{}, nil, errBadRecord
	}
	body = body[k:]
	values := make(map[string]any, 8)
	types.RLock()
	defer types.RUnlock()
	for len(body) > 0 {
		key, rest, ok1 := readBytes(body)
		name, rest, ok2 := readBytes(rest)
		raw, rest, ok3 := readBytes(rest)
		if !ok1 || !ok2 || !ok3 {
			return time.Time{}, nil, errBadRecord
		}
		body = rest
		t, ok := types.byName[string(name)]
		if !ok {
			return time.Time{}, nil, fmt.Errorf("sessionstore: session value %q has unregistered type %q", key, name)
		}
		p := reflect.New(t)
		if err := json.Unmarshal(raw, p.Interface()); err != nil {
			return time.Time{}, nil, fmt.Errorf("sessionstore: session value %q: %w", key, err)
		}
		values[string(key)] = p.Elem().Interface()
	}
	return time.Unix(0, ns), values, nil
}

// Index is what a store indexes a session record by.
type Index struct {
	SID     string
	Subject string
}

// ParseIndex reads the header Codec wrote and returns it with the rest of
// the record.
func ParseIndex(b []byte) (Index, []byte, error) {
	if len(b) == 0 || b[0] != codecVersion {
		return Index{}, nil, errBadRecord
	}
	b = b[1:]
	var idx Index
	for _, dst := range []*string{&idx.SID, &idx.Subject} {
		field, rest, ok := readBytes(b)
		if !ok {
			return Index{}, nil, errBadRecord
		}
		*dst, b = string(field), rest
	}
	return idx, b, nil
}
