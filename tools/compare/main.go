// Command compare benchmarks sign-in reverse proxies side by side: our
// gateway (cmd/gateway) and oauth2-proxy, each with its session stores, in
// front of the same upstream page, all signing in against the same OpenID
// provider (cmd/devidp). tools/compare/run.sh builds and starts everything
// on loopback and runs this program; it can also be run by hand against
// proxies already running.
//
// Each target is a base URL and the PID of the process that serves it:
//
//	compare -target 'gateway-memory=http://127.0.0.1:14180,pid=1234' \
//	        -target 'oauth2-proxy-cookie=http://127.0.0.1:14182,pid=1240' \
//	        -target 'upstream=http://127.0.0.1:14100,pid=1200,guest' \
//	        -extra upstream=1200 -extra redis=1100 \
//	        -rounds 3 -duration 10s -concurrency 32,64
//
// A target marked guest is requested without signing in (the bare upstream,
// as the reference floor). -extra names other processes whose CPU time per
// request is reported for every target too: the upstream (whose work should
// be the same behind every proxy), Redis (the cost of the Redis stores),
// the provider (which should stay idle once users are signed in).
//
// For every round, every concurrency level and every target in turn (A, B,
// C, A, B, C, ... so that drift of the machine hits all alike) it:
//
//  1. signs -users users in through the target, as a browser would: GET
//     -path, follow the redirects to the provider's sign-in form, submit it
//     with a distinct name and email, follow the redirects through the
//     proxy's callback back to -path, which must now be the upstream's page
//     (it carries -marker). The cookies the jar then holds for the target
//     are the user's Cookie header; each is checked once more without the
//     jar, outside the measurement.
//  2. warms up for -warmup with the measurement's connections and workers;
//  3. measures for -duration: -concurrency workers request -path back to
//     back over kept-alive connections, each request with the Cookie header
//     of the next user, and count the answers that are 200 and carry the
//     marker (a sign-in page or redirect is a failure, never a success).
//     Workers stop starting requests when the time is up and finish the
//     ones in flight, which are counted: all the CPU time measured is for
//     counted requests. CPU time is utime+stime of each process from
//     /proc/PID/stat, all threads, before and after.
//
// The machine may be shared: each measurement also reports how much CPU
// other processes used meanwhile (the machine's busy time from /proc/stat,
// less that of the processes measured and of this program), in cores.
// With -max-other, compare waits before each measurement for other work to
// stay below that many cores, and measures again (up to -retries times)
// when it did not meanwhile; a measurement kept though noisy is marked.
//
// It prints progress and each measurement to stderr, then to stdout one
// markdown table per concurrency level: the median over the rounds of
// requests per second and of CPU microseconds per successful request, and
// their ratios to the -ref target's medians.
//
// With -signin URL it only signs one user in at URL and prints the Cookie
// header, e.g. for curl -H "Cookie: ...".
//
// The load is made from the same machine, so the load generator competes
// with the proxies for the CPUs: requests per second is what this machine
// reaches with all three (client, proxy, upstream) on it, while CPU per
// request of the proxy process is the figure that does not depend on it.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gologin/gologin/tools/internal/proccpu"
	"github.com/gologin/gologin/tools/internal/signinform"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

// target is one server to measure.
type target struct {
	name  string
	base  string // base URL, without a trailing slash
	pid   int    // its process, whose CPU time is measured; 0: none
	guest bool   // no sign-in: requests carry no cookie
}

// process is a process whose CPU time is reported per request.
type process struct {
	name string
	pid  int
}

type options struct {
	targets     []target
	extras      []process
	rounds      int
	duration    time.Duration
	warmup      time.Duration
	concurrency []int
	users       int
	path        string
	marker      string
	ref         string
	timeout     time.Duration
	signin      string // -signin: only sign in there
	// maxOther is how much CPU other processes may use during a
	// measurement, in cores; 0: any. See measureQuietly.
	maxOther  float64
	retries   int
	quietWait time.Duration
}

// targetList is the repeatable -target flag.
type targetList []target

func (l *targetList) String() string { return fmt.Sprint(len(*l), " targets") }

