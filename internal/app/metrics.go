package app

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gologin/gologin/login"
	"github.com/gologin/gologin/sessionstore"
)

// metrics are the app's Prometheus metrics, in a registry of its own so
// that several apps in one process (as in tests) do not collide.
type metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	logins      *prometheus.CounterVec
	events      *prometheus.CounterVec
	provider    *prometheus.HistogramVec
	upstream    *prometheus.HistogramVec
	storeErrors *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webapp_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "webapp_http_request_duration_seconds", Help: "HTTP request latency by route and status.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "status"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webapp_logins_total", Help: "Sign-ins by result (started, succeeded, failed) and failure reason.",
		}, []string{"result", "reason"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webapp_session_events_total", Help: "Logouts, back-channel logouts and token refreshes.",
		}, []string{"event"}),
		provider: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "webapp_provider_request_duration_seconds", Help: "Latency of calls to the OpenID provider by status code and method.",
			Buckets: prometheus.DefBuckets,
		}, []string{"code", "method"}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "webapp_upstream_request_duration_seconds", Help: "Time to the response headers of the app the gateway protects, by status code and method.",
			Buckets: prometheus.DefBuckets,
		}, []string{"code", "method"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webapp_session_store_errors_total", Help: "Failed session store calls by operation.",
		}, []string{"op"}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.logins, m.events, m.provider, m.upstream, m.storeErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, r := range []string{"started", "succeeded"} {
		m.logins.WithLabelValues(r, "")
	}
	return m
}

// handler serves the metrics in Prometheus text format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

func (m *metrics) observeRequest(route, method string, status int, d time.Duration) {
	// Clients choose the method: only known ones become label values.
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost:
	default:
		method = "OTHER"
	}
	code := strconv.Itoa(status)
	m.requests.WithLabelValues(route, method, code).Inc()
	m.latency.WithLabelValues(route, code).Observe(d.Seconds())
}

// onEvent counts the login package's events.
func (m *metrics) onEvent(_ context.Context, e login.Event) {
	switch e.Kind {
	case login.LoginStarted:
		m.logins.WithLabelValues("started", "").Inc()
	case login.LoginSucceeded:
		m.logins.WithLabelValues("succeeded", "").Inc()
	case login.LoginFailed:
		m.logins.WithLabelValues("failed", e.Reason).Inc()
	default:
		m.events.WithLabelValues(string(e.Kind)).Inc()
	}
}

func (m *metrics) onStoreError(op string, _ error) {
	m.storeErrors.WithLabelValues(op).Inc()
}

// instrumentProvider times the app's calls to the provider.
func (m *metrics) instrumentProvider(next http.RoundTripper) http.RoundTripper {
	return promhttp.InstrumentRoundTripperDuration(m.provider, next)
}

// instrumentUpstream times the gateway's calls to its upstream.
func (m *metrics) instrumentUpstream(next http.RoundTripper) http.RoundTripper {
	return promhttp.InstrumentRoundTripperDuration(m.upstream, next)
}

// liveSessions reports the store's session count. Counting can be costly
// (Redis scans its keys), so a count is reused for 15 s.
type liveSessions struct {
	store sessionstore.Store
	desc  *prometheus.Desc

	mu    sync.Mutex
	at    time.Time
	count float64
	ok    bool
}

func newLiveSessions(store sessionstore.Store) *liveSessions {
	return &liveSessions{store: store, desc: prometheus.NewDesc("webapp_live_sessions",
		"Unexpired sessions in the session store, counted at most every 15 s.", nil, nil)}
}

func (l *liveSessions) Describe(ch chan<- *prometheus.Desc) { ch <- l.desc }

func (l *liveSessions) Collect(ch chan<- prometheus.Metric) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Since(l.at) > 15*time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		n, err := l.store.Count(ctx)
		cancel()
		l.at, l.count, l.ok = time.Now(), float64(n), err == nil
	}
	if l.ok {
		ch <- prometheus.MustNewConstMetric(l.desc, prometheus.GaugeValue, l.count)
	}
}
