package app

// Streams through the gateway, against real servers: WebSockets, Server-Sent
// Events and a chunked download. Each stream test proves that the gateway
// passes data on as it comes rather than once the response ends, without
// a clock: the upstream writes its second part only after the test has
// read the first, which the test can do only if the gateway passed the
// first part on by itself. A gateway that buffered would leave the test
// waiting for the first part until go test's -timeout, whose goroutine
// dump shows the read that waits.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"

	"github.com/gologin/gologin/internal/testclient"
)

// streamUpstream is a stand-in for an app that streams: a WebSocket echo
// server at /ws, Server-Sent Events at /events and a chunked download at
// /download, and at every other path the JSON echo of startUpstream.
type streamUpstream struct {
	*httptest.Server
	// wsHeaders receives the headers of each WebSocket handshake that
	// reached the upstream; wsAccepted counts them.
	wsHeaders  chan http.Header
	wsAccepted atomic.Int32
	// wsClosed receives the close status of each WebSocket as the
	// upstream read it.
	wsClosed chan websocket.StatusCode
	// ack is closed by the test once it has read the first part of a
	// stream; the upstream writes the second part only after that.
	ack chan struct{}
	// secondWritten is set just before the second part is written.
	secondWritten atomic.Bool
	// streamHeaders receives the headers of each stream request, and
	// streamDone a value when its handler returns.
	streamHeaders chan http.Header
	streamDone    chan struct{}
}

// chunk1 and chunk2 are the parts of /download: the first is larger than
// the proxy's 32 KiB copy buffer, so it crosses the gateway in several
// writes, each of which must be passed on at once.
var (
	chunk1 = bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	chunk2 = []byte("the end\n")
)

func startStreamUpstream(t *testing.T) *streamUpstream {
	t.Helper()
	up := &streamUpstream{wsHeaders: make(chan http.Header, 4), wsClosed: make(chan websocket.StatusCode, 4),
		ack: make(chan struct{}), streamHeaders: make(chan http.Header, 4), streamDone: make(chan struct{}, 4)}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			t.Errorf("upstream: WebSocket accept: %v", err)
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(1 << 20)
		up.wsAccepted.Add(1)
		up.wsHeaders <- r.Header.Clone()
		ctx := r.Context()
		// The upstream speaks first: what it saw of the user.
		if err := c.Write(ctx, websocket.MessageText, []byte("hello "+r.Header.Get("X-Forwarded-User"))); err != nil {
			t.Errorf("upstream: WebSocket write: %v", err)
			return
		}
		for {
			typ, msg, err := c.Read(ctx)
			if err != nil {
				up.wsClosed <- websocket.CloseStatus(err)
				return
			}
			if err := c.Write(ctx, typ, msg); err != nil {
				t.Errorf("upstream: WebSocket echo: %v", err)
				return
			}
		}
	})
	// twoParts writes first, flushes, waits for the test to have read it,
	// then writes second.
	twoParts := func(w http.ResponseWriter, r *http.Request, first, second []byte) {
		up.streamHeaders <- r.Header.Clone()
		defer func() { up.streamDone <- struct{}{} }()
		w.Write(first)
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("upstream: flush: %v", err)
			return
		}
		select {
		case <-up.ack:
		case <-r.Context().Done():
			return
		}
		up.secondWritten.Store(true)
		w.Write(second)
	}
	mux.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		twoParts(w, r, []byte("event: first\ndata: one\n\n"), []byte("event: second\ndata: two\n\n"))
	})
	mux.HandleFunc("/download", func(w http.ResponseWriter, r *http.Request) {
		// No Content-Length: the response is chunked.
		w.Header().Set("Content-Type", "application/octet-stream")
		twoParts(w, r, chunk1, chunk2)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(seen{Method: r.Method, URI: r.RequestURI, Host: r.Host, Header: r.Header})
	})
	up.Server = httptest.NewServer(mux)
	t.Cleanup(func() {
		// Unblocks a handler still waiting when a test failed early.
		select {
		case <-up.ack:
		default:
			close(up.ack)
		}
		up.Server.Close()
	})
	return up
}