func (l *targetList) Set(spec string) error {
	t, err := parseTarget(spec)
	if err != nil {
		return err
	}
	*l = append(*l, t)
	return nil
}

// parseTarget parses NAME=URL[,pid=PID][,guest].
func parseTarget(spec string) (target, error) {
	name, rest, ok := strings.Cut(spec, "=")
	parts := strings.Split(rest, ",")
	if !ok || name == "" || parts[0] == "" {
		return target{}, fmt.Errorf("target %q: want NAME=URL[,pid=PID][,guest]", spec)
	}
	u, err := url.Parse(parts[0])
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return target{}, fmt.Errorf("target %q: %q is not an http(s) URL", spec, parts[0])
	}
	t := target{name: name, base: strings.TrimRight(parts[0], "/")}
	for _, p := range parts[1:] {
		switch k, v, _ := strings.Cut(p, "="); k {
		case "pid":
			if t.pid, err = strconv.Atoi(v); err != nil || t.pid <= 0 {
				return target{}, fmt.Errorf("target %q: pid %q is not a process ID", spec, v)
			}
		case "guest":
			t.guest = true
		default:
			return target{}, fmt.Errorf("target %q: unknown option %q", spec, p)
		}
	}
	return t, nil
}

// processList is the repeatable -extra flag, NAME=PID.
type processList []process

func (l *processList) String() string { return fmt.Sprint(len(*l), " processes") }

func (l *processList) Set(spec string) error {
	name, v, ok := strings.Cut(spec, "=")
	pid, err := strconv.Atoi(v)
	if !ok || name == "" || err != nil || pid <= 0 {
		return fmt.Errorf("extra %q: want NAME=PID", spec)
	}
	*l = append(*l, process{name, pid})
	return nil
}

// parseInts parses a comma-separated list of positive integers.
func parseInts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q: want positive integers separated by commas", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var (
		o       options
		targets targetList
		extras  processList
		conc    string
	)
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Var(&targets, "target", "a server to measure, `NAME=URL[,pid=PID][,guest]`; repeatable, measured in this order; guest: no sign-in")
	fs.Var(&extras, "extra", "another process whose CPU time per request is reported for every target, `NAME=PID`; repeatable")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; each measures every target at every concurrency level once")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of each measurement")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load before each measurement, on the same connections")
	fs.StringVar(&conc, "concurrency", "32,64", "concurrent workers, comma-separated levels")
	fs.IntVar(&o.users, "users", 16, "users signed in per target and round; requests take their cookies in turn")
	fs.StringVar(&o.path, "path", "/protected", "the page to request, behind sign-in")
	fs.StringVar(&o.marker, "marker", "<title>Baseline</title>", "text only the upstream's page has (loadtest -serve-baseline's title)")
	fs.StringVar(&o.ref, "ref", "oauth2-proxy-cookie", "the target the ratios are to")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "bound on each HTTP request")
	fs.StringVar(&o.signin, "signin", "", "only sign one user in at this base `URL` and print the Cookie header")
	fs.Float64Var(&o.maxOther, "max-other", 0, "CPU `cores` other processes may use during a measurement: before each, wait for the machine to be that quiet (up to -quiet-wait), and redo a measurement during which they used more (up to -retries times); 0: no check")
	fs.IntVar(&o.retries, "retries", 2, "with -max-other, times a measurement is redone at most")
	fs.DurationVar(&o.quietWait, "quiet-wait", 30*time.Second, "with -max-other, how long to wait at most for a quiet machine before each measurement")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if o.concurrency, err = parseInts(conc); err != nil {
		return o, fmt.Errorf("-concurrency %w", err)
	}
	o.targets, o.extras = targets, extras
	switch {
	case o.signin != "":
		return o, nil
	case len(o.targets) == 0:
		return o, errors.New("no -target given")
	case o.rounds < 1 || o.duration <= 0 || o.warmup < 0 || o.users < 1 || o.timeout <= 0 ||
		o.maxOther < 0 || o.retries < 0 || o.quietWait < 0:
		return o, errors.New("want -rounds >= 1, -duration > 0, -warmup >= 0, -users >= 1, -timeout > 0, and -max-other, -retries, -quiet-wait >= 0")
	case !strings.HasPrefix(o.path, "/"):
		return o, fmt.Errorf("-path %q: want a path such as /protected", o.path)
	}
	seen := map[string]bool{}
	for _, t := range o.targets {
		if seen[t.name] {
			return o, fmt.Errorf("target %q given twice", t.name)
		}
		seen[t.name] = true
		if t.pid != 0 {
			if _, err := proccpu.Of(t.pid); err != nil {
				return o, fmt.Errorf("target %s: %w", t.name, err)
			}
		}
	}
	for _, p := range o.extras {
		if _, err := proccpu.Of(p.pid); err != nil {
			return o, fmt.Errorf("extra %s: %w", p.name, err)
		}
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if o.signin != "" {
		tr := newTransport(1)
		defer tr.CloseIdleConnections()
		cookie, err := signIn(ctx, tr, strings.TrimRight(o.signin, "/"), o.path, []byte(o.marker), 0, o.timeout)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, cookie)
		return nil
	}

	// Every process measured, whose CPU time is not "other" work.
	ours := []int{}
	for _, t := range o.targets {
		ours = append(ours, t.pid)
	}
	for _, p := range o.extras {
		ours = append(ours, p.pid)
	}
	var results []measurement
	for round := 1; round <= o.rounds; round++ {
		for _, c := range o.concurrency {
			for _, t := range o.targets {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				m, err := measure(ctx, t, o, c, round, ours, stderr)
				if err != nil {
					return fmt.Errorf("round %d, %s, concurrency %d: %w", round, t.name, c, err)
				}
				fmt.Fprintln(stderr, m.line(o.extras))
				results = append(results, m)
			}
		}
	}
	printTables(stdout, results, o)
	return nil
}

