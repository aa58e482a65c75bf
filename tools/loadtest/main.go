// Command loadtest measures the web app over real HTTP on loopback.
//
// It signs in -users users through the provider's sign-in form (the
// embedded development provider's page or cmd/devidp's: GET APP/login,
// POST the form with a distinct name and email per user, follow the
// redirects to the app's callback, whose redirect ends the sign-in), then
// checks, outside the measured phase, that each user is signed in:
// APP/profile answers 200, where a guest is redirected to /login. Then it
// requests the signed-in page APP/ with each user's session cookie for
// -duration or -requests, whichever ends first. Each phase reports its
// rate, failures and latency percentiles. With -users 0 only the page
// phase runs, without cookies.
//
// It reads no page's wording, only HTTP and the forms' structure: the
// provider's sign-in form is the one that posts to its /authorize endpoint
// with an email field; a sign-in is complete when the app's /callback
// answers 303 to / and sets a cookie; a signed-in page carries the
// logout form (action /logout) with the user's CSRF token.
//
//	loadtest -app http://127.0.0.1:3000 -users 200 -concurrency 32 -duration 10s
//
// With -duration 0 -requests 0 only the sign-ins run.
//
// The same program is the baseline to compare with: a bare net/http server
// writing a page of a given size, with a logout form as the app's signed-in
// page has.
//
//	loadtest -serve-baseline -addr 127.0.0.1:3100 -size 2100
//	loadtest -app http://127.0.0.1:3100 -users 0 -concurrency 32 -duration 10s
//
// With -provider, the baseline also signs users in with an OpenID provider,
// doing only the HTTP of the app's login (redirect, code redemption) with no
// ID token check, session store, log or metric: the floor to compare the
// app's CPU per login with. Its client's redirect URI is http://ADDR/callback.
//
//	loadtest -serve-baseline -addr 127.0.0.1:3101 -provider http://127.0.0.1:9000 -client app:app-secret
//	loadtest -app http://127.0.0.1:3101 -users 2000 -concurrency 8 -duration 0 -requests 0 -pids PID
//
// And it times starts: run a command -startup times, measuring from exec to
// the first 200 from -app/healthz, and stop it with SIGTERM each time.
//
//	SESSION_STORE=sqlite:/tmp/s/sessions.db PORT=3001 loadtest -startup 20 -app http://127.0.0.1:3001 -- ./webapp
//
// The app's APP_BASE_URL must be the -app URL (same host spelling): the
// provider sends the browser back to APP_BASE_URL/callback, and the cookie
// jar keeps cookies per host.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gologin/gologin/tools/internal/proccpu"
	"github.com/gologin/gologin/tools/internal/signinform"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

