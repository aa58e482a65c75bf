package sessionstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
)

// record encodes a session the way an scs manager with Codec{} would, so
// the index header is real. (storetest has the same helpers for other
// packages; this package's own tests cannot import it.)
func record(t *testing.T, sid, sub string, deadline time.Time) []byte {
	t.Helper()
	values := map[string]any{"other": 1}
	if sid != "" {
		values[SIDKey] = sid
	}
	if sub != "" {
		values[SubjectKey] = sub
	}
	b, err := Codec{}.Encode(deadline, values)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return b
}

// TestMemoryPurgeDropsExpiredTombstones checks that the purge drops a
// tombstone once, and only once, it has expired.
func TestMemoryPurgeDropsExpiredTombstones(t *testing.T) {
	ctx := context.Background()
	b := record(t, "sid-1", "user-1", time.Now().Add(time.Hour))
	m := NewMemory()
	defer m.Close()
	tombstones := func() int {
		m.mu.RLock()
		defer m.mu.RUnlock()
		return len(m.revoked)
	}
	found := func() bool {
		_, ok, _ := m.FindCtx(ctx, "tok")
		return ok
	}
	m.CommitCtx(ctx, "tok", b, time.Now().Add(time.Hour))
	m.DeleteCtx(ctx, "tok")
	// Purged while it lasts, the tombstone stays and still blocks.
	m.purge(time.Now())
	m.CommitCtx(ctx, "tok", b, time.Now().Add(time.Hour))
	if n := tombstones(); n != 1 || found() {
		t.Fatalf("after an early purge: %d tombstones, session found %v; want 1 and not found", n, found())
	}
	// Purged once expired, it is gone, and the token commits again.
	m.purge(time.Now().Add(RevokedFor + time.Second))
	m.CommitCtx(ctx, "tok", b, time.Now().Add(time.Hour))
	if n := tombstones(); n != 0 || !found() {
		t.Fatalf("after a late purge: %d tombstones, session found %v; want 0 and found", n, found())
	}
}

func TestCodecRoundTrip(t *testing.T) {
	deadline := time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC)
	tests := []struct {
		name   string
		values map[string]any
		want   Index
	}{
		{"sid and sub", map[string]any{SIDKey: "sid-1", SubjectKey: "user-1", "other": 1}, Index{"sid-1", "user-1"}},
		{"neither", map[string]any{"other": 1}, Index{}},
		{"only sub", map[string]any{SubjectKey: "user-1"}, Index{Subject: "user-1"}},
		{"long and non-ASCII", map[string]any{SIDKey: strings.Repeat("s", 300), SubjectKey: "ユーザー|1"},
			Index{strings.Repeat("s", 300), "ユーザー|1"}},
		{"non-string sid is not indexed", map[string]any{SIDKey: 42, SubjectKey: "user-1"}, Index{Subject: "user-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Codec{}.Encode(deadline, tt.values)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			idx, _, err := ParseIndex(b)
			if err != nil || idx != tt.want {
				t.Fatalf("ParseIndex = %+v, %v; want %+v", idx, err, tt.want)
			}
			gotDeadline, gotValues, err := Codec{}.Decode(b)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !gotDeadline.Equal(deadline) {
				t.Errorf("deadline = %v, want %v", gotDeadline, deadline)
			}
			if !reflect.DeepEqual(gotValues, tt.values) {
				t.Errorf("values = %#v, want %#v", gotValues, tt.values)
			}
		})
	}
}

func TestCodecDecodeRejectsForeignRecords(t *testing.T) {
	gob, err := scs.GobCodec{}.Encode(time.Now(), map[string]any{"a": 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{nil, {}, []byte("garbage"), gob} {
		if _, _, err := (Codec{}).Decode(b); err == nil {
			t.Errorf("Decode(%q) succeeded, want an error", b)
		}
	}
}

// header builds a canonical index header by hand.
func header(sid, sub string) []byte {
	b := []byte{codecVersion}
	b = binary.AppendUvarint(b, uint64(len(sid)))
	b = append(b, sid...)
	b = binary.AppendUvarint(b, uint64(len(sub)))
	return append(b, sub...)
}

func TestParseIndex(t *testing.T) {
	maxUvarint := binary.AppendUvarint(nil, ^uint64(0))
	tests := []struct {
		name     string
		in       []byte
		wantErr  bool
		wantIdx  Index
		wantRest string
	}{
		{name: "nil", in: nil, wantErr: true},
		{name: "empty", in: []byte{}, wantErr: true},
		{name: "unknown version", in: append([]byte{codecVersion + 1}, header("a", "b")[1:]...), wantErr: true},
		{name: "version zero", in: []byte{0, 0, 0}, wantErr: true},
		{name: "version only", in: []byte{codecVersion}, wantErr: true},
		{name: "sid truncated", in: []byte{codecVersion, 5, 'a', 'b'}, wantErr: true},
		{name: "sid one byte short", in: []byte{codecVersion, 2, 'a'}, wantErr: true},
		{name: "sub length missing", in: []byte{codecVersion, 1, 'a'}, wantErr: true},
		{name: "sub truncated", in: []byte{codecVersion, 0, 3, 'x'}, wantErr: true},
		{name: "sub one byte short", in: []byte{codecVersion, 0, 2, 'x'}, wantErr: true},
		{name: "unterminated varint", in: []byte{codecVersion, 0x80, 0x80}, wantErr: true},
		{name: "overflowing varint", in: append([]byte{codecVersion}, bytes.Repeat([]byte{0xff}, 11)...), wantErr: true},
		{name: "length of max uint64", in: append(append([]byte{codecVersion}, maxUvarint...), 'a'), wantErr: true},
		{name: "sub length of max uint64", in: append(append([]byte{codecVersion, 0}, maxUvarint...), 'a'), wantErr: true},
		{name: "text", in: []byte("hello, world"), wantErr: true},
		{name: "minimal", in: []byte{codecVersion, 0, 0}, wantIdx: Index{}},
		{name: "header and rest", in: append(header("sid", "sub"), "rest"...), wantIdx: Index{"sid", "sub"}, wantRest: "rest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			idx, rest, err := ParseIndex(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseIndex(%x) = %+v, %q, nil; want an error", tt.in, idx, rest)
				}
				if idx != (Index{}) || rest != nil {
					t.Errorf("ParseIndex(%x) returned %+v, %q with its error; want zero values", tt.in, idx, rest)
				}
				return
			}
			if err != nil || idx != tt.wantIdx || string(rest) != tt.wantRest {
				t.Fatalf("ParseIndex(%x) = %+v, %q, %v; want %+v, %q, nil", tt.in, idx, rest, err, tt.wantIdx, tt.wantRest)
			}
		})
	}
}