// newTransport is the HTTP transport of one measurement, shared by its
// workers: enough idle connections for each worker to keep its own alive.
// It asks for no compression, which the upstream does not do anyway.
func newTransport(concurrency int) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 2 * concurrency
	tr.MaxIdleConnsPerHost = 2 * concurrency
	tr.DisableCompression = true
	return tr
}

// measurement is one target measured once at one concurrency level.
type measurement struct {
	target      string
	round       int
	concurrency int
	ok, failed  int
	errors      map[string]int
	elapsed     time.Duration
	cpu         time.Duration            // the target's process
	extraCPU    map[string]time.Duration // the -extra processes
	clientCPU   time.Duration            // this program
	hasCPU      bool                     // the target has a PID
	// other is the CPU time other processes used during the measurement:
	// the machine's busy time less that of the processes measured and of
	// this program.
	other    time.Duration
	attempts int  // measurements made, the last one kept (-max-other)
	noisy    bool // other exceeded -max-other even on the last attempt
}

// otherCores is other work's CPU time during the measurement, in cores.
func (m measurement) otherCores() float64 {
	if m.elapsed <= 0 {
		return 0
	}
	return m.other.Seconds() / m.elapsed.Seconds()
}

func (m measurement) perSecond() float64 {
	if m.elapsed <= 0 {
		return 0
	}
	return float64(m.ok) / m.elapsed.Seconds()
}

// perRequest is d in microseconds per successful request.
func (m measurement) perRequest(d time.Duration) float64 {
	if m.ok == 0 {
		return 0
	}
	return float64(d.Nanoseconds()) / 1e3 / float64(m.ok)
}

