// Package cli is the command line of the programs, webapp and gateway: one
// run function, configured by environment variables and .env, listening,
// serving and shutting down the same way.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/joho/godotenv"

	"github.com/gologin/gologin/internal/app"
	"github.com/gologin/gologin/internal/config"
	"github.com/gologin/gologin/internal/gcfloor"
	"github.com/gologin/gologin/internal/httpserver"
	"github.com/gologin/gologin/login"
	"github.com/gologin/gologin/sessionstore/storeurl"
)

// gcHeapFloor is the smallest heap goal the garbage collector gets: with a
// live heap of a few MB, Go's default goal of 4 MB made the app collect
// about 65 times a second under load, a tenth of its CPU. An operator who
// sets GOGC or GOMEMLIMIT decides instead.
const gcHeapFloor = 32 << 20

// Main runs p as a process: until SIGINT or SIGTERM, with the process's
// arguments and environment, exiting 2 for a mistaken command line and 1
// for any other failure.
func Main(p Program) {
	if os.Getenv("GOGC") == "" && os.Getenv("GOMEMLIMIT") == "" {
		gcfloor.Keep(gcHeapFloor, 100)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := Run(ctx, p, os.Args, os.Getenv, os.Stdout)
	var usage *UsageError
	switch {
	case errors.As(err, &usage):
		// As Go's own commands do: the mistake, how to call the command,
		// and status 2, which scripts tell from a failed run.
		fmt.Fprintf(os.Stderr, "%s: %v\n\n%s", p.Name, err, usage.Usage)
		os.Exit(2)
	case err != nil:
		fmt.Fprintf(os.Stderr, "%s: %v\n", p.Name, err)
		os.Exit(1)
	}
}

// UsageError is a mistake on the command line; Usage is the help to show
// with it.
type UsageError struct {
	Err   error
	Usage string
}

func (e *UsageError) Error() string { return e.Err.Error() }

// Run starts program p and serves until ctx is done. With -check-config it
// only validates the configuration, fetching the provider's discovery
// document when one is configured, and reports the result. With -h it
// prints the usage to stdout and returns nil; a mistaken command line is a
// *UsageError.
func Run(ctx context.Context, p Program, args []string, getenv func(string) string, stdout io.Writer) error {
	flags := flag.NewFlagSet(args[0], flag.ContinueOnError)
	// The usage goes to stdout for -h and, through main, to stderr for a
	// mistake: the flag package's own printing would send both to one place.
	flags.SetOutput(io.Discard)
	checkOnly := flags.Bool("check-config", false, "validate the configuration and the provider's discovery document, then exit")
	printJWKS := flags.Bool("print-jwks", false, "print the public JWK set of OIDC_CLIENT_KEY_FILE, to register with the provider, then exit")
	var upstream *string
	if p.Gateway {
		upstream = flags.String("upstream", "", "URL of the app to protect; overrides UPSTREAM_URL")
	}
	err := flags.Parse(args[1:])
	if err == nil && flags.NArg() > 0 {
		err = fmt.Errorf("unexpected arguments %q: configure with environment variables or .env", flags.Args())
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		p.printUsage(stdout, flags)
		return nil
	case err != nil:
		var usage strings.Builder
		p.printUsage(&usage, flags)
		return &UsageError{err, usage.String()}
	}
	getenv, err = withDotenv(".env", getenv)
	if err != nil {
		return err
	}
	if upstream != nil && *upstream != "" {
		getenv = withVar(getenv, "UPSTREAM_URL", *upstream)
	}
	load := config.Load
	if p.Gateway {
		load = config.LoadGateway
	}
	cfg, err := load(getenv)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	if *printJWKS {
		if cfg.ClientKey == nil {
			return errors.New("-print-jwks: set OIDC_CLIENT_KEY_FILE to the client's private key")
		}
		jwks, err := login.PublicJWKS(cfg.ClientKey, cfg.ClientKeyID)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", jwks)
		return err
	}
	log := newLogger(cfg, stdout)

	if *checkOnly {
		a, err := app.New(cfg, log)
		if err != nil {
			return err
		}
		defer a.Close()
		return check(ctx, cfg, a, stdout)
	}

	ln, mln, err := listen(cfg, strings.TrimSpace(getenv("LISTEN_ADDR")) != "", log)
	if err != nil {
		return err
	}
	a, err := app.New(cfg, log)
	if err != nil {
		ln.Close()
		if mln != nil {
			mln.Close()
		}
		return err
	}
	defer a.Close()
	main := newServer(a, log)
	if p.Gateway {
		// WebSockets and event streams through the gateway last as long as
		// they last: whole-request deadlines would cut them. The
		// gateway's own routes bound themselves (app.New).
		main.ReadTimeout, main.WriteTimeout = 0, 0
	}
	servers := []*http.Server{main}
	listeners := []net.Listener{ln}
	if mln != nil {
		servers = append(servers, newServer(a.MetricsHandler(), log))
		listeners = append(listeners, mln)
		log.Info("serving metrics", "listen", mln.Addr().String())
	}
	log.Info("serving", "url", cfg.BaseURL, "listen", ln.Addr().String(), "config", a.Describe())
	errc := make(chan error, len(servers))
	for i, srv := range servers {
		go func() { errc <- srv.Serve(listeners[i]) }()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	// In-flight requests get this long to finish.
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	for _, srv := range servers {
		errs = append(errs, srv.Shutdown(sctx))
	}
	return errors.Join(errs...)
}

// listen binds the app's address and the metrics one (mln is nil when
// metrics are not served). It runs before the app is built, so that a port
// in use stops the app before it contacts the provider or makes a key.
// listenAddrSet says whether LISTEN_ADDR, rather than PORT, chose the
// address.
func listen(cfg config.Config, listenAddrSet bool, log *slog.Logger) (ln, mln net.Listener, err error) {
	ln, err = net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		fix := "set PORT or LISTEN_ADDR to a free port"
		if listenAddrSet {
			fix = "set LISTEN_ADDR to a free host:port (it overrides PORT)"
		}
		return nil, nil, listenError(cfg.ListenAddr, "LISTEN_ADDR", fix, err)
	}
	if cfg.MetricsAddr == "" {
		return ln, nil, nil
	}
	mln, err = net.Listen("tcp", cfg.MetricsAddr)
	switch {
	case err == nil:
		return ln, mln, nil
	case cfg.MetricsDefault:
		// Most likely another instance on this machine has the default
		// port: serving the app matters more than its metrics.
		log.Warn("metrics are not served: cannot listen on the default metrics address; set METRICS_ADDR=host:port to serve them elsewhere, or METRICS_ADDR=off",
			"listen", cfg.MetricsAddr, "error", err)
		return ln, nil, nil
	default:
		ln.Close()
		return nil, nil, listenError(cfg.MetricsAddr, "METRICS_ADDR", "set METRICS_ADDR to a free host:port, or to off", err)
	}
}

// listenError names the variable that chose addr and the fix. It keeps
// only the cause of err ("address already in use"): the rest repeats addr.
func listenError(addr, variable, fix string, err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		err = op.Err
	}
	var sys *os.SyscallError
	if errors.As(err, &sys) {
		err = sys.Err
	}
	return fmt.Errorf("cannot listen on %s (%s): %w; %s", addr, variable, err, fix)
}

