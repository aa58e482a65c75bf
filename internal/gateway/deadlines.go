package gateway

import (
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/gologin/gologin/internal/httpserver"
)

// The gateway's server bounds no whole request, so that WebSockets and
// event streams can last (internal/cli). What it bounds instead is
// progress: each write to the browser and each read of a request body must
// finish within the web app's timeouts, so a client that stops reading or
// sending holds nothing for longer.

// readTimeout and writeTimeout are the web app's; tests shorten them.
var readTimeout, writeTimeout = httpserver.ReadTimeout, httpserver.WriteTimeout

// guarded is the ResponseWriter the gateway proxies through.
type guarded struct {
	http.ResponseWriter
	rc *http.ResponseController
}

func newGuarded(w http.ResponseWriter) *guarded {
	return &guarded{ResponseWriter: w, rc: http.NewResponseController(w)}
}

// WriteHeader passes on no informational response but 101: a 103 Early
// Hints is sent before ModifyResponse sees any header, so it could set the
// gateway's own cookies.
func (w *guarded) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *guarded) Write(b []byte) (int, error) {
	w.extendWrite()
	return w.ResponseWriter.Write(b)
}

// FlushError is what http.ResponseController.Flush calls, as the proxy
// does for streamed responses.
func (w *guarded) FlushError() error {
	w.extendWrite()
	return w.rc.Flush()
}

func (w *guarded) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// extendWrite gives the next write the web app's write timeout. A server
// without deadlines (a test's recorder) has nothing to extend.
func (w *guarded) extendWrite() {
	_ = w.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
}

// guardedBody is a request body each read of which must finish within the
// web app's read timeout.
type guardedBody struct {
	io.ReadCloser
	rc *http.ResponseController
}

func (b guardedBody) Read(p []byte) (int, error) {
	_ = b.rc.SetReadDeadline(time.Now().Add(readTimeout))
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		// The server reads on in the background to see the browser go
		// away; a deadline left set would end a stream it is receiving.
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// bound gives an answer that does not go through the proxy the web app's
// deadlines: the server reads what is left of the body after it, and
// would wait for a client that never sends it.
func bound(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	now := time.Now()
	_ = rc.SetReadDeadline(now.Add(readTimeout))
	// The server reads the rest of the body before it writes the answer.
	_ = rc.SetWriteDeadline(now.Add(readTimeout + writeTimeout))
}

// Bounded is middleware for the routes a gateway serves itself (sign-in,
// logout, forward auth): they get the deadlines of its own answers.
func Bounded(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bound(w)
		next.ServeHTTP(w, r)
	})
}