// acknowledge lets the upstream write the second part of its stream.
func (up *streamUpstream) acknowledge() { close(up.ack) }

// signedInStream starts the gateway in front of a stream upstream and
// signs a browser in; it returns the gateway's URL, the browser and the
// X-Forwarded-User the upstream got for it.
func signedInStream(t *testing.T) (*streamUpstream, string, *testclient.Browser, string) {
	t.Helper()
	up := startStreamUpstream(t)
	base := startGateway(t, up.URL, nil)
	b := testclient.New(t)
	user := upstreamSaw(t, signInThrough(t, b, base, "/whoami", "ada@example.com", "eng")).Header.Get("X-Forwarded-User")
	if !strings.HasPrefix(user, "dev|") {
		t.Fatalf("after sign-in the upstream got X-Forwarded-User %q, want the user's sub", user)
	}
	return up, base, b, user
}

// wantNoGatewayCookie fails t if h, a request header the upstream got,
// carries a cookie of the gateway's.
func wantNoGatewayCookie(t *testing.T, b *testclient.Browser, base string, h http.Header) {
	t.Helper()
	for _, c := range b.Client.Jar.Cookies(mustURL(t, base)) {
		if strings.Contains(h.Get("Cookie"), c.Value) {
			t.Errorf("the upstream got the gateway's cookie %s: %q", c.Name, h.Get("Cookie"))
		}
	}
}

func TestGatewayWebSocket(t *testing.T) {
	up, base, b, user := signedInStream(t)
	ctx := t.Context()
	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/ws"

	// The browser's cookie jar authenticates the handshake, as a page's
	// new WebSocket(...) sends the site's cookies.
	c, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: b.Client})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("WebSocket through the gateway, signed in: %v (status %d)", err, status)
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)

	h := <-up.wsHeaders
	if got := h.Get("X-Forwarded-User"); got != user {
		t.Errorf("the upstream's accept got X-Forwarded-User %q, want %q", got, user)
	}
	if got := h.Get("X-Forwarded-Email"); got != "ada@example.com" {
		t.Errorf("the upstream's accept got X-Forwarded-Email %q, want ada@example.com", got)
	}
	wantNoGatewayCookie(t, b, base, h)

	// Upstream to browser: the upstream's greeting.
	typ, msg, err := c.Read(ctx)
	if err != nil || typ != websocket.MessageText || string(msg) != "hello "+user {
		t.Fatalf("first message from the upstream: %v %q, %v; want text %q", typ, msg, err, "hello "+user)
	}
	// Browser to upstream and back, text and binary, small and large.
	for _, m := range []struct {
		typ websocket.MessageType
		msg []byte
	}{
		{websocket.MessageText, []byte("ping")},
		{websocket.MessageBinary, []byte{0, 1, 2, 0xff}},
		{websocket.MessageText, []byte(strings.Repeat("é", 10000))},
		{websocket.MessageBinary, chunk1}, // larger than the proxy's 32 KiB copy buffer
	} {
		if err := c.Write(ctx, m.typ, m.msg); err != nil {
			t.Fatalf("write %d bytes: %v", len(m.msg), err)
		}
		typ, got, err := c.Read(ctx)
		if err != nil || typ != m.typ || !bytes.Equal(got, m.msg) {
			t.Fatalf("echo of %v message of %d bytes: got %v of %d bytes, %v", m.typ, len(m.msg), typ, len(got), err)
		}
	}
	// The close handshake passes both ways: Close returns once the
	// upstream's close frame has come back.
	if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Errorf("close: %v", err)
	}
	if got := <-up.wsClosed; got != websocket.StatusNormalClosure {
		t.Errorf("the upstream read close status %v, want %v", got, websocket.StatusNormalClosure)
	}
}