// Variable is what the usage says of an environment variable, or of a few
// that go together.
type Variable struct{ Names, Default, Meaning string }

// Environment lists the variables the web app reads, in the order of
// README's configuration table (a test holds the two together).
var Environment = []Variable{
	{"PORT", "3000", "port to listen on"},
	{"LISTEN_ADDR", "127.0.0.1:PORT", "address to listen on; :PORT accepts other hosts (not with the development provider)"},
	{"APP_BASE_URL", "http://localhost:PORT", "the app's public URL; the provider returns to APP_BASE_URL/callback"},
	{"AUTH0_DOMAIN", "", "Auth0 tenant domain, such as dev-abc123.us.auth0.com"},
	{"AUTH0_CLIENT_ID", "", "Auth0 application's client ID"},
	{"AUTH0_CLIENT_SECRET", "", "Auth0 application's client secret"},
	{"OIDC_ISSUER", "", "issuer URL of any OpenID Connect provider"},
	{"OIDC_CLIENT_ID", "", "client ID registered with that provider"},
	{"OIDC_CLIENT_SECRET", "", "client secret registered with that provider"},
	{"OIDC_SCOPES", "openid profile email", "scopes to request, space-separated; must contain openid"},
	{"OIDC_CLIENT_KEY_FILE", "", "private key (PEM or JWK) for private_key_jwt instead of the client secret; Auth0 too"},
	{"OIDC_CLIENT_KEY_ID", "", "the key's ID as the provider registered it (Auth0 makes its own); default: its RFC 7638 thumbprint"},
	{"OIDC_ASSERTION_AUDIENCE", "token_endpoint", "aud of private_key_jwt assertions: token_endpoint, or issuer, as some providers want (Auth0's default)"},
	{"OIDC_USE_PAR", "false", "true requires pushed authorization requests; without it they are used when the provider offers them"},
	{"OIDC_DPOP", "false", "true binds each session's tokens to a key of its own (DPoP), kept with its tokens"},
	{"OIDC_RESPONSE_MODE", "query", "query, or form_post: the provider posts the sign-in response to /callback"},
	{"OIDC_PROVIDERS", "", "more providers beside the main one, such as corp,partner; each NAME reads OIDC_NAME_ISSUER, OIDC_NAME_CLIENT_ID, OIDC_NAME_CLIENT_SECRET"},
	{"AUTH0_AUDIENCE", "", "Auth0 API identifier: the access token is for that API"},
	{"SESSION_STORE", "sqlite:sessions.db", "sqlite:PATH, memory, redis://host:port/db, rediss://... or postgres://..."},
	{"SESSION_IDLE_TIMEOUT", "24h", "sign out after this long without a request"},
	{"SESSION_MAX_AGE", "168h", "sign out this long after signing in"},
	{"PROVIDER_TIMEOUT", "10s", "bound on each call to the provider"},
	{"CLOCK_SKEW", "1m", "leeway on ID token exp and iat"},
	{"LOG_FORMAT", "text", "text or json"},
	{"LOG_LEVEL", "info", "debug, info, warn or error"},
	{"METRICS_ADDR", config.DefaultMetricsAddr, "address of the listener serving /metrics; off serves none"},
	{"TRUSTED_PROXIES", "", "comma-separated CIDRs or IPs of proxies whose X-Forwarded-For is believed"},
}

