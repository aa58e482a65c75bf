// Command webapp is a web app that signs users in with Auth0 or any OpenID
// Connect provider, or, with nothing configured, with an embedded
// development provider. See the README for its configuration.
package main

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
	"syscall"
	"time"

	"github.com/joho/godotenv"

	"github.com/gologin/gologin/internal/app"
	"github.com/gologin/gologin/internal/config"
	"github.com/gologin/gologin/internal/gcfloor"
)

// gcHeapFloor is the smallest heap goal the garbage collector gets: with a
// live heap of a few MB, Go's default goal of 4 MB made the app collect
// about 65 times a second under load, a tenth of its CPU. An operator who
// sets GOGC or GOMEMLIMIT decides instead.
const gcHeapFloor = 32 << 20

func main() {
	if os.Getenv("GOGC") == "" && os.Getenv("GOMEMLIMIT") == "" {
		gcfloor.Keep(gcHeapFloor, 100)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "webapp:", err)
		os.Exit(1)
	}
}

// run starts the app and serves until ctx is done. With -check-config it
// only validates the configuration, fetching the provider's discovery
// document when one is configured, and reports the result.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	flags := flag.NewFlagSet(args[0], flag.ContinueOnError)
	flags.SetOutput(stdout)
	checkOnly := flags.Bool("check-config", false, "validate the configuration and the provider's discovery document, then exit")
	if err := flags.Parse(args[1:]); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: configure with environment variables or .env", flags.Args())
	}
	getenv, err := withDotenv(".env", getenv)
	if err != nil {
		return err
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log := newLogger(cfg, stdout)

	a, err := app.New(cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	if *checkOnly {
		return check(ctx, cfg, a, stdout)
	}

	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("LISTEN_ADDR %s: %w", cfg.ListenAddr, err)
	}
	servers := []*http.Server{newServer(a, log)}
	listeners := []net.Listener{ln}
	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		switch {
		case err == nil:
			servers = append(servers, newServer(a.MetricsHandler(), log))
			listeners = append(listeners, mln)
			log.Info("serving metrics", "listen", mln.Addr().String())
		case cfg.MetricsDefault:
			// Most likely another instance on this machine has the default
			// port: serving the app matters more than its metrics.
			log.Warn("metrics are not served: cannot listen on the default metrics address; set METRICS_ADDR=host:port to serve them elsewhere, or METRICS_ADDR=off",
				"listen", cfg.MetricsAddr, "error", err)
		default:
			ln.Close()
			return fmt.Errorf("METRICS_ADDR %s: %w", cfg.MetricsAddr, err)
		}
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

// newServer is an http.Server with timeouts that bound slow clients.
func newServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
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
	if cfg.Provider == config.Dev {
		fmt.Fprintln(stdout, "provider: the embedded development provider (no discovery to check)")
		return nil
	}
	if err := a.Discover(ctx); err != nil {
		return fmt.Errorf("provider %s: %w", cfg.Issuer, err)
	}
	fmt.Fprintf(stdout, "provider: discovery document of %s fetched and valid\n", cfg.Issuer)
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