// line is the measurement as one line of progress.
func (m measurement) line(extras []process) string {
	var b strings.Builder
	fmt.Fprintf(&b, "round %d c=%d %-22s %8.0f req/s  %7d ok %5d failed", m.round, m.concurrency, m.target, m.perSecond(), m.ok, m.failed)
	if m.hasCPU {
		fmt.Fprintf(&b, "  CPU µs/req: server %.1f", m.perRequest(m.cpu))
	} else {
		b.WriteString("  CPU µs/req:")
	}
	for _, p := range extras {
		fmt.Fprintf(&b, ", %s %.1f", p.name, m.perRequest(m.extraCPU[p.name]))
	}
	fmt.Fprintf(&b, ", client %.1f; other processes %.2f cores", m.perRequest(m.clientCPU), m.otherCores())
	if m.attempts > 1 {
		fmt.Fprintf(&b, " (attempt %d)", m.attempts)
	}
	if m.noisy {
		b.WriteString(" (noisy)")
	}
	for _, msg := range slices.Sorted(maps.Keys(m.errors)) {
		fmt.Fprintf(&b, "\n    %d x %s", m.errors[msg], msg)
	}
	return b.String()
}

// measure signs users in at t (unless t is a guest target), then warms up
// and measures. Sign-in is not measured; a user who fails to sign in is an
// error, since the comparison needs every target working. With
// -max-other, it first waits for the machine to be quiet, and warms up
// and measures again (the same users) when other processes than ours
// (the PIDs) used more than -max-other cores during the measurement.
func measure(ctx context.Context, t target, o options, concurrency, round int, ours []int, stderr io.Writer) (measurement, error) {
	tr := newTransport(concurrency)
	defer tr.CloseIdleConnections()
	marker := []byte(o.marker)
	cookies := []string{""}
	if !t.guest {
		cookies = cookies[:0]
		for i := range o.users {
			user := (round-1)*o.users + i // distinct users in every round
			cookie, err := signIn(ctx, tr, t.base, o.path, marker, user, o.timeout)
			if err != nil {
				return measurement{}, fmt.Errorf("sign-in of user %d: %w", user, err)
			}
			cookies = append(cookies, cookie)
		}
	}
	client := &http.Client{Transport: tr, Timeout: o.timeout, CheckRedirect: noRedirects}
	for attempt := 0; ; attempt++ {
		if o.maxOther > 0 {
			if other, quiet := waitQuiet(ctx, ours, o.maxOther, o.quietWait); !quiet && ctx.Err() == nil {
				fmt.Fprintf(stderr, "round %d c=%d %s: other processes still use %.2f cores after %s; measuring anyway\n",
					round, concurrency, t.name, other, o.quietWait)
			}
		}
		if o.warmup > 0 {
			load(ctx, client, t.base+o.path, cookies, marker, concurrency, o.warmup)
		}
		m := measureOnce(ctx, client, t, o, cookies, concurrency, ours)
		m.round, m.attempts = round, attempt+1
		if ctx.Err() != nil {
			return m, ctx.Err()
		}
		if m.ok == 0 {
			return m, fmt.Errorf("no successful request: %v", m.errors)
		}
		if o.maxOther == 0 || m.otherCores() <= o.maxOther || attempt >= o.retries {
			m.noisy = o.maxOther > 0 && m.otherCores() > o.maxOther
			return m, nil
		}
		fmt.Fprintf(stderr, "round %d c=%d %s: other processes used %.2f cores meanwhile (%.0f req/s); measuring again\n",
			round, concurrency, t.name, m.otherCores(), m.perSecond())
	}
}

// measureOnce is one measured load phase at t, with its CPU times.
func measureOnce(ctx context.Context, client *http.Client, t target, o options, cookies []string, concurrency int, ours []int) measurement {
	m := measurement{target: t.name, concurrency: concurrency, hasCPU: t.pid != 0, extraCPU: map[string]time.Duration{}}
	cpu0, extra0, self0 := cpuOf(t.pid), map[string]time.Duration{}, proccpu.Self()
	for _, p := range o.extras {
		extra0[p.name] = cpuOf(p.pid)
	}
	sys0 := sampleSystem(ours)
	res := load(ctx, client, t.base+o.path, cookies, []byte(o.marker), concurrency, o.duration)
	m.other = sampleSystem(ours).otherSince(sys0)
	m.clientCPU = proccpu.Self() - self0
	m.cpu = cpuOf(t.pid) - cpu0
	for _, p := range o.extras {
		m.extraCPU[p.name] = cpuOf(p.pid) - extra0[p.name]
	}
	m.ok, m.failed, m.errors, m.elapsed = res.ok, res.failed, res.errors, res.elapsed
	return m
}

