package app

// Benchmarks of the gateway over real loopback TCP, each beside its
// baseline in the same run: a signed-in page through the gateway against a
// bare httputil.ReverseProxy in front of the same upstream, and a
// WebSocket round trip through the gateway against one straight to the
// upstream. The client, the proxy and the upstream share the process and
// its CPUs, so req/s is what one machine does with all three on it, and
// the allocations are those of all three: the gateway's own are the
// difference from the bare proxy's. BENCHMARKS.md (section 9) has the
// results and the command:
//
//	go test ./internal/app -run '^$' -bench 'GatewayProxy|WebSocketEcho' -benchmem -count 3

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/gologin/gologin/internal/config"
	"github.com/gologin/gologin/internal/gateway"
	"github.com/gologin/gologin/internal/testclient"
)

// benchPage is the upstream's page in the proxy benchmarks: 1 KiB of HTML.
var benchPage = func() []byte {
	head := "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Upstream</title></head>\n<body><main><h1>Reports</h1>\n<p>"
	tail := "</p></main></body></html>\n"
	return []byte(head + strings.Repeat("Lorem ipsum dolor sit amet. ", 64)[:1024-len(head)-len(tail)] + tail)
}()

// benchUpstream serves benchPage at every path but /whoami, which answers
// with the X-Forwarded-User it got, and a WebSocket echo at /ws that first
// sends that header's value.
func benchUpstream(b *testing.B) *httptest.Server {
	b.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/whoami":
			io.WriteString(w, r.Header.Get("X-Forwarded-User"))
		case "/ws":
			wsEcho(w, r)
		default:
			h := w.Header()
			h["Content-Type"] = []string{"text/html; charset=utf-8"}
			h["Content-Length"] = []string{"1024"}
			w.Write(benchPage)
		}
	}))
	b.Cleanup(srv.Close)
	return srv
}

// wsEcho accepts a WebSocket, sends the X-Forwarded-User it got, and
// echoes every message until the connection ends.
func wsEcho(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx := context.Background()
	if c.Write(ctx, websocket.MessageText, []byte(r.Header.Get("X-Forwarded-User"))) != nil {
		return
	}
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil || c.Write(ctx, typ, msg) != nil {
			return
		}
	}
}

// benchGateway serves the app in gateway mode in front of upstream over
// loopback, with the development provider and the session store at
// location. Like newBenchApp it logs to io.Discard, so the access log is
// still formatted, as in production. It returns the gateway's URL.
func benchGateway(b *testing.B, upstream, location string) string {
	b.Helper()
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	vars := map[string]string{"APP_BASE_URL": base, "UPSTREAM_URL": upstream, "SESSION_STORE": location}
	cfg, err := config.LoadGateway(func(k string) string { return vars[k] })
	if err != nil {
		b.Fatal(err)
	}
	a, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	srv.Config.Handler = a
	srv.Start()
	b.Cleanup(func() {
		srv.Close()
		a.Close()
	})
	return base
}

// benchSignInThrough signs a new browser in at the gateway's development
// provider and returns its cookies as a Cookie header, after checking that
// the upstream gets the user's identity.
func benchSignInThrough(tb testing.TB, base string) string {
	tb.Helper()
	br := testclient.New(tb)
	if p := signInThrough(tb, br, base, "/whoami", "bench@example.com", ""); p.Status != http.StatusOK || !strings.HasPrefix(p.Body, "dev|") {
		tb.Fatalf("after sign-in: want the upstream's answer with X-Forwarded-User, got %d at %s:\n%s", p.Status, p.URL, p.Body)
	}
	u, _ := url.Parse(base)
	var cookies []string
	for _, c := range br.Client.Jar.Cookies(u) {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	return strings.Join(cookies, "; ")
}

// benchBareProxy serves the baseline proxy in front of upstream: a plain
// httputil.ReverseProxy that sets the URL and the X-Forwarded headers, with
// the transport settings the gateway uses. It returns its URL.
func benchBareProxy(b *testing.B, upstream string) string {
	b.Helper()
	target, _ := url.Parse(upstream)
	proxy := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
		},
		Transport: gateway.NewTransport(30 * time.Second),
	})
	b.Cleanup(proxy.Close)
	return proxy.URL
}

// benchProxyClient is the load's client: a connection per worker, kept.
func benchProxyClient(b *testing.B) *http.Client {
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute}
	b.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// benchWorkers is b.SetParallelism's factor: with GOMAXPROCS 2, 32
