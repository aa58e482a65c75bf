package app

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gologin/gologin/internal/config"
	"github.com/gologin/gologin/internal/testclient"
)

// metricValue reads one sample from a Prometheus text page; -1 if absent.
func metricValue(body, sample string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// scrape reads the metrics as the metrics listener serves them.
func scrape(t *testing.T, a *App) string {
	t.Helper()
	rec := httptest.NewRecorder()
	a.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	return rec.Body.String()
}

func TestMetrics(t *testing.T) {
	base, a := startApp(t, map[string]string{"SESSION_STORE": "memory"})
	b := testclient.New(t)
	p := signInDev(t, b, base, "/login", "Ada", "ada@example.com")
	b.Submit(p.Form(t, "/logout"), nil)
	b.Get(base + "/callback?code=x") // a failed sign-in
	signInDev(t, testclient.New(t), base, "/login", "Grace", "grace@example.com")

	body := scrape(t, a)
	for sample, want := range map[string]float64{
		`webapp_logins_total{reason="",result="started"}`:                             2,
		`webapp_logins_total{reason="",result="succeeded"}`:                           2,
		`webapp_logins_total{reason="missing_state",result="failed"}`:                 1,
		`webapp_session_events_total{event="logout"}`:                                 1,
		`webapp_session_events_total{event="backchannel_logout"}`:                     1,
		`webapp_live_sessions`:                                                        1,
		`webapp_http_requests_total{method="GET",route="GET /callback",status="303"}`: 2,
		`webapp_http_requests_total{method="GET",route="GET /callback",status="400"}`: 1,
		`webapp_http_request_duration_seconds_count{route="GET /{$}",status="200"}`:   3,
	} {
		if got := metricValue(body, sample); got != want {
			t.Errorf("%s = %v, want %v", sample, got, want)
		}
	}
	if got := metricValue(body, `webapp_provider_request_duration_seconds_count{code="200",method="post"}`); got < 2 {
		t.Errorf("provider calls timed: %v, want the two code exchanges at least", got)
	}
	// Paths and methods clients invent share one label.
	b.Get(base + "/no/such/" + strings.Repeat("x", 20))
	req, _ := http.NewRequest("XXXXXXXXMETHOD", base+"/", nil)
	if resp, err := b.Client.Do(req); err == nil {
		resp.Body.Close()
	}
	if body := scrape(t, a); strings.Contains(body, "xxxxxxxx") || strings.Contains(body, "XXXXXXXX") {
		t.Error("a client's path or method became a metric label")
	}
}

// TestMetricsOnlyOnTheirOwnListener: whatever METRICS_ADDR says, the
// app's listener answers /metrics with its not-found page; the metrics
// listener's handler serves them, and nothing else, uncached.
func TestMetricsOnlyOnTheirOwnListener(t *testing.T) {
	var a *App
	for _, metricsAddr := range []string{"", "127.0.0.1:0", "off"} {
		var base string
		base, a = startApp(t, map[string]string{"SESSION_STORE": "memory", "METRICS_ADDR": metricsAddr})
		p := testclient.New(t).Get(base + "/metrics")
		if p.Status != http.StatusNotFound || !strings.Contains(p.Body, "Page not found") || strings.Contains(p.Body, "webapp_") {
			t.Errorf("METRICS_ADDR=%q: /metrics on the app's listener: %d, want the 404 page:\n%s", metricsAddr, p.Status, p.Body)
		}
	}
	for path, status := range map[string]int{"/metrics": http.StatusOK, "/": http.StatusNotFound, "/healthz": http.StatusNotFound} {
		rec := httptest.NewRecorder()
		a.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != status {
			t.Errorf("metrics listener GET %s: %d, want %d", path, rec.Code, status)
		}
		if got := rec.Header().Get("Cache-Control"); got != "no-store" {
			t.Errorf("metrics listener GET %s: Cache-Control %q, want no-store", path, got)
		}
	}
	if !strings.Contains(scrape(t, a), "webapp_http_requests_total") {
		t.Error("the metrics listener serves no request counts")
	}
}

func TestClientIPBehindTrustedProxies(t *testing.T) {
	cfg, err := config.Load(func(k string) string {
		return map[string]string{"TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.1", "SESSION_STORE": "memory"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	a := &App{cfg: cfg}
	tests := []struct {
		remote, xff, proto string
		want, wantProto    string
	}{
		{"203.0.113.9:5000", "198.51.100.1", "https", "203.0.113.9", ""},         // untrusted peer: headers ignored
		{"10.1.2.3:5000", "198.51.100.1", "https", "198.51.100.1", "https"},      // trusted proxy
		{"10.1.2.3:5000", "198.51.100.1, 192.168.1.1", "", "198.51.100.1", ""},   // two trusted hops
		{"10.1.2.3:5000", "6.6.6.6, 198.51.100.1", "", "198.51.100.1", ""},       // spoofed leftmost entry ignored
		{"192.168.1.1:5000", "not-an-ip", "", "192.168.1.1", ""},                 // garbage stops the walk
		{"[::ffff:10.0.0.1]:5000", "2001:db8::1", "http", "2001:db8::1", "http"}, // mapped IPv4 peer
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.remote
		r.Header.Set("X-Forwarded-For", tt.xff)
		r.Header.Set("X-Forwarded-Proto", tt.proto)
		ip, proto := a.client(r)
		if ip != tt.want {
			t.Errorf("peer %s, X-Forwarded-For %q: client IP %s, want %s", tt.remote, tt.xff, ip, tt.want)
		}
		if proto != tt.wantProto {
			t.Errorf("peer %s: proto %q, want %q", tt.remote, proto, tt.wantProto)
		}
	}
}

func TestOneAccessLogLinePerRequest(t *testing.T) {
	base, _ := startApp(t, map[string]string{"SESSION_STORE": "memory"})
	req, _ := http.NewRequest("GET", base+"/callback?code=SECRETCODE&state=s", nil)
	req.Header.Set("X-Request-Id", "access-log-test-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var lines []string
	for _, l := range strings.Split(suiteLog.String(), "\n") {
		if strings.Contains(l, "request_id=access-log-test-1") && strings.Contains(l, "msg=request ") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("access log lines for one request: %d, want 1", len(lines))
	}
	for _, want := range []string{"method=GET", "path=/callback ", "status=400", "duration=", "client_ip=127.0.0.1"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("access log line lacks %q: %s", want, lines[0])
		}
	}
	if strings.Contains(lines[0], "SECRETCODE") {
		t.Errorf("access log line holds the query: %s", lines[0])
	}
}

// The login package logs with the request's context; its lines carry the
// same request ID as the access log, once.
func TestLoginPackageLinesCarryTheRequestID(t *testing.T) {
	base, _ := startApp(t, map[string]string{"SESSION_STORE": "memory"})
	req, _ := http.NewRequest("POST", base+"/backchannel-logout", strings.NewReader("logout_token=not-a-jwt"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Request-Id", "backchannel-test-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("back-channel logout with a bad token: %d, want 400", resp.StatusCode)
	}
	var found bool
	for _, l := range strings.Split(suiteLog.String(), "\n") {
		if strings.Contains(l, `msg="back-channel logout refused"`) && strings.Contains(l, "request_id=backchannel-test-1") {
			found = true
			if n := strings.Count(l, "request_id="); n != 1 {
				t.Errorf("request_id appears %d times: %s", n, l)
			}
		}
	}
	if !found {
		t.Fatalf("no back-channel logout line with the request ID in the log:\n%s", suiteLog.String())
	}
}
