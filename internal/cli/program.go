package cli

import (
	"slices"

	"github.com/gologin/gologin/internal/config"
)

// Program is one of the commands: its name, what -h says of it, and the
// variables it reads.
type Program struct {
	Name  string
	Usage string // the start of -h
	// Gateway makes the program protect an upstream: it reads the gateway
	// variables and takes the -upstream flag.
	Gateway     bool
	Environment []Variable
}

// Webapp is the web app.
var Webapp = Program{
	Name: "webapp",
	Usage: `Usage: webapp [-check-config | -print-jwks]

webapp serves a web app that signs users in with Auth0 or any OpenID Connect
provider or, with neither configured, with an embedded development provider
for local use, by default on http://localhost:3000.
`,
	Environment: Environment,
}

// Gateway is the gateway, which puts sign-in in front of another web app.
var Gateway = Program{
	Name: "gateway",
	Usage: `Usage: gateway [-upstream URL] [-check-config | -print-jwks]

gateway puts sign-in in front of the web app at UPSTREAM_URL, by default on
http://localhost:4180: a reverse proxy that signs users in with Auth0 or any
OpenID Connect provider (or, with neither configured, an embedded development
provider) and passes their requests on with their identity in X-Forwarded-User,
X-Forwarded-Email, X-Forwarded-Preferred-Username and X-Forwarded-Groups. Its
own routes are under GATEWAY_PREFIX: sign-in, callback, logout, back-channel
logout, health, and the forward-auth endpoints auth (nginx), verify (Traefik,
Caddy) and envoy/ (Envoy).
`,
	Gateway:     true,
	Environment: gatewayEnvironment(),
}

// gatewayEnvironment is the web app's variables, as the gateway reads
// them, and the gateway's own.
func gatewayEnvironment() []Variable {
	vars := slices.Clone(Environment)
	for i, v := range vars {
		switch v.Names {
		case "PORT":
			vars[i].Default = config.DefaultGatewayPort
		case "APP_BASE_URL":
			vars[i].Meaning = "the gateway's public URL; the provider returns to APP_BASE_URL/_auth/callback"
		}
	}
	return append(vars,
		Variable{"UPSTREAM_URL", "", "the app to protect, such as http://127.0.0.1:8080 (required; or -upstream)"},
		Variable{"GATEWAY_PREFIX", "/_auth", "path of the gateway's own routes, kept from the upstream"},
		Variable{"PUBLIC_PATHS", "", "comma-separated [METHODS=]PATH proxied without sign-in: a /prefix, or a ^regexp; METHODS such as GET|HEAD"},
		Variable{"AUTH_RULES_FILE", "", "YAML file of rules: who may reach which host and path (see README)"},
		Variable{"GROUPS_CLAIM", "groups", "claim holding the user's groups, for X-Forwarded-Groups and the rules"},
		Variable{"PASS_ACCESS_TOKEN", "false", "true adds X-Forwarded-Access-Token with the user's access token"},
		Variable{"PASS_AUTHORIZATION_HEADER", "false", "true adds Authorization: Bearer with the user's access token"},
		Variable{"PASS_HOST_HEADER", "true", "false sends the upstream URL's Host rather than the browser's"},
		Variable{"UPSTREAM_TIMEOUT", "30s", "bound on the wait for the upstream's response headers"},
	)
}
