// Command devidp runs the development OpenID provider (package devidp) on its
// own, so apps written in any language can sign users in against it locally.
// Its sign-in page takes any name and email without a password: anyone who
// can reach it can sign in as anyone, so it listens on loopback addresses
// only unless told otherwise with -allow-remote. Its home page, at /, shows
// the issuer, the discovery URL and the registered clients, without their
// secrets.
//
// Usage:
//
//	go run ./cmd/devidp [flags]
//
// Every flag falls back to an environment variable; a flag given on the
// command line wins.
//
//	-addr ADDRESS       DEVIDP_ADDR          listen address (default 127.0.0.1:9000; port 0 picks a free port)
//	-allow-remote       DEVIDP_ALLOW_REMOTE  allow a listen address other than loopback
//	-issuer URL         DEVIDP_ISSUER        issuer URL (default http://localhost:PORT, PORT being the listen port)
//	-client SPEC        DEVIDP_CLIENTS       a client to register; repeat the flag, or separate specs with spaces in the variable
//	-key FILE           DEVIDP_KEY_FILE      signing key file, created if missing (default devidp-key.pem)
//	-name NAME          DEVIDP_NAME          name the sign-in page suggests (default Demo User)
//	-email EMAIL        DEVIDP_EMAIL         email the sign-in page suggests (default demo@example.com)
//	-require-par        DEVIDP_REQUIRE_PAR   refuse authorization requests not pushed to the PAR endpoint first
//	-dpop-nonce         DEVIDP_DPOP_NONCE    demand the provider's nonce in DPoP proofs
//
// A client SPEC is
//
//	id:secret:redirect_uri[,redirect_uri...][|post_logout_uri[,post_logout_uri...]][|backchannel=URI][|jwks=FILE][|par][|dpop]
//
// The ID and secret end at the first and second colon, so they cannot
// contain one; everything after the second colon is URLs, colons included.
// Redirect URIs are http or https URLs, compared exactly. Without a
// post-logout list, each redirect URI's origin followed by "/" is accepted
// (http://localhost:3000/callback allows http://localhost:3000/), which is
// where apps usually return after logout. With backchannel=URI the provider
// posts a logout token there when the user signs out at the provider.
// jwks=FILE registers the client's public keys, a JSON Web Key Set, for
// private_key_jwt client authentication; the secret may then be empty
// (id::redirect_uri|jwks=FILE), and the client must authenticate with its
// keys. A client with a secret of 32 bytes or more may also use
// client_secret_jwt. par makes the client push its authorization requests
// (PAR, RFC 9126); dpop refuses its token requests without a DPoP proof
// (RFC 9449). Quote specs in a shell: "|" is a pipe there. With no client
// given, devidp registers the client
// demo:demo-secret:http://localhost:3000/callback.
package main

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gologin/gologin/devidp"
	"github.com/gologin/gologin/internal/config"
	"github.com/gologin/gologin/internal/httpserver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "devidp:", err)
		os.Exit(1)
	}
}

// demoClient is registered when no client is configured, so that
// `go run ./cmd/devidp` alone serves an app on the usual port 3000.
const demoClient = "demo:demo-secret:http://localhost:3000/callback"