type options struct {
	app         string
	users       int
	concurrency int
	duration    time.Duration
	requests    int
	timeout     time.Duration
	json        bool
	pids        string

	serveBaseline bool
	addr          string
	size          int
	provider      string // -serve-baseline: sign in with this provider
	client        string // its client, ID:SECRET

	startup int      // times to start command
	command []string // for -startup
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.StringVar(&o.app, "app", "http://127.0.0.1:3000", "base `URL` of the app (or of a -serve-baseline server)")
	fs.IntVar(&o.users, "users", 100, "users to sign in first; 0: page views without signing in")
	fs.IntVar(&o.concurrency, "concurrency", 32, "concurrent workers in each phase")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of the page-view phase; 0: no time limit (with -requests 0 too: sign in only)")
	fs.IntVar(&o.requests, "requests", 0, "page views to make at most; 0: no count limit")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "bound on each HTTP request")
	fs.BoolVar(&o.json, "json", false, "print the results as JSON")
	fs.BoolVar(&o.serveBaseline, "serve-baseline", false, "serve a bare net/http page of -size bytes on -addr instead of making load")
	fs.StringVar(&o.addr, "addr", "127.0.0.1:3100", "listen `address` for -serve-baseline")
	fs.IntVar(&o.size, "size", 2048, "page size in bytes for -serve-baseline")
	fs.StringVar(&o.provider, "provider", "", "with -serve-baseline, also sign users in at /login and /callback with the OpenID provider at this issuer `URL`, doing only the HTTP of a login")
	fs.StringVar(&o.client, "client", "", "the baseline's client at -provider, `ID:SECRET`; its redirect URI must be http://ADDR/callback")
	fs.StringVar(&o.pids, "pids", "", "comma-separated `PIDs` of server processes whose CPU time (Linux /proc) each phase reports per operation")
	fs.IntVar(&o.startup, "startup", 0, "start the command after the flags this many times, timing each start to the first 200 from -app/healthz")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case o.startup > 0 && fs.NArg() == 0:
		return o, errors.New("-startup needs the command to start after the flags")
	case o.startup == 0 && fs.NArg() > 0:
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	case (o.provider != "" || o.client != "") && (!o.serveBaseline || o.client == "" || o.provider == ""):
		return o, errors.New("-provider and -client go together, with -serve-baseline")
	case o.provider != "" && strings.HasPrefix(o.addr, ":"):
		return o, fmt.Errorf("-addr %s: give the host too (as in 127.0.0.1%s): it is in the baseline's redirect URI", o.addr, o.addr)
	case o.serveBaseline && o.size < len(baselineHead)+len(baselineTail):
		return o, fmt.Errorf("-size %d: want at least %d bytes", o.size, len(baselineHead)+len(baselineTail))
	case o.users < 0 || o.concurrency < 1 || o.requests < 0 || o.duration < 0 || o.timeout <= 0:
		return o, errors.New("-users and -requests must be >= 0, -concurrency >= 1, -duration >= 0 and -timeout > 0")
	case o.users == 0 && o.duration == 0 && o.requests == 0 && !o.serveBaseline && o.startup == 0:
		return o, errors.New("set -duration or -requests, or both: the page phase needs a bound")
	}
	o.command = fs.Args()
	return o, nil
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	o, err := parseFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if o.serveBaseline {
		h := baselineHandler(o.size)
		if o.provider != "" {
			if h, err = newLoginBaseline(ctx, o.provider, o.client, "http://"+o.addr, o.size); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "baseline: signing in with %s at http://%s/login\n", o.provider, o.addr)
		}
		srv := &http.Server{Addr: o.addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
		go func() { <-ctx.Done(); srv.Close() }()
		fmt.Fprintf(stdout, "baseline: serving %d-byte pages on http://%s/\n", o.size, o.addr)
		if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}

	app := strings.TrimRight(o.app, "/")
	if o.startup > 0 {
		return startups(ctx, o, app+"/healthz", stdout)
	}
	tr := newTransport(o.concurrency)
	defer tr.CloseIdleConnections()
	var res report
	cookies := []string{""} // each user's Cookie header; none without users
	cpu, err := newCPUMeter(o.pids)
	if err != nil {
		return err
	}
	if o.users > 0 {
		var login result
		cpu.start()
		clients, login := loginPhase(ctx, tr, app, o)
		cpu.stop(&login)
		cookies = checkSignedIn(ctx, clients, app, o, &login)
		res.Login = &login
		if len(cookies) == 0 {
			res.print(stdout, o.json)
			return errors.New("no user signed in: nothing to view pages with")
		}
	}
	if o.duration > 0 || o.requests > 0 {
		cpu.start()
		pages := pagePhase(ctx, &http.Client{Transport: tr, Timeout: o.timeout, CheckRedirect: noRedirects}, cookies, app, o)
		cpu.stop(&pages)
		res.Pages = &pages
	}
	res.print(stdout, o.json)
	return nil
}