// systemSample is the machine's busy CPU time so far, and that of our
// processes (those measured, and this one).
type systemSample struct {
	busy, ours time.Duration
	ok         bool // /proc/stat was read
}

func sampleSystem(pids []int) systemSample {
	s := systemSample{ours: proccpu.Self()}
	for _, pid := range slices.Compact(slices.Sorted(slices.Values(pids))) {
		s.ours += cpuOf(pid)
	}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		if ticks, err := parseSystemStat(b); err == nil {
			s.busy, s.ok = time.Duration(ticks)*time.Second/proccpu.UserHZ, true
		}
	}
	return s
}

// otherSince is the CPU time processes other than ours used since s0.
func (s systemSample) otherSince(s0 systemSample) time.Duration {
	if !s.ok || !s0.ok {
		return 0
	}
	return max(0, (s.busy-s0.busy)-(s.ours-s0.ours))
}

// waitQuiet waits until other processes than ours use at most maxOther
// cores over a second, or for wait at most; it returns the last figure and
// whether it was quiet.
func waitQuiet(ctx context.Context, ours []int, maxOther float64, wait time.Duration) (float64, bool) {
	deadline := time.Now().Add(wait)
	for {
		s0, t0 := sampleSystem(ours), time.Now()
		select {
		case <-ctx.Done():
			return 0, false
		case <-time.After(time.Second):
		}
		other := sampleSystem(ours).otherSince(s0).Seconds() / time.Since(t0).Seconds()
		if other <= maxOther || time.Now().After(deadline) {
			return other, other <= maxOther
		}
	}
}

// parseSystemStat returns the busy time of all CPUs, in clock ticks, from
// the first line of /proc/stat: "cpu user nice system idle iowait irq
// softirq steal ...", busy being all but idle and iowait (guest time is
// already in user and nice).
func parseSystemStat(b []byte) (int64, error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return 0, errors.New("/proc/stat: no cpu line with 8 times")
	}
	var busy int64
	for i, v := range f[1:9] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("/proc/stat: %q is not a tick count", v)
		}
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, nil
}

// cpuOf is the CPU time of process pid so far, 0 for pid 0 or a process
// gone.
func cpuOf(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	d, _ := proccpu.Of(pid)
	return d
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// loadResult is what a load phase counted.
type loadResult struct {
	ok, failed int
	errors     map[string]int
	elapsed    time.Duration // from the first request to the end of the last
}

// load has concurrency workers GET rawURL back to back for d, request i of
// a worker carrying cookies[(w+i*concurrency) % len(cookies)] (an empty
// string: no cookie), so the users take turns. A success is a 200 whose
// body holds marker. Workers stop starting requests after d and finish
// those in flight, which count; ctx cuts everything short.
func load(ctx context.Context, c *http.Client, rawURL string, cookies []string, marker []byte, concurrency int, d time.Duration) loadResult {
	base, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return loadResult{failed: 1, errors: map[string]int{err.Error(): 1}}
	}
	// What a browser's page load sends that the proxies look at: an HTML
	// Accept header (oauth2-proxy answers Accept: application/json with 401
	// rather than a redirect to sign in).
	base.Header.Set("Accept", "text/html")

	type tally struct {
		ok, failed int
		errors     map[string]int
	}
	tallies := make([]tally, concurrency)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := range concurrency {
		wg.Go(func() {
			t := &tallies[w]
			t.errors = map[string]int{}
			var buf bytes.Buffer // a worker's body buffer, reused
			for i := 0; ctx.Err() == nil && time.Now().Before(deadline); i++ {
				req := base.Clone(ctx)
				if cookie := cookies[(w+i*concurrency)%len(cookies)]; cookie != "" {
					req.Header.Set("Cookie", cookie)
				}
				if err := fetch(c, req, &buf, marker); err != nil {
					if ctx.Err() != nil {
						return // interrupted: neither success nor failure
					}
					t.failed++
					t.errors[err.Error()]++
				} else {
					t.ok++
				}
			}
		})
	}
	wg.Wait()
	r := loadResult{elapsed: time.Since(start), errors: map[string]int{}}
	for _, t := range tallies {
		r.ok += t.ok
		r.failed += t.failed
		for msg, n := range t.errors {
			r.errors[msg] += n
		}
	}
	return r
}

