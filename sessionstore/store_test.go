package sessionstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
)

// storeCase opens a fresh, empty store for one test.
type storeCase struct {
	name string
	open func(t *testing.T) Store
}

// stores lists every Store implementation; the behaviour table runs against
// each. Add new stores here.
func stores(t *testing.T) []storeCase {
	t.Helper()
	return []storeCase{
		{"memory", func(t *testing.T) Store {
			s := NewMemory()
			t.Cleanup(func() { s.Close() })
			return s
		}},
		{"sqlite", func(t *testing.T) Store {
			s, err := OpenSQLite(filepath.Join(t.TempDir(), "sessions.db"))
			if err != nil {
				t.Fatalf("OpenSQLite: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}},
	}
}

// record encodes a session the way an scs manager with Codec{} would, so
// the index header is real.
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

func commit(t *testing.T, s Store, token string, b []byte) {
	t.Helper()
	if err := s.CommitCtx(context.Background(), token, b, time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("CommitCtx(%q): %v", token, err)
	}
}

func mustFind(t *testing.T, s Store, token string, want []byte) {
	t.Helper()
	got, ok, err := s.FindCtx(context.Background(), token)
	if err != nil || !ok {
		t.Fatalf("FindCtx(%q) = found %v, err %v; want found", token, ok, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("FindCtx(%q) returned different bytes than committed", token)
	}
}

func mustNotFind(t *testing.T, s Store, token string) {
	t.Helper()
	got, ok, err := s.FindCtx(context.Background(), token)
	if err != nil || ok || got != nil {
		t.Fatalf("FindCtx(%q) = %q, found %v, err %v; want not found", token, got, ok, err)
	}
}

func wantDeleted(t *testing.T, what string, n int, err error, want int) {
	t.Helper()
	if err != nil || n != want {
		t.Fatalf("%s = %d, %v; want %d, nil", what, n, err, want)
	}
}

func TestStores(t *testing.T) {
	ctx := context.Background()
	later := time.Now().Add(time.Hour)
	behaviours := []struct {
		name string
		run  func(t *testing.T, s Store)
	}{
		{"commit then find returns the bytes", func(t *testing.T, s Store) {
			b := record(t, "sid-1", "user-1", later)
			commit(t, s, "tok", b)
			mustFind(t, s, "tok", b)
			// The scs.Store methods see the same record.
			got, ok, err := s.Find("tok")
			if err != nil || !ok || !bytes.Equal(got, b) {
				t.Fatalf("Find = found %v, err %v; want the committed bytes", ok, err)
			}
		}},
		{"find of an unknown token is not found", func(t *testing.T, s Store) {
			commit(t, s, "tok", record(t, "sid-1", "user-1", later))
			mustNotFind(t, s, "other-token")
			mustNotFind(t, s, "")
		}},
		{"expired record is not found", func(t *testing.T, s Store) {
			if err := s.CommitCtx(ctx, "tok", record(t, "sid-1", "user-1", later), time.Now().Add(-time.Minute)); err != nil {
				t.Fatal(err)
			}
			mustNotFind(t, s, "tok")
		}},
		{"commit twice overwrites data and index", func(t *testing.T, s Store) {
			commit(t, s, "tok", record(t, "sid-old", "user-old", later))
			b := record(t, "sid-new", "user-new", later)
			commit(t, s, "tok", b)
			mustFind(t, s, "tok", b)

			n, err := s.DeleteBySubject(ctx, "user-old")
			wantDeleted(t, "DeleteBySubject(old sub)", n, err, 0)
			n, err = s.DeleteBySID(ctx, "sid-old")
			wantDeleted(t, "DeleteBySID(old sid)", n, err, 0)
			mustFind(t, s, "tok", b)

			n, err = s.DeleteBySubject(ctx, "user-new")
			wantDeleted(t, "DeleteBySubject(new sub)", n, err, 1)
			mustNotFind(t, s, "tok")
		}},
		{"recommit with a later expiry revives an expired token", func(t *testing.T, s Store) {
			b := record(t, "sid-1", "user-1", later)
			if err := s.CommitCtx(ctx, "tok", b, time.Now().Add(-time.Minute)); err != nil {
				t.Fatal(err)
			}
			commit(t, s, "tok", b)
			mustFind(t, s, "tok", b)
		}},
		{"delete removes", func(t *testing.T, s Store) {
			commit(t, s, "tok", record(t, "sid-1", "user-1", later))
			keep := record(t, "sid-2", "user-2", later)
			commit(t, s, "keep", keep)
			if err := s.DeleteCtx(ctx, "tok"); err != nil {
				t.Fatalf("DeleteCtx: %v", err)
			}
			mustNotFind(t, s, "tok")
			mustFind(t, s, "keep", keep)
			// The deleted session is out of the indexes too.
			n, err := s.DeleteBySID(ctx, "sid-1")
			wantDeleted(t, "DeleteBySID after Delete", n, err, 0)
			if err := s.DeleteCtx(ctx, "never-existed"); err != nil {
				t.Fatalf("DeleteCtx(unknown) = %v, want nil", err)
			}
		}},
		{"DeleteBySID deletes exactly that sid's sessions", func(t *testing.T, s Store) {
			recs := map[string][]byte{
				"a1":    record(t, "sid-a", "user-1", later),
				"a2":    record(t, "sid-a", "user-2", later),
				"b1":    record(t, "sid-b", "user-1", later),
				"nosid": record(t, "", "user-1", later),
			}
			for tok, b := range recs {
				commit(t, s, tok, b)
			}
			n, err := s.DeleteBySID(ctx, "sid-a")
			wantDeleted(t, "DeleteBySID(sid-a)", n, err, 2)
			mustNotFind(t, s, "a1")
			mustNotFind(t, s, "a2")
			mustFind(t, s, "b1", recs["b1"])
			mustFind(t, s, "nosid", recs["nosid"])
			n, err = s.DeleteBySID(ctx, "sid-a")
			wantDeleted(t, "DeleteBySID(sid-a) again", n, err, 0)
			n, err = s.DeleteBySID(ctx, "sid-unknown")
			wantDeleted(t, "DeleteBySID(unknown)", n, err, 0)
		}},
		{"DeleteBySubject deletes exactly that user's sessions", func(t *testing.T, s Store) {
			recs := map[string][]byte{
				"u1a":   record(t, "sid-a", "user-1", later),
				"u1b":   record(t, "sid-b", "user-1", later),
				"u2":    record(t, "sid-a", "user-2", later),
				"nosub": record(t, "sid-a", "", later),
			}
			for tok, b := range recs {
				commit(t, s, tok, b)
			}
			n, err := s.DeleteBySubject(ctx, "user-1")
			wantDeleted(t, "DeleteBySubject(user-1)", n, err, 2)
			mustNotFind(t, s, "u1a")
			mustNotFind(t, s, "u1b")
			mustFind(t, s, "u2", recs["u2"])
			mustFind(t, s, "nosub", recs["nosub"])
			n, err = s.DeleteBySubject(ctx, "user-1")
			wantDeleted(t, "DeleteBySubject(user-1) again", n, err, 0)
		}},
		{"empty sid and sub delete nothing", func(t *testing.T, s Store) {
			recs := map[string][]byte{
				"anon":    record(t, "", "", later),
				"nosid":   record(t, "", "user-1", later),
				"nosub":   record(t, "sid-a", "", later),
				"foreign": []byte("not written by Codec"),
			}
			for tok, b := range recs {
				commit(t, s, tok, b)
			}
			n, err := s.DeleteBySID(ctx, "")
			wantDeleted(t, `DeleteBySID("")`, n, err, 0)
			n, err = s.DeleteBySubject(ctx, "")
			wantDeleted(t, `DeleteBySubject("")`, n, err, 0)
			for tok, b := range recs {
				mustFind(t, s, tok, b)
			}
		}},
		{"records from other codecs are kept unindexed", func(t *testing.T, s Store) {
			gob, err := scs.GobCodec{}.Encode(later, map[string]any{SIDKey: "sid-a", SubjectKey: "user-1"})
			if err != nil {
				t.Fatal(err)
			}
			commit(t, s, "gob", gob)
			mustFind(t, s, "gob", gob)
			n, err := s.DeleteBySubject(ctx, "user-1")
			wantDeleted(t, "DeleteBySubject on an unindexed record", n, err, 0)
			mustFind(t, s, "gob", gob)
		}},
		{"ping", func(t *testing.T, s Store) {
			if err := s.Ping(ctx); err != nil {
				t.Fatalf("Ping: %v", err)
			}
		}},
	}
	for _, s := range stores(t) {
		t.Run(s.name, func(t *testing.T) {
			for _, b := range behaviours {
				t.Run(b.name, func(t *testing.T) {
					b.run(t, s.open(t))
				})
			}
		})
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
		{name: "wrong version", in: append([]byte{2}, header("a", "b")[1:]...), wantErr: true},
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
	f.Fuzz(func(t *testing.T, in []byte) {
		idx, rest, err := ParseIndex(in)
		if err != nil {
			if idx != (Index{}) || rest != nil {
				t.Fatalf("rejected input returned %+v, %q", idx, rest)
			}
			return
		}
		// An accepted record has a version byte, two lengths and both
		// strings before the rest, which is the input's tail.
		if in[0] != codecVersion {
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

func TestSQLiteSurvivesReopen(t *testing.T) {
	for _, name := range []string{"sessions.db", "a?b#c%20d.db"} {
		t.Run(name, func(t *testing.T) { testSQLiteSurvivesReopen(t, name) })
	}
}

func testSQLiteSurvivesReopen(t *testing.T, name string) {
	dir := filepath.Join(t.TempDir(), "nested", "dir") // parents are created
	path := filepath.Join(dir, name)
	b := record(t, "sid-1", "user-1", time.Now().Add(time.Hour))

	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	commit(t, s, "tok", b)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s, err = OpenSQLite(path)
	if err != nil {
		t.Fatalf("OpenSQLite again: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	mustFind(t, s, "tok", b)
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the database is not at the path given: %v", err)
	}
	// The index survives too.
	n, err := s.DeleteBySID(context.Background(), "sid-1")
	wantDeleted(t, "DeleteBySID after reopen", n, err, 1)
}

func TestOpenSQLiteIsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	b := record(t, "sid-1", "user-1", time.Now().Add(time.Hour))
	for i := range 3 {
		s, err := OpenSQLite(path)
		if err != nil {
			t.Fatalf("open #%d: %v", i+1, err)
		}
		if i == 0 {
			commit(t, s, "tok", b)
		}
		mustFind(t, s, "tok", b)
		var version int
		if err := s.db.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil {
			t.Fatal(err)
		}
		if version != len(sqliteMigrations) {
			t.Fatalf("open #%d: user_version = %d, want %d", i+1, version, len(sqliteMigrations))
		}
		if err := s.Close(); err != nil {
			t.Fatalf("close #%d: %v", i+1, err)
		}
	}
}

func TestOpenSQLiteRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec(`PRAGMA user_version = 99`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := OpenSQLite(path); err == nil {
		s.Close()
		t.Fatal("OpenSQLite of a database from a newer program succeeded, want an error")
	} else if !strings.Contains(err.Error(), "newer") {
		t.Errorf("error %q does not say the schema is newer", err)
	}
}

// TestSQLiteThroughSCS drives a real scs session manager over the SQLite
// store and signs the user out everywhere by subject.
func TestSQLiteThroughSCS(t *testing.T) {
	st, err := OpenSQLite(filepath.Join(t.TempDir(), "sessions.db"))
	if err != nil {
		t.Fatal(err)
	}
	store := WithTimeout(st, time.Second)
	t.Cleanup(func() { store.Close() })

	sm := scs.New()
	sm.Store = store
	sm.Codec = Codec{}
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		sm.Put(r.Context(), SIDKey, "sid-1")
		sm.Put(r.Context(), SubjectKey, "user-1")
	})
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(sm.GetString(r.Context(), SubjectKey)))
	})
	h := sm.LoadAndSave(mux)

	do := func(path string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		for _, c := range cookies {
			req.AddCookie(c)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: status %d: %s", path, rec.Code, rec.Body)
		}
		return rec
	}

	cookies := do("/login").Result().Cookies()
	if len(cookies) == 0 {
		t.Fatal("login set no session cookie")
	}
	if got := do("/whoami", cookies...).Body.String(); got != "user-1" {
		t.Fatalf("whoami before sign-out = %q, want user-1", got)
	}

	n, err := store.DeleteBySubject(context.Background(), "user-1")
	wantDeleted(t, "DeleteBySubject(user-1)", n, err, 1)

	if got := do("/whoami", cookies...).Body.String(); got != "" {
		t.Fatalf("whoami after DeleteBySubject = %q, want an empty session", got)
	}
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

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		location string
		unknown  bool
	}{
		{location: "memory"},
		{location: "sqlite:" + filepath.Join(dir, "sessions.db")},
		{location: "redis://x", unknown: true},
		{location: "sqlite:", unknown: true},
		{location: "", unknown: true},
		{location: "Memory", unknown: true},
	}
	for _, tt := range tests {
		t.Run(tt.location, func(t *testing.T) {
			s, err := Open(tt.location, time.Second)
			if tt.unknown {
				if !errors.Is(err, ErrUnknownStore) {
					t.Fatalf("Open(%q) error = %v, want ErrUnknownStore", tt.location, err)
				}
				if s != nil {
					t.Errorf("Open(%q) returned a store with its error", tt.location)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(%q): %v", tt.location, err)
			}
			t.Cleanup(func() { s.Close() })
			if err := s.Ping(context.Background()); err != nil {
				t.Fatalf("Ping: %v", err)
			}
			b := record(t, "sid-1", "user-1", time.Now().Add(time.Hour))
			commit(t, s, "tok", b)
			mustFind(t, s, "tok", b)
		})
	}
}

func TestCloseTwice(t *testing.T) {
	for _, sc := range stores(t) {
		s := sc.open(t)
		if err := s.Close(); err != nil {
			t.Fatalf("%s: Close: %v", sc.name, err)
		}
		s.Close() // must not panic
	}
}