func TestGatewayWebSocketRefusesGuests(t *testing.T) {
	up := startStreamUpstream(t)
	base := startGateway(t, up.URL, nil)
	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/ws"
	guest := testclient.New(t).NoRedirects() // a redirect would show as a 302
	for _, header := range []http.Header{
		nil,
		// A browser's handshake: it is no page load, whatever the mode says.
		{"Sec-Fetch-Mode": {"websocket"}, "Origin": {base}},
		// A forged identity changes nothing.
		{"X-Forwarded-User": {"admin"}},
	} {
		_, resp, err := websocket.Dial(t.Context(), wsURL, &websocket.DialOptions{HTTPClient: guest.Client, HTTPHeader: header})
		if err == nil {
			t.Fatalf("a guest's WebSocket handshake (%v) succeeded", header)
		}
		if resp == nil {
			t.Fatalf("a guest's WebSocket handshake (%v): %v, want a 401 response", header, err)
		}
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Location") != "" {
			t.Errorf("a guest's WebSocket handshake (%v): got %d to %q, want 401 without a redirect",
				header, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if n := up.wsAccepted.Load(); n != 0 {
		t.Errorf("the upstream accepted %d WebSockets of guests", n)
	}
}

func TestGatewayStreamsSSE(t *testing.T) {
	up, base, b, user := signedInStream(t)
	req, _ := http.NewRequestWithContext(t.Context(), "GET", base+"/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := b.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("GET /events: got %d %q, want 200 text/event-stream", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if h := <-up.streamHeaders; h.Get("X-Forwarded-User") != user {
		t.Errorf("the upstream got X-Forwarded-User %q, want %q", h.Get("X-Forwarded-User"), user)
	}
	events := bufio.NewReader(resp.Body)

	// The upstream is blocked until acknowledge: this event can only have
	// come through while the response is still open.
	first := readEvent(t, events)
	if up.secondWritten.Load() {
		t.Fatal("the second event was written before the first was read") // cannot happen: it waits for acknowledge
	}
	if first != "event: first\ndata: one\n" {
		t.Fatalf("first event: %q", first)
	}
	up.acknowledge()
	if second := readEvent(t, events); second != "event: second\ndata: two\n" {
		t.Fatalf("second event: %q", second)
	}
	if rest, err := io.ReadAll(events); err != nil || len(rest) != 0 {
		t.Errorf("after the second event: %q, %v; want the end of the stream", rest, err)
	}
}

// readEvent reads one server-sent event, up to the blank line that ends it.
func readEvent(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	var ev strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading an event: %q, %v", ev.String()+line, err)
		}
		if line == "\n" {
			return ev.String()
		}
		ev.WriteString(line)
	}
}

func TestGatewayStreamsChunkedDownload(t *testing.T) {
	up, base, b, user := signedInStream(t)
	resp, err := b.Client.Get(base + "/download")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != -1 || len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("GET /download: got %d, length %d, transfer encoding %v; want 200 chunked, of unknown length",
			resp.StatusCode, resp.ContentLength, resp.TransferEncoding)
	}
	if h := <-up.streamHeaders; h.Get("X-Forwarded-User") != user {
		t.Errorf("the upstream got X-Forwarded-User %q, want %q", h.Get("X-Forwarded-User"), user)
	}
	got := make([]byte, len(chunk1))
	if _, err := io.ReadFull(resp.Body, got); err != nil {
		t.Fatalf("reading the first %d bytes: %v", len(chunk1), err)
	}
	if up.secondWritten.Load() {
		t.Fatal("the second part was written before the first was read") // cannot happen: it waits for acknowledge
	}
	if !bytes.Equal(got, chunk1) {
		t.Fatal("the first part differs from what the upstream sent")
	}
	up.acknowledge()
	rest, err := io.ReadAll(resp.Body)
	if err != nil || !bytes.Equal(rest, chunk2) {
		t.Fatalf("the rest: %q, %v; want %q", rest, err, chunk2)
	}
}

// A browser that goes away ends the upstream's request too: the gateway
// does not keep the stream open into nowhere.
func TestGatewayStreamEndsWithTheBrowser(t *testing.T) {
	up, base, b, _ := signedInStream(t)
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/events", nil)
	resp, err := b.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	<-up.streamHeaders
	readEvent(t, bufio.NewReader(resp.Body))
	cancel() // the browser leaves while the upstream waits to write event two
	resp.Body.Close()
	<-up.streamDone // the upstream's request context ended: its handler returned
	if up.secondWritten.Load() {
		t.Error("the upstream wrote its second event for a browser that had left")
	}
}