func FuzzParseIndex(f *testing.F) {
	rec, err := Codec{}.Encode(time.Unix(1e9, 0), map[string]any{SIDKey: "sid-1", SubjectKey: "user-1", "other": 1})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(rec)
	f.Add(rec[:5])
	f.Add(rec[:len(header("sid-1", "user-1"))])
	f.Add(header("", ""))
	f.Add(header(strings.Repeat("x", 200), "y"))
	f.Add([]byte{})
	f.Add([]byte{codecVersion})
	f.Add([]byte{codecVersion, 0x80, 0x80})
	f.Add(append([]byte{codecVersion}, bytes.Repeat([]byte{0xff}, 11)...))
	f.Add([]byte("garbage"))
	f.Add(format1("sid-1", "user-1", time.Unix(1e9, 0), "other", "int", "1"))
	f.Fuzz(func(t *testing.T, in []byte) {
		idx, rest, err := ParseIndex(in)
		if err != nil {
			if idx != (Index{}) || rest != nil {
				t.Fatalf("rejected input returned %+v, %q", idx, rest)
			}
			return
		}
		// An accepted record has a known format byte, two lengths and both
		// strings before the rest, which is the input's tail.
		if in[0] != codecVersion && in[0] != formatJSON {
			t.Fatalf("accepted version %d", in[0])
		}
		if head := len(in) - len(rest); head < 3+len(idx.SID)+len(idx.Subject) {
			t.Fatalf("header of %d bytes cannot hold sid %q and sub %q", head, idx.SID, idx.Subject)
		}
		if !bytes.HasSuffix(in, rest) {
			t.Fatalf("rest %q is not the tail of the input", rest)
		}
		// Rewriting the header canonically keeps what it says.
		idx2, rest2, err := ParseIndex(append(header(idx.SID, idx.Subject), rest...))
		if err != nil || idx2 != idx || !bytes.Equal(rest2, rest) {
			t.Fatalf("re-encoded header parses as %+v, %q, %v; want %+v, %q", idx2, rest2, err, idx, rest)
		}
	})
}

// blockingStore is a store whose FindCtx hangs until its context is done.
type blockingStore struct{ *Memory }

func (blockingStore) FindCtx(ctx context.Context, _ string) ([]byte, bool, error) {
	select {
	case <-ctx.Done():
		return nil, false, ctx.Err()
	case <-time.After(10 * time.Second): // only if WithTimeout never cancels
		return nil, false, errors.New("blockingStore: context was never cancelled")
	}
}

func TestWithTimeoutBoundsStuckStore(t *testing.T) {
	s := WithTimeout(blockingStore{NewMemory()}, 50*time.Millisecond)
	t.Cleanup(func() { s.Close() })
	finds := []struct {
		name string
		find func() ([]byte, bool, error)
	}{
		{"FindCtx", func() ([]byte, bool, error) { return s.FindCtx(context.Background(), "tok") }},
		{"Find", func() ([]byte, bool, error) { return s.Find("tok") }},
	}
	for _, tt := range finds {
		t.Run(tt.name, func(t *testing.T) {
			_, ok, err := tt.find()
			if ok || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("%s = found %v, err %v; want an error wrapping context.DeadlineExceeded", tt.name, ok, err)
			}
		})
	}
}

func TestCodecRefusesUnknownTypes(t *testing.T) {
	type unregistered struct{ A int }
	if _, err := (Codec{}).Encode(time.Now(), map[string]any{"x": unregistered{1}}); err == nil {
		t.Fatal("Encode of an unregistered type succeeded")
	}
}