// run serves the provider configured by args and the environment until ctx
// is done. It returns nil for -h, after printing the usage.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseSettings(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	key, err := devidp.LoadOrCreateKey(cfg.keyFile)
	if err != nil {
		return err
	}
	// Listen before building the provider: with port 0 the default issuer
	// needs the port the system chose.
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	issuer := cfg.issuer
	if issuer == "" {
		issuer = fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port)
	}
	h, err := newHandler(cfg, issuer, key)
	if err != nil {
		return err
	}
	printStart(stdout, issuer, ln.Addr().String(), cfg)

	srv := httpserver.New(h, log.New(stderr, "devidp: ", log.LstdFlags))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	fmt.Fprintln(stdout, "shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// newHandler returns the provider for cfg at issuer, with the home page
// at /.
func newHandler(cfg settings, issuer string, key *rsa.PrivateKey) (http.Handler, error) {
	p, err := devidp.New(devidp.Config{
		Issuer:       issuer,
		Clients:      cfg.clients,
		Key:          key,
		DefaultName:  cfg.name,
		DefaultEmail: cfg.email,
		RequirePAR:   cfg.requirePAR,
		DPoPNonce:    cfg.dpopNonce,
	})
	if err != nil {
		return nil, err
	}
	home, err := homePage(issuer, cfg)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/", p)
	// "/{$}" is / alone: every other path is the provider's, whatever the
	// issuer's path.
	mux.Handle("GET /{$}", home)
	return mux, nil
}

func discoveryURL(issuer string) string {
	return strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
}

// homeTemplate is the page at /, for a developer setting up an app. It
// shows no client secrets: anyone who reaches the provider can read it.
var homeTemplate = template.Must(template.New("home").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Development OpenID provider</title>
<link rel="stylesheet" href="{{.Style}}">
</head>
<body>
<div class="banner" role="note"><strong>Development provider.</strong> For local development and tests only: anyone can sign in as anyone, without a password.</div>
<main>
<h1>Development OpenID provider</h1>
<p>Give your app this issuer; it finds the endpoints in the discovery document.</p>
<h2>Issuer</h2>
<p><code>{{.Issuer}}</code></p>
<h2>Discovery</h2>
<p><a href="{{.Discovery}}">{{.Discovery}}</a></p>
<h2>Registered clients</h2>
{{range .Clients}}<h3>Client <code>{{.ID}}</code></h3>
<p>Redirect URIs:</p>
<ul>{{range .RedirectURIs}}<li><code>{{.}}</code></li>{{end}}</ul>
<p>Post-logout redirect URIs:</p>
<ul>{{range .PostLogoutRedirectURIs}}<li><code>{{.}}</code></li>{{end}}</ul>
{{with .BackchannelLogoutURI}}<p>Back-channel logout URI: <code>{{.}}</code></p>
{{end}}<p>Authenticates with: {{.Auth}}.</p>
{{if .RequirePAR}}<p>Must push its authorization requests (PAR).</p>
{{end}}{{if .RequireDPoP}}<p>Must send DPoP proofs to the token endpoint.</p>
{{end}}{{end}}<p>The secrets are not shown here; devidp printed them when it started.</p>
{{if .RequirePAR}}<p>Every authorization request must be pushed to the PAR endpoint first.</p>
{{end}}{{if .DPoPNonce}}<p>DPoP proofs must carry the provider's nonce (DPoP-Nonce).</p>
{{end}}{{if .Demo}}<p>This is the demo client, registered because devidp was given no client.</p>
{{end}}<h2>Register clients</h2>
<p>Restart devidp with a <code>-client</code> flag for each client{{if .Demo}} (the demo client is then no longer registered){{end}}:</p>
<pre><code>devidp -client id:secret:redirect_uri</code></pre>
<p>such as <code>-client myapp:myapp-secret:http://localhost:8080/callback</code>, or list the specs in <code>DEVIDP_CLIENTS</code>, separated by spaces. Separate several redirect URIs with commas; they are compared exactly. <code>go doc ./cmd/devidp</code> describes post-logout and back-channel logout URIs, client keys (private_key_jwt), PAR and DPoP.</p>
</main>
</body>
</html>
`))

// homeClient is what the home page shows of a client: no secret, so the
// template cannot show it.
type homeClient struct {
	ID                     string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	BackchannelLogoutURI   string
	Auth                   string // how it may authenticate
	RequirePAR             bool
	RequireDPoP            bool
}

// authMethods says how c may authenticate at the token endpoint.
func authMethods(c devidp.Client) string {
	var m []string
	if c.Secret != "" {
		m = append(m, "client_secret_basic", "client_secret_post")
		if len(c.Secret) >= 32 {
			m = append(m, "client_secret_jwt")
		}
	}
	switch n := len(c.Keys); {
	case n == 1:
		m = append(m, "private_key_jwt (1 key)")
	case n > 1:
		m = append(m, fmt.Sprintf("private_key_jwt (%d keys)", n))
	}
	return strings.Join(m, ", ")
}

// homePage renders the home page once, as what it shows never changes.
func homePage(issuer string, cfg settings) (http.Handler, error) {
	u, err := url.Parse(issuer)
	if err != nil {
		return nil, err
	}
	data := struct {
		Issuer, Discovery, Style string
		Clients                  []homeClient
		Demo                     bool
		RequirePAR, DPoPNonce    bool
	}{
		Issuer:    issuer,
		Discovery: discoveryURL(issuer),
		// The provider serves its style sheet under the issuer's path.
		Style:      strings.TrimSuffix(u.Path, "/") + "/style.css",
		Demo:       cfg.demo,
		RequirePAR: cfg.requirePAR,
		DPoPNonce:  cfg.dpopNonce,
	}
	for _, c := range cfg.clients {
		data.Clients = append(data.Clients, homeClient{c.ID, c.RedirectURIs, c.PostLogoutRedirectURIs, c.BackchannelLogoutURI,
			authMethods(c), c.RequirePAR, c.RequireDPoP})
	}
	var page bytes.Buffer
	if err := homeTemplate.Execute(&page, data); err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
		h.Set("Referrer-Policy", "no-referrer")
		w.Write(page.Bytes())
	}), nil
}

// printStart tells the developer where the provider is and which clients
// it knows, secrets included: they are development credentials the
// developer chose or needs. The signing key is never printed.
func printStart(w io.Writer, issuer, listen string, cfg settings) {
	fmt.Fprintln(w, "devidp: development OpenID provider; anyone can sign in as anyone, so never let real users reach it")
	fmt.Fprintf(w, "issuer:      %s\n", issuer)
	fmt.Fprintf(w, "discovery:   %s\n", discoveryURL(issuer))
	fmt.Fprintf(w, "listening:   %s\n", listen)
	fmt.Fprintf(w, "signing key: %s\n", cfg.keyFile)
	if cfg.requirePAR {
		fmt.Fprintln(w, "PAR:         required for every authorization request")
	}
	if cfg.dpopNonce {
		fmt.Fprintln(w, "DPoP nonce:  required in DPoP proofs")
	}
	for _, c := range cfg.clients {
		if cfg.demo {
			fmt.Fprintf(w, "client %s (the demo client, since no -client or DEVIDP_CLIENTS was given)\n", c.ID)
		} else {
			fmt.Fprintf(w, "client %s\n", c.ID)
		}
		secret := c.Secret
		if secret == "" {
			secret = "(none: private_key_jwt only)"
		}
		fmt.Fprintf(w, "  secret:                    %s\n", secret)
		fmt.Fprintf(w, "  authenticates with:        %s\n", authMethods(c))
		fmt.Fprintf(w, "  redirect URIs:             %s\n", strings.Join(c.RedirectURIs, " "))
		fmt.Fprintf(w, "  post-logout redirect URIs: %s\n", strings.Join(c.PostLogoutRedirectURIs, " "))
		if c.BackchannelLogoutURI != "" {
			fmt.Fprintf(w, "  back-channel logout URI:   %s\n", c.BackchannelLogoutURI)
		}
		if c.RequirePAR {
			fmt.Fprintln(w, "  requires PAR")
		}
		if c.RequireDPoP {
			fmt.Fprintln(w, "  requires DPoP")
		}
	}
}

// settings are the command's configuration.
type settings struct {
	addr        string
	allowRemote bool
	issuer      string // empty: http://localhost:PORT of the listener
	clients     []devidp.Client
	demo        bool // no client was configured, so clients holds the demo client
	keyFile     string
	name, email string
	requirePAR  bool // every client must use PAR
	dpopNonce   bool // DPoP proofs need the provider's nonce
}

// envFallbacks names the variable each flag falls back to.
var envFallbacks = []struct{ flag, env string }{
	{"addr", "DEVIDP_ADDR"},
	{"allow-remote", "DEVIDP_ALLOW_REMOTE"},
	{"issuer", "DEVIDP_ISSUER"},
	{"client", "DEVIDP_CLIENTS"},
	{"key", "DEVIDP_KEY_FILE"},
	{"name", "DEVIDP_NAME"},
	{"email", "DEVIDP_EMAIL"},
	{"require-par", "DEVIDP_REQUIRE_PAR"},
	{"dpop-nonce", "DEVIDP_DPOP_NONCE"},
}

// parseSettings reads the flags in args, then the environment for flags not
// given, and checks the result. For -h it prints the usage to stderr and
// returns flag.ErrHelp.
func parseSettings(args []string, getenv func(string) string, stderr io.Writer) (settings, error) {
	var (
		c       settings
		clients clientList
	)
	fs := flag.NewFlagSet("devidp", flag.ContinueOnError)
	// Errors are returned rather than printed with the whole usage, which
	// only -h prints.
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:9000", "listen `address`; port 0 picks a free port (DEVIDP_ADDR)")
	fs.BoolVar(&c.allowRemote, "allow-remote", false, "allow a listen address other than loopback, letting anyone who reaches it sign in as anyone (DEVIDP_ALLOW_REMOTE)")
	fs.StringVar(&c.issuer, "issuer", "", "issuer `URL` (DEVIDP_ISSUER; default http://localhost:PORT of the listen address)")
	fs.Var(&clients, "client", "register a client; `spec` is id:secret:redirect_uri[,...][|post_logout_uri[,...]][|backchannel=URI][|jwks=FILE][|par][|dpop]; repeatable (DEVIDP_CLIENTS, space-separated; default "+demoClient+")")
	fs.StringVar(&c.keyFile, "key", "devidp-key.pem", "signing key `file`, created if missing (DEVIDP_KEY_FILE)")
	fs.StringVar(&c.name, "name", "Demo User", "`name` the sign-in page suggests (DEVIDP_NAME)")
	fs.StringVar(&c.email, "email", "demo@example.com", "`email` the sign-in page suggests (DEVIDP_EMAIL)")
	fs.BoolVar(&c.requirePAR, "require-par", false, "refuse authorization requests not pushed to the PAR endpoint first (DEVIDP_REQUIRE_PAR)")
	fs.BoolVar(&c.dpopNonce, "dpop-nonce", false, "demand the provider's nonce in DPoP proofs, so that clients' nonce retries run (DEVIDP_DPOP_NONCE)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: devidp [flags]\n\nA development OpenID provider. Each flag falls back to the environment variable in parentheses.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stderr)
		fs.Usage()
		return c, err
	} else if err != nil {
		return c, fmt.Errorf("%w (-h lists the flags)", err)
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	given := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, e := range envFallbacks {
		v := getenv(e.env)
		if given[e.flag] || v == "" {
			continue
		}
		values := []string{v}
		if e.flag == "client" {
			values = strings.Fields(v)
		}
		for _, v := range values {
			// Setting the flag parses the variable exactly as the flag.
			if err := fs.Set(e.flag, v); err != nil {
				return c, fmt.Errorf("%s: %w", e.env, err)
			}
		}
	}

	host, _, err := net.SplitHostPort(c.addr)
	if err != nil {
		return c, fmt.Errorf("listen address %q: %w", c.addr, err)
	}
	if !c.allowRemote && !config.IsLoopback(host) {
		return c, fmt.Errorf("listen address %q is not a loopback address: anyone who can reach it could sign in as anyone, "+
			"because the development provider asks for no password; use 127.0.0.1:PORT, or -allow-remote (DEVIDP_ALLOW_REMOTE=true) "+
			"if other hosts must reach it", c.addr)
	}
	if c.issuer != "" {
		if err := checkURL(c.issuer); err != nil {
			return c, fmt.Errorf("issuer: %w", err)
		}
		if u, _ := url.Parse(c.issuer); u.RawQuery != "" || u.ForceQuery {
			return c, fmt.Errorf("issuer %q has a query", c.issuer)
		}
	}
	if len(clients) == 0 {
		if err := clients.Set(demoClient); err != nil {
			return c, err
		}
		c.demo = true
	}
	seen := make(map[string]bool)
	for _, cl := range clients {
		if seen[cl.ID] {
			return c, fmt.Errorf("client %q is registered twice", cl.ID)
		}
		seen[cl.ID] = true
	}
	c.clients = clients
	return c, nil
}

// clientList is the repeatable -client flag.
type clientList []devidp.Client

// String implements flag.Value.
func (l *clientList) String() string {
	ids := make([]string, len(*l))
	for i, c := range *l {
		ids[i] = c.ID
	}
	return strings.Join(ids, " ")
}

// Set implements flag.Value: it parses and adds one client.
func (l *clientList) Set(spec string) error {
	c, err := parseClient(spec)
	if err != nil {
		return err
	}
	*l = append(*l, c)
	return nil
}

// parseClient parses a client spec (see the package documentation). It
// splits on the first two colons only, since the URLs after them contain
// colons of their own.
func parseClient(spec string) (devidp.Client, error) {
	id, rest, ok1 := strings.Cut(spec, ":")
	secret, rest, ok2 := strings.Cut(rest, ":")
	if !ok1 || !ok2 || id == "" || rest == "" {
		return devidp.Client{}, fmt.Errorf("client %q: want id:secret:redirect_uri[,redirect_uri...]", spec)
	}
	c := devidp.Client{ID: id, Secret: secret}
	// "|" cannot appear unescaped in a URI (RFC 3986), so it safely
	// separates the redirect URIs from the optional parts.
	parts := strings.Split(rest, "|")
	var err error
	if c.RedirectURIs, err = parseURLs(parts[0]); err != nil {
		return devidp.Client{}, fmt.Errorf("client %q: redirect URIs: %w (the ID and secret cannot contain colons)", id, err)
	}
	for _, part := range parts[1:] {
		switch part {
		case "par":
			c.RequirePAR = true
			continue
		case "dpop":
			c.RequireDPoP = true
			continue
		}
		if file, ok := strings.CutPrefix(part, "jwks="); ok {
			if c.Keys != nil {
				return devidp.Client{}, fmt.Errorf("client %q: more than one jwks= file", id)
			}
			if c.Keys, err = readKeys(file); err != nil {
				return devidp.Client{}, fmt.Errorf("client %q: %w", id, err)
			}
			continue
		}
		if uri, ok := strings.CutPrefix(part, "backchannel="); ok {
			if c.BackchannelLogoutURI != "" {
				return devidp.Client{}, fmt.Errorf("client %q: more than one backchannel= URI", id)
			}
			if err := checkURL(uri); err != nil {
				return devidp.Client{}, fmt.Errorf("client %q: back-channel logout URI: %w", id, err)
			}
			c.BackchannelLogoutURI = uri
			continue
		}
		if c.PostLogoutRedirectURIs != nil {
			return devidp.Client{}, fmt.Errorf("client %q: more than one list of post-logout redirect URIs", id)
		}
		if c.PostLogoutRedirectURIs, err = parseURLs(part); err != nil {
			return devidp.Client{}, fmt.Errorf("client %q: post-logout redirect URIs: %w", id, err)
		}
	}
	// Without a secret a client has only its keys to authenticate with.
	if secret == "" && c.Keys == nil {
		return devidp.Client{}, fmt.Errorf("client %q: want id:secret:redirect_uri[,redirect_uri...]; the secret may be empty only with jwks=FILE", spec)
	}
	if c.PostLogoutRedirectURIs == nil {
		c.PostLogoutRedirectURIs = origins(c.RedirectURIs)
	}
	return c, nil
}

// readKeys reads a client's public keys from a JSON Web Key Set file. The
// provider checks the keys' types when it starts.
func readKeys(file string) ([]jose.JSONWebKey, error) {
	if file == "" {
		return nil, errors.New("jwks= names no file")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("jwks: %s is not a JSON Web Key Set: %w", file, err)
	}
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("jwks: %s holds no key", file)
	}
	for _, k := range set.Keys {
		// A private key here would be a secret of the client's in the
		// provider's hands.
		if !k.IsPublic() {
			return nil, fmt.Errorf("jwks: %s holds a private key; give the client's public keys only", file)
		}
	}
	return set.Keys, nil
}

// parseURLs parses a comma-separated list of http(s) URLs.
func parseURLs(list string) ([]string, error) {
	urls := strings.Split(list, ",")
	for _, u := range urls {
		if err := checkURL(u); err != nil {
			return nil, err
		}
	}
	return urls, nil
}

// checkURL accepts absolute http and https URLs without a fragment. Other
// schemes are refused: a client with a secret is a web server, and a
// secret containing a colon would otherwise leave a plausible-looking
// "URL" such as "ret:http://..." after the second colon.
func checkURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case s == "":
		return errors.New("empty URL")
	case err != nil:
		return err
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		return fmt.Errorf("%q is not an absolute http or https URL", s)
	case u.Fragment != "":
		return fmt.Errorf("%q has a fragment", s)
	}
	return nil
}

// origins returns each distinct origin of urls followed by "/", the default
// post-logout redirect URIs.
func origins(urls []string) []string {
	var out []string
	for _, s := range urls {
		u, _ := url.Parse(s) // parseURLs checked it
		o := u.Scheme + "://" + u.Host + "/"
		if !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return out
}