// startups starts o.command o.startup times, each time measuring the time
// from exec to the first 200 answer from healthz, then stopping the process
// with SIGTERM. The command's output is discarded.
func startups(ctx context.Context, o options, healthz string, stdout io.Writer) error {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var times []time.Duration
	for range o.startup {
		cmd := exec.CommandContext(ctx, o.command[0], o.command[1:]...)
		t0 := time.Now()
		if err := cmd.Start(); err != nil {
			return err
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		var ready time.Duration
		for ready == 0 {
			select {
			case err := <-exited:
				return fmt.Errorf("%s exited before it was ready: %v", o.command[0], err)
			case <-time.After(time.Millisecond):
			}
			if time.Since(t0) > o.timeout {
				cmd.Process.Kill()
				return fmt.Errorf("%s not ready after %s", o.command[0], o.timeout)
			}
			if resp, err := client.Get(healthz); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					ready = time.Since(t0)
				}
			}
		}
		cmd.Process.Signal(syscall.SIGTERM)
		if err := <-exited; err != nil {
			return fmt.Errorf("%s after SIGTERM: %v", o.command[0], err)
		}
		times = append(times, ready)
	}
	r := summarize("startup", 0, [][]time.Duration{slices.Clone(times)}, nil)
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Runs []float64 `json:"runs_ms"`
			result
		}{msList(times), r})
	}
	fmt.Fprintf(stdout, "startup: %d starts, ms to the first 200 from %s: p50 %.1f p90 %.1f max %.1f; each: %v\n",
		r.Count, healthz, r.P50, r.P90, r.Max, msList(times))
	return nil
}

func msList(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = ms(d)
	}
	return out
}

// newTransport is the one transport every simulated browser shares; it
// keeps two idle connections per worker, so connections are reused.
func newTransport(concurrency int) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 2 * concurrency
	tr.MaxIdleConnsPerHost = 2 * concurrency
	return tr
}

// newBrowser is a client with a cookie jar of its own: one user. It
// follows redirects until the app's callback answers: a sign-in is
// complete when the callback has stored the session and redirects to the
// page the user started from.
func newBrowser(tr http.RoundTripper, timeout time.Duration) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Transport: tr, Jar: jar, Timeout: timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if via[len(via)-1].URL.Path == "/callback" {
				return http.ErrUseLastResponse
			}
			return nil
		}}
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// checkSignedIn requests app/profile as each client, outside the measured
// login phase, and returns the Cookie header of each client it answers
// with 200; the others (a guest is redirected to /login) count as failed
// logins in r.
func checkSignedIn(ctx context.Context, clients []*http.Client, app string, o options, r *result) []string {
	var (
		mu      sync.Mutex
		cookies []string
		checked int
	)
	appURL, _ := url.Parse(app + "/")
	work(ctx, o.concurrency, len(clients), func(_, i int) {
		err := profileOK(ctx, clients[i], app)
		var header []string
		for _, c := range clients[i].Jar.Cookies(appURL) {
			header = append(header, c.String())
		}
		mu.Lock()
		defer mu.Unlock()
		checked++
		if err != nil {
			r.fail(err)
		} else {
			cookies = append(cookies, strings.Join(header, "; "))
		}
	})
	// Users left unchecked when ctx ended are not known to be signed in.
	for range len(clients) - checked {
		r.fail(errors.New("after sign-in: not checked, interrupted"))
	}
	return cookies
}

// profileOK is nil when app/profile, a page for signed-in users only,
// answers c with 200 rather than a redirect to the login.
func profileOK(ctx context.Context, c *http.Client, app string) error {
	once := *c
	once.CheckRedirect = noRedirects
	a, err := get(ctx, &once, app+"/profile")
	switch {
	case err != nil:
		return fmt.Errorf("after sign-in: %w", err)
	case a.status == http.StatusOK:
		return nil
	case isRedirect(a.status):
		if to, err := a.url.Parse(a.header.Get("Location")); err == nil && to.Path == "/login" {
			return errors.New("after sign-in: /profile redirects to /login: not signed in")
		}
	}
	return fmt.Errorf("after sign-in: /profile answers %d, not 200", a.status)
}