// fetch sends req and reads the whole body into buf: nil for a 200 with
// marker in the body, otherwise why not.
func fetch(c *http.Client, req *http.Request, buf *bytes.Buffer, marker []byte) error {
	resp, err := c.Do(req)
	if err != nil {
		return cleanErr(err)
	}
	defer resp.Body.Close()
	buf.Reset()
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return cleanErr(err)
	}
	switch {
	case resp.StatusCode != http.StatusOK:
		if loc := resp.Header.Get("Location"); loc != "" {
			return fmt.Errorf("status %d to %s", resp.StatusCode, pathOf(loc))
		}
		return fmt.Errorf("status %d", resp.StatusCode)
	case !bytes.Contains(buf.Bytes(), marker):
		return errors.New("200 without the upstream's page")
	}
	return nil
}

// pathOf is the path of a Location, without the query that would carry
// states and make every error message distinct.
func pathOf(loc string) string {
	u, err := url.Parse(loc)
	if err != nil {
		return "?"
	}
	return u.Path
}

// cleanErr drops the URL from a client error.
func cleanErr(err error) error {
	if ue := (*url.Error)(nil); errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// signIn signs user in at the proxy at base as a browser would, with a
// cookie jar of its own, and returns the Cookie header the jar then holds
// for base: GET base+path is redirected (by the proxy, possibly through
// its own start route) to the provider's sign-in form; the form is posted
// with the user's name and email, and the redirects lead through the
// proxy's callback back to base+path, which must answer 200 with the
// upstream's page (marker). The Cookie header is then checked alone,
// without the jar and without following redirects.
func signIn(ctx context.Context, tr http.RoundTripper, base, path string, marker []byte, user int, timeout time.Duration) (string, error) {
	baseURL, err := url.Parse(base + "/")
	if err != nil {
		return "", err
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Transport: tr, Jar: jar, Timeout: timeout}
	page, body, err := browse(ctx, c, http.MethodGet, base+path, nil)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", path, err)
	}
	if bytes.Contains(body, marker) {
		return "", fmt.Errorf("GET %s answers the upstream's page without sign-in: nothing to compare", path)
	}
	action, form, err := signinform.Find(page, body)
	if err != nil {
		return "", err
	}
	form.Set("name", fmt.Sprintf("Load User %d", user))
	form.Set("email", fmt.Sprintf("load%d@example.com", user))
	form.Set("signin", "1") // the form's submit button
	form.Del("cancel")
	final, body, err := browse(ctx, c, http.MethodPost, action, strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("sign-in form: %w", err)
	}
	if final.Host != baseURL.Host || final.Path != path || !bytes.Contains(body, marker) {
		return "", fmt.Errorf("after the sign-in form: at %s%s, not the upstream's page at %s", final.Host, final.Path, path)
	}

	var pairs []string
	for _, ck := range jar.Cookies(baseURL) {
		pairs = append(pairs, ck.Name+"="+ck.Value)
	}
	if len(pairs) == 0 {
		return "", errors.New("signed in, but no cookie for the proxy")
	}
	cookie := strings.Join(pairs, "; ")
	check, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	check.Header.Set("Accept", "text/html")
	check.Header.Set("Cookie", cookie)
	var buf bytes.Buffer
	once := &http.Client{Transport: tr, Timeout: timeout, CheckRedirect: noRedirects}
	if err := fetch(once, check, &buf, marker); err != nil {
		return "", fmt.Errorf("the cookies alone do not get the upstream's page: %w", err)
	}
	return cookie, nil
}

// browse sends a request (a form post when body is not nil), following
// redirects as c does, and returns the final URL and body; an answer other
// than 200 is an error.
func browse(ctx context.Context, c *http.Client, method, rawURL string, body io.Reader) (*url.URL, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, rawURL, body)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "text/html")
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, cleanErr(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, nil, cleanErr(err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("status %d at %s%s", resp.StatusCode, resp.Request.URL.Host, resp.Request.URL.Path)
	}
	return resp.Request.URL, b, nil
}