// processEnvironment lists the variables that Go and the libraries read
// from the process's environment, which .env does not change.
var processEnvironment = []Variable{
	{"GOGC, GOMEMLIMIT", "", "Go's garbage collector; unset, the heap goal is kept at 32 MiB or more"},
	{"SSL_CERT_FILE, SSL_CERT_DIR", "", "CA certificates to trust instead of the system's, for a private CA"},
	{"HTTPS_PROXY, NO_PROXY", "", "proxy for the calls to the provider"},
	{"PGHOST, PGPASSWORD, PGSSLMODE...", "", "libpq's defaults for what a postgres:// SESSION_STORE leaves out"},
}

// printUsage writes the help of -h to w.
func (p Program) printUsage(w io.Writer, flags *flag.FlagSet) {
	fmt.Fprint(w, p.Usage)
	fmt.Fprint(w, `It is configured by the environment variables below, also read from a .env
file in the working directory (the environment wins).

Flags:
`)
	flags.SetOutput(w)
	flags.PrintDefaults()
	fmt.Fprintln(w, "\nEnvironment variables:")
	printVariables(w, p.Environment)
	fmt.Fprintln(w, "\nRead from the environment only, not from .env:")
	printVariables(w, processEnvironment)
}

// printVariables lists vars as flag.PrintDefaults lists flags.
func printVariables(w io.Writer, vars []Variable) {
	for _, v := range vars {
		fmt.Fprintf(w, "  %s", v.Names)
		if v.Default != "" {
			fmt.Fprintf(w, " (default %s)", v.Default)
		}
		fmt.Fprintf(w, "\n    \t%s\n", v.Meaning)
	}
}

// newServer is the app's http.Server, logging its errors as warnings.
func newServer(h http.Handler, log *slog.Logger) *http.Server {
	return httpserver.New(h, slog.NewLogLogger(log.Handler(), slog.LevelWarn))
}

// newLogger logs text or JSON, per LOG_FORMAT, at LOG_LEVEL.
func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// check reports whether the configured provider's discovery document can
// be fetched and matches its issuer; the configuration itself is valid by now.
func check(ctx context.Context, cfg config.Config, a *app.App, stdout io.Writer) error {
	fmt.Fprintf(stdout, "configuration valid: %s\n", a.Describe())
	// The app itself starts with its store down; a check says so.
	if err := a.PingStore(ctx); err != nil {
		return fmt.Errorf("SESSION_STORE=%s does not answer: %w", storeurl.Describe(cfg.SessionStore), err)
	}
	fmt.Fprintln(stdout, "session store: answers")
	if cfg.Provider == config.Dev {
		fmt.Fprintln(stdout, "provider: the embedded development provider (no discovery to check)")
		return nil
	}
	if err := a.Discover(ctx); err != nil {
		return fmt.Errorf("provider %s: %w", a.Issuer(), err)
	}
	fmt.Fprintf(stdout, "provider: discovery document of %s fetched and valid\n", a.Issuer())
	return nil
}

// withDotenv adds the variables of a .env file to getenv; the real
// environment wins. A missing file is fine.
func withDotenv(path string, getenv func(string) string) (func(string) string, error) {
	vars, err := godotenv.Read(path)
	if errors.Is(err, fs.ErrNotExist) {
		return getenv, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return func(k string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return vars[k]
	}, nil
}

// withVar is getenv with k set to v.
func withVar(getenv func(string) string, k, v string) func(string) string {
	return func(name string) string {
		if name == k {
			return v
		}
		return getenv(name)
	}
}