func isRedirect(status int) bool { return status >= 300 && status < 400 }

// work runs do(w, i) for i = 0, 1, 2, ... below limit (without a bound
// when limit is negative) on n workers, w being the worker's number, and
// stops when ctx ends.
func work(ctx context.Context, n, limit int, do func(w, i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range n {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if limit >= 0 && i >= limit {
					return
				}
				do(w, i)
			}
		})
	}
	wg.Wait()
}

// loginPhase signs in o.users users with o.concurrency workers and returns
// the clients of those who signed in.
func loginPhase(ctx context.Context, tr http.RoundTripper, app string, o options) ([]*http.Client, result) {
	var (
		mu      sync.Mutex
		clients []*http.Client
		errs    = map[string]int{}
	)
	lat := make([][]time.Duration, o.concurrency)
	start := time.Now()
	work(ctx, o.concurrency, o.users, func(w, i int) {
		c := newBrowser(tr, o.timeout)
		t0 := time.Now()
		err := signIn(ctx, c, app, i)
		lat[w] = append(lat[w], time.Since(t0))
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs[err.Error()]++
		} else {
			clients = append(clients, c)
		}
	})
	return clients, summarize("login", time.Since(start), lat, errs)
}

// signIn signs user i in as a browser would: the app's /login leads to the
// provider's sign-in form, whose submission leads back to the app's
// /callback. The sign-in is complete when the callback sets a cookie (the
// session's) and sends the browser on to the app's / with 303 See Other.
func signIn(ctx context.Context, c *http.Client, app string, i int) error {
	a, err := get(ctx, c, app+"/login")
	if err != nil {
		return err
	}
	if a.status != http.StatusOK {
		return fmt.Errorf("sign-in page: status %d", a.status)
	}
	action, form, err := signinform.Find(a.url, a.body)
	if err != nil {
		return err
	}
	form.Set("name", fmt.Sprintf("Load User %d", i))
	form.Set("email", fmt.Sprintf("load%d@example.com", i))
	form.Set("signin", "1")
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, action, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	a, err = do(c, req)
	switch {
	case err != nil:
		return err
	case a.url.Path != "/callback" || !strings.HasPrefix(a.url.String(), app+"/"):
		return fmt.Errorf("after sign-in: status %d at %s, not at the app's callback", a.status, a.url.Redacted())
	case a.status != http.StatusSeeOther:
		return fmt.Errorf("callback: status %d, not 303", a.status)
	}
	if to, err := a.url.Parse(a.header.Get("Location")); err != nil || to.String() != app+"/" {
		return errors.New("callback: 303 elsewhere than the app's /")
	}
	if !setsCookie(a.header) {
		return errors.New("callback: 303 without a session cookie")
	}
	return nil
}

// setsCookie reports whether the response headers h set a cookie with a
// value, rather than only delete cookies (as of a finished login attempt).
func setsCookie(h http.Header) bool {
	for _, line := range h["Set-Cookie"] {
		c, err := http.ParseSetCookie(line)
		if err == nil && c.Value != "" && c.MaxAge >= 0 && (c.Expires.IsZero() || c.Expires.After(time.Now())) {
			return true
		}
	}
	return false
}

// csrfField is the name of the CSRF token's field in the app's forms
// (login.CSRFField).
const csrfField = "csrf_token"

// signedInPage reports whether a page of the app is one for a signed-in
// user: it has the logout form (posting to /logout) carrying the user's
// CSRF token, which the app writes for a signed-in session only.
func signedInPage(body []byte) bool {
	for rest := body; ; {
		tag, inner, after, ok := signinform.Element(rest, "form")
		if !ok {
			return false
		}
		rest = after
		if signinform.Attr(tag, "action") != "/logout" {
			continue
		}
		for in := inner; ; {
			input, _, after, ok := signinform.Element(in, "input")
			if !ok {
				break
			}
			in = after
			if signinform.Attr(input, "name") == csrfField && signinform.Attr(input, "value") != "" {
				return true
			}
		}
	}
}