// median of xs, which it sorts; 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// summary is a target's medians over the rounds at one concurrency level.
type summary struct {
	perSecond, cpu, client float64
	other                  float64 // other processes' CPU, in cores
	extra                  map[string]float64
	hasCPU                 bool
	failed, total          int
	noisy                  int       // measurements kept though noisy
	rounds                 []float64 // requests per second of each round, in order
}

func summarize(results []measurement, t target, concurrency int, extras []process) summary {
	s := summary{extra: map[string]float64{}, hasCPU: t.pid != 0}
	var rates, cpus, clients, others []float64
	extra := map[string][]float64{}
	for _, m := range results {
		if m.target != t.name || m.concurrency != concurrency {
			continue
		}
		rates = append(rates, m.perSecond())
		cpus = append(cpus, m.perRequest(m.cpu))
		clients = append(clients, m.perRequest(m.clientCPU))
		others = append(others, m.otherCores())
		if m.noisy {
			s.noisy++
		}
		for _, p := range extras {
			extra[p.name] = append(extra[p.name], m.perRequest(m.extraCPU[p.name]))
		}
		s.failed += m.failed
		s.total += m.ok + m.failed
	}
	s.rounds = slices.Clone(rates)
	s.perSecond, s.cpu, s.client, s.other = median(rates), median(cpus), median(clients), median(others)
	for name, xs := range extra {
		s.extra[name] = median(xs)
	}
	return s
}

// printTables writes one markdown table per concurrency level.
func printTables(w io.Writer, results []measurement, o options) {
	for _, c := range o.concurrency {
		sums := map[string]summary{}
		for _, t := range o.targets {
			sums[t.name] = summarize(results, t, c, o.extras)
		}
		ref, haveRef := sums[o.ref]
		fmt.Fprintf(w, "\n### %d concurrent connections, %d rounds of %s (medians over the rounds)\n\n", c, o.rounds, o.duration)
		fmt.Fprintf(w, "| proxy | req/s | CPU µs/request | req/s vs %s | CPU/request vs %s |", o.ref, o.ref)
		for _, p := range o.extras {
			fmt.Fprintf(w, " %s CPU µs/req |", p.name)
		}
		fmt.Fprintln(w, " load client CPU µs/req | other processes, cores | failed | req/s per round |")
		fmt.Fprint(w, "|---|--:|--:|--:|--:|")
		for range o.extras {
			fmt.Fprint(w, "--:|")
		}
		fmt.Fprintln(w, "--:|--:|--:|---|")
		for _, t := range o.targets {
			s := sums[t.name]
			cpu, rateRatio, cpuRatio := "-", "-", "-"
			if s.hasCPU {
				cpu = fmt.Sprintf("%.1f", s.cpu)
			}
			if haveRef && ref.perSecond > 0 {
				rateRatio = fmt.Sprintf("%.2f", s.perSecond/ref.perSecond)
			}
			if haveRef && s.hasCPU && ref.hasCPU && ref.cpu > 0 {
				cpuRatio = fmt.Sprintf("%.2f", s.cpu/ref.cpu)
			}
			rounds := make([]string, len(s.rounds))
			for i, r := range s.rounds {
				rounds[i] = fmt.Sprintf("%.0f", r)
			}
			fmt.Fprintf(w, "| %s | %.0f | %s | %s | %s |", t.name, s.perSecond, cpu, rateRatio, cpuRatio)
			for _, p := range o.extras {
				fmt.Fprintf(w, " %.1f |", s.extra[p.name])
			}
			noisy := ""
			if s.noisy > 0 {
				noisy = fmt.Sprintf(" (%d noisy)", s.noisy)
			}
			fmt.Fprintf(w, " %.1f | %.2f%s | %d of %d | %s |\n", s.client, s.other, noisy, s.failed, s.total, strings.Join(rounds, ", "))
		}
	}
}