// requests in flight, as tools/loadtest's page phase has.
const benchWorkers = 16

// processCPU is the CPU time the process has used, user and system: what
// the client, the proxy and the upstream cost together, which other
// processes on the machine slow down less than they do req/s.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkGatewayProxy is a GET of a 1 KiB upstream page through a proxy
// over loopback, with many requests in flight: through a bare
// httputil.ReverseProxy (SetURL and SetXForwarded, the gateway's transport
// settings) as the baseline, and signed in through the gateway with the
// memory and the SQLite session store. Every request carries the session
// cookie, the bare proxy's too. It reports requests per second of the
// whole machine (client, proxy and upstream on the same CPUs), and the
// process's CPU time per request.
func BenchmarkGatewayProxy(b *testing.B) {
	for _, kind := range []string{"bare-reverseproxy", "gateway-memory", "gateway-sqlite"} {
		b.Run(kind, func(b *testing.B) {
			up := benchUpstream(b)
			var base, cookie string
			switch kind {
			case "bare-reverseproxy":
				base, cookie = benchBareProxy(b, up.URL), "gateway_session="+strings.Repeat("x", 43)
			default: // gateway-memory, gateway-sqlite
				base = benchGateway(b, up.URL, benchLocation(b, strings.TrimPrefix(kind, "gateway-")))
				cookie = benchSignInThrough(b, base)
			}
			client := benchProxyClient(b)
			get := func() (int, []byte, error) {
				req, _ := http.NewRequest("GET", base+"/reports", nil)
				req.Header["Cookie"] = []string{cookie}
				resp, err := client.Do(req)
				if err != nil {
					return 0, nil, err
				}
				defer resp.Body.Close()
				body, err := io.ReadAll(resp.Body)
				return resp.StatusCode, body, err
			}
			if status, body, err := get(); err != nil || status != http.StatusOK || !bytes.Equal(body, benchPage) {
				b.Fatalf("GET /reports through %s: %d, %v; want 200 with the upstream's page, got:\n%s", kind, status, err, body)
			}

			b.SetParallelism(benchWorkers)
			b.ReportAllocs()
			cpu := processCPU()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("GET", base+"/reports", nil)
					req.Header["Cookie"] = []string{cookie}
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					n, err := io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err != nil || resp.StatusCode != http.StatusOK || n != int64(len(benchPage)) {
						b.Errorf("GET /reports: %d, %d bytes, %v", resp.StatusCode, n, err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
			b.ReportMetric(float64(processCPU()-cpu)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
		})
	}
}

// BenchmarkWebSocketEcho is the round trip of a small message over one
// established WebSocket: straight to the upstream's echo server, through
// the bare proxy of BenchmarkGatewayProxy (what any proxy hop costs), and
// through the gateway signed in (memory store). ns/op is the round trip
// time; nothing else is in flight. cpu-µs/op is the process's CPU time per
// round trip, client and upstream included.
func BenchmarkWebSocketEcho(b *testing.B) {
	for _, via := range []string{"direct", "bare-reverseproxy", "gateway"} {
		b.Run(via, func(b *testing.B) {
			up := benchUpstream(b)
			base, opts := up.URL, &websocket.DialOptions{}
			switch via {
			case "bare-reverseproxy":
				base = benchBareProxy(b, up.URL)
			case "gateway":
				base = benchGateway(b, up.URL, "memory")
				opts.HTTPHeader = http.Header{"Cookie": {benchSignInThrough(b, base)}}
			}
			ctx := context.Background()
			c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/ws", opts)
			if err != nil {
				b.Fatal(err)
			}
			defer c.CloseNow()
			_, hello, err := c.Read(ctx)
			if err != nil || (via == "gateway") != strings.HasPrefix(string(hello), "dev|") {
				b.Fatalf("the upstream's first message: %q, %v; want the X-Forwarded-User it got, if any", hello, err)
			}
			msg := []byte(`{"type":"ping","seq":12345}`)

			b.ReportAllocs()
			cpu := processCPU()
			for b.Loop() {
				if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
					b.Fatal(err)
				}
				_, got, err := c.Read(ctx)
				if err != nil || !bytes.Equal(got, msg) {
					b.Fatalf("echo: %q, %v", got, err)
				}
			}
			b.ReportMetric(float64(processCPU()-cpu)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
			c.Close(websocket.StatusNormalClosure, "")
		})
	}
}
