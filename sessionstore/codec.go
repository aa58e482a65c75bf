package sessionstore

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sync"
	"time"
)

// Codec is an scs.Codec that writes a session's sid and sub in a small
// header before the values, so stores can index a record without decoding
// it: scs hands stores opaque bytes, and this header is the one thing they
// need to read.
//
// Each value is stored with the name of its type so that it decodes to the
// same Go type. Strings, booleans, ints, float64s, byte slices and
// time.Time are built in; register other types with RegisterType, as one
// would with gob.Register for scs's default codec. A registered type is
// stored in its binary form when it implements encoding.BinaryMarshaler
// (and its pointer encoding.BinaryUnmarshaler), else as JSON. Not gob:
// gob sends and compiles type descriptions anew for every record, and
// decoding the session is paid on every request.
type Codec struct{}

// Record formats, the first byte of a record. Format 1 stored every value
// as JSON; it is still read, so sessions survive an upgrade.
const (
	formatJSON   = 1
	codecVersion = 2
)

// ErrUnreadable is wrapped by every error of Codec.Decode: the record was
// damaged, or written by another codec or by a later version of this one.
// Such a session cannot be used; the app can only start a new one.
var ErrUnreadable = errors.New("sessionstore: unreadable session record")

// valueType encodes and decodes the values of one registered type.
type valueType struct {
	name    string
	typ     reflect.Type
	marshal func(v any) ([]byte, error)
	parse   func(b []byte) (any, error)
}

// types maps type names to types and back, for the built-in types and
// those given to RegisterType.
var types = struct {
	sync.RWMutex
	byName map[string]*valueType
	byType map[reflect.Type]*valueType
}{byName: map[string]*valueType{}, byType: map[reflect.Type]*valueType{}}

func init() {
	for _, vt := range []valueType{
		{"string", reflect.TypeFor[string](),
			func(v any) ([]byte, error) { return []byte(v.(string)), nil },
			func(b []byte) (any, error) { return string(b), nil }},
		{"bytes", reflect.TypeFor[[]byte](),
			func(v any) ([]byte, error) { return v.([]byte), nil },
			func(b []byte) (any, error) { return bytes.Clone(b), nil }},
		{"bool", reflect.TypeFor[bool](),
			func(v any) ([]byte, error) {
				if v.(bool) {
					return []byte{1}, nil
				}
				return []byte{0}, nil
			},
			func(b []byte) (any, error) {
				if len(b) != 1 || b[0] > 1 {
					return nil, ErrUnreadable
				}
				return b[0] == 1, nil
			}},
		{"int", reflect.TypeFor[int](),
			func(v any) ([]byte, error) { return binary.AppendVarint(nil, int64(v.(int))), nil },
			func(b []byte) (any, error) {
				n, err := parseVarint(b)
				return int(n), err
			}},
		{"int64", reflect.TypeFor[int64](),
			func(v any) ([]byte, error) { return binary.AppendVarint(nil, v.(int64)), nil },
			func(b []byte) (any, error) { return parseVarint(b) }},
		{"float64", reflect.TypeFor[float64](),
			func(v any) ([]byte, error) {
				return binary.LittleEndian.AppendUint64(nil, math.Float64bits(v.(float64))), nil
			},
			func(b []byte) (any, error) {
				if len(b) != 8 {
					return nil, ErrUnreadable
				}
				return math.Float64frombits(binary.LittleEndian.Uint64(b)), nil
			}},
	} {
		register(vt)
	}
	RegisterType("time", time.Time{})
}

func parseVarint(b []byte) (int64, error) {
	n, k := binary.Varint(b)
	if k != len(b) || k == 0 {
		return 0, ErrUnreadable
	}
	return n, nil
}

func register(vt valueType) {
	types.Lock()
	defer types.Unlock()
	types.byName[vt.name] = &vt
	types.byType[vt.typ] = &vt
}

// RegisterType lets Codec store values of value's type in sessions under
// name, which must stay the same for as long as records may hold it. A
// struct that embeds a type with MarshalBinary, such as time.Time, has that
// method too, and would be stored as the embedded value alone: give such a
// struct methods of its own, or do not embed.
func RegisterType(name string, value any) {
	t := reflect.TypeOf(value)
	vt := valueType{name: name, typ: t,
		marshal: json.Marshal,
		parse:   func(b []byte) (any, error) { return parseJSON(t, b) },
	}
	if t.Implements(reflect.TypeFor[encoding.BinaryMarshaler]()) &&
		reflect.PointerTo(t).Implements(reflect.TypeFor[encoding.BinaryUnmarshaler]()) {
		vt.marshal = func(v any) ([]byte, error) { return v.(encoding.BinaryMarshaler).MarshalBinary() }
		vt.parse = func(b []byte) (any, error) {
			return newValue(t, func(p any) error { return p.(encoding.BinaryUnmarshaler).UnmarshalBinary(b) })
		}
	}
	register(vt)
}

func parseJSON(t reflect.Type, b []byte) (any, error) {
	return newValue(t, func(p any) error { return json.Unmarshal(b, p) })
}

// newValue returns a value of type t that fill has set through a pointer.
func newValue(t reflect.Type, fill func(p any) error) (any, error) {
	p := reflect.New(t)
	if err := fill(p.Interface()); err != nil {
		return nil, err
	}
	return p.Elem().Interface(), nil
}

// Encode implements scs.Codec. After the header come the deadline (Unix
// nanoseconds, a varint) and, for each value, its key, its type's name and
// its encoding, each preceded by its length (a uvarint).
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
		vt, ok := types.byType[reflect.TypeOf(v)]
		if !ok {
			return nil, fmt.Errorf("sessionstore: type %T of session value %q is not registered", v, k)
		}
		raw, err := vt.marshal(v)
		if err != nil {
			return nil, fmt.Errorf("sessionstore: session value %q: %w", k, err)
		}
		b = appendString(b, k)
		b = appendString(b, vt.name)
		b = appendString(b, raw)
	}
	return b, nil
}

func appendString[S string | []byte](b []byte, s S) []byte {
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
	_, _, body, err := splitHeader(b)
	if err != nil {
		return time.Time{}, nil, err
	}
	ns, k := binary.Varint(body)
	if k <= 0 {
		return time.Time{}, nil, ErrUnreadable
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
			return time.Time{}, nil, ErrUnreadable
		}
		body = rest
		vt, ok := types.byName[string(name)]
		if !ok {
			return time.Time{}, nil, fmt.Errorf("%w: session value %q has unregistered type %q", ErrUnreadable, key, name)
		}
		var v any
		if b[0] == formatJSON {
			v, err = parseJSON(vt.typ, raw)
		} else {
			v, err = vt.parse(raw)
		}
		if err != nil {
			return time.Time{}, nil, fmt.Errorf("%w: session value %q: %w", ErrUnreadable, key, err)
		}
		values[string(key)] = v
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
	sid, sub, rest, err := splitHeader(b)
	if err != nil {
		return Index{}, nil, err
	}
	return Index{SID: string(sid), Subject: string(sub)}, rest, nil
}

func splitHeader(b []byte) (sid, sub, rest []byte, err error) {
	if len(b) == 0 || (b[0] != codecVersion && b[0] != formatJSON) {
		return nil, nil, nil, ErrUnreadable
	}
	sid, rest, ok1 := readBytes(b[1:])
	sub, rest, ok2 := readBytes(rest)
	if !ok1 || !ok2 {
		return nil, nil, nil, ErrUnreadable
	}
	return sid, sub, rest, nil
}
