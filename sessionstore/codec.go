package sessionstore

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/alexedwards/scs/v2"
)

// Codec is an scs.Codec that writes a session's sid and sub in a small
// header before scs's gob encoding, so stores can index a record without
// decoding it. scs hands stores opaque bytes; this header is the one thing
// they need to read.
type Codec struct{}

const codecVersion = 1

var errBadRecord = errors.New("sessionstore: malformed session record")

// Encode implements scs.Codec.
func (Codec) Encode(deadline time.Time, values map[string]any) ([]byte, error) {
	body, err := scs.GobCodec{}.Encode(deadline, values)
	if err != nil {
		return nil, err
	}
	sid, _ := values[SIDKey].(string)
	sub, _ := values[SubjectKey].(string)
	b := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(sid)+len(sub)+len(body))
	b = append(b, codecVersion)
	b = binary.AppendUvarint(b, uint64(len(sid)))
	b = append(b, sid...)
	b = binary.AppendUvarint(b, uint64(len(sub)))
	b = append(b, sub...)
	return append(b, body...), nil
}

// Decode implements scs.Codec.
func (Codec) Decode(b []byte) (time.Time, map[string]any, error) {
	_, body, err := ParseIndex(b)
	if err != nil {
		return time.Time{}, nil, err
	}
	return scs.GobCodec{}.Decode(body)
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
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return Index{}, nil, errBadRecord
		}
		*dst = string(b[k : k+int(n)])
		b = b[k+int(n):]
	}
	return idx, b, nil
}