// answer is a final response: its status, the URL that answered (after
// the redirects followed), its headers and body.
type answer struct {
	status int
	url    *url.URL
	header http.Header
	body   []byte
}

func get(ctx context.Context, c *http.Client, rawURL string) (answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return answer{}, err
	}
	return do(c, req)
}

// do sends req, following redirects as c does, and reads the final response.
func do(c *http.Client, req *http.Request) (answer, error) {
	resp, err := c.Do(req)
	if err != nil {
		return answer{}, cleanErr(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, cleanErr(err)
	}
	return answer{resp.StatusCode, resp.Request.URL, resp.Header, body}, nil
}

// cleanErr drops the URL from a client error, which would carry codes and
// states, and make every error message distinct.
func cleanErr(err error) error {
	if ue := (*url.Error)(nil); errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// pagePhase requests app/ with o.concurrency workers, request after request
// sending the next user's cookies, until o.duration or o.requests is
// reached. The Cookie header is set directly, as load tools do, rather
// than through a cookie jar, whose work would compete with the server's
// on the same machine.
func pagePhase(ctx context.Context, c *http.Client, cookies []string, app string, o options) result {
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	var (
		mu   sync.Mutex
		errs = map[string]int{}
		size atomic.Int64 // size of a page body, for -serve-baseline -size
	)
	lat := make([][]time.Duration, o.concurrency)
	wantSignedIn := o.users > 0
	limit := -1
	if o.requests > 0 {
		limit = o.requests
	}
	page, err := http.NewRequestWithContext(ctx, http.MethodGet, app+"/", nil)
	if err != nil {
		return result{Phase: "pages", Failures: 1, Errors: map[string]int{err.Error(): 1}}
	}
	start := time.Now()
	work(ctx, o.concurrency, limit, func(w, i int) {
		req := page.Clone(ctx)
		if cookie := cookies[i%len(cookies)]; cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		t0 := time.Now()
		a, err := do(c, req)
		d := time.Since(t0)
		if err != nil && ctx.Err() != nil {
			return // cut short by the end of the phase: not a failure
		}
		switch {
		case err != nil:
		case a.status != http.StatusOK:
			err = fmt.Errorf("status %d", a.status)
		case wantSignedIn && !signedInPage(a.body):
			err = errors.New("page without the logout form and CSRF token: a guest's, the session was lost")
		}
		lat[w] = append(lat[w], d)
		if err == nil {
			size.Store(int64(len(a.body)))
		} else {
			mu.Lock()
			errs[err.Error()]++
			mu.Unlock()
		}
	})
	r := summarize("pages", time.Since(start), lat, errs)
	r.PageBytes = int(size.Load())
	return r
}

// result is one phase's figures; latencies are in milliseconds.
type result struct {
	Phase     string         `json:"phase"`
	Count     int            `json:"count"`
	Failures  int            `json:"failures"`
	Errors    map[string]int `json:"errors,omitempty"`
	Seconds   float64        `json:"seconds"`
	PerSecond float64        `json:"per_second"`
	P50       float64        `json:"p50_ms"`
	P90       float64        `json:"p90_ms"`
	P99       float64        `json:"p99_ms"`
	Max       float64        `json:"max_ms"`
	PageBytes int            `json:"page_bytes,omitempty"` // body size of a successful page view
	// CPU time per attempt, in microseconds, of this process and of each
	// process -pids names.
	ClientCPU float64            `json:"client_cpu_us_per_op,omitempty"`
	ServerCPU map[string]float64 `json:"server_cpu_us_per_op,omitempty"`
}

type report struct {
	Login *result `json:"login,omitempty"`
	Pages *result `json:"pages,omitempty"`
}

// summarize merges the workers' latencies into a result. The rate counts
// every completed attempt, failed or not.
func summarize(phase string, elapsed time.Duration, perWorker [][]time.Duration, errs map[string]int) result {
	all := slices.Concat(perWorker...)
	slices.Sort(all)
	r := result{Phase: phase, Count: len(all), Errors: errs, Seconds: elapsed.Seconds()}
	for _, n := range errs {
		r.Failures += n
	}
	if elapsed > 0 && len(all) > 0 {
		r.PerSecond = float64(len(all)) / elapsed.Seconds()
	}
	r.P50, r.P90, r.P99 = percentile(all, 0.50), percentile(all, 0.90), percentile(all, 0.99)
	if len(all) > 0 {
		r.Max = ms(all[len(all)-1])
	}
	return r
}

// fail counts err as a failed attempt.
func (r *result) fail(err error) {
	if r.Errors == nil {
		r.Errors = map[string]int{}
	}
	r.Errors[err.Error()]++
	r.Failures++
}

// percentile is the nearest-rank percentile of sorted durations, in ms.
func percentile(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return ms(sorted[max(i, 0)])
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (r report) print(w io.Writer, asJSON bool) {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(r)
		return
	}
	for _, p := range []*result{r.Login, r.Pages} {
		if p == nil {
			continue
		}
		unit := map[string]string{"login": "logins", "pages": "requests"}[p.Phase]
		fmt.Fprintf(w, "%-6s %d %s in %.2fs: %.1f %s/s, %d failed; latency ms p50 %.2f p90 %.2f p99 %.2f max %.2f\n",
			p.Phase+":", p.Count, unit, p.Seconds, p.PerSecond, unit, p.Failures, p.P50, p.P90, p.P99, p.Max)
		if p.ClientCPU > 0 {
			fmt.Fprintf(w, "        CPU µs per %s: loadtest %.0f", strings.TrimSuffix(unit, "s"), p.ClientCPU)
			for _, pid := range slices.Sorted(maps.Keys(p.ServerCPU)) {
				fmt.Fprintf(w, ", pid %s %.0f", pid, p.ServerCPU[pid])
			}
			fmt.Fprintln(w)
		}
		if p.PageBytes > 0 {
			fmt.Fprintf(w, "        page body: %d bytes\n", p.PageBytes)
		}
		for msg, n := range p.Errors {
			fmt.Fprintf(w, "        %d x %s\n", n, msg)
		}
	}
}

// cpuMeter measures the CPU time of this process and of server processes
// during a phase.
type cpuMeter struct {
	pids   []int
	self0  time.Duration
	procs0 []time.Duration
}

func newCPUMeter(pids string) (*cpuMeter, error) {
	m := &cpuMeter{}
	for _, field := range strings.FieldsFunc(pids, func(r rune) bool { return r == ',' || r == ' ' }) {
		pid, err := strconv.Atoi(field)
		if err == nil {
			_, err = proccpu.Of(pid)
		}
		if err != nil {
			return nil, fmt.Errorf("-pids %s: %w", field, err)
		}
		m.pids = append(m.pids, pid)
	}
	return m, nil
}

func (m *cpuMeter) start() {
	m.self0 = proccpu.Self()
	m.procs0 = m.procs0[:0]
	for _, pid := range m.pids {
		t, _ := proccpu.Of(pid)
		m.procs0 = append(m.procs0, t)
	}
}

func (m *cpuMeter) stop(r *result) {
	if r.Count == 0 {
		return
	}
	perOp := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(r.Count) }
	r.ClientCPU = perOp(proccpu.Self() - m.self0)
	for i, pid := range m.pids {
		if t, err := proccpu.Of(pid); err == nil {
			if r.ServerCPU == nil {
				r.ServerCPU = map[string]float64{}
			}
			r.ServerCPU[strconv.Itoa(pid)] = perOp(t - m.procs0[i])
		}
	}
}
