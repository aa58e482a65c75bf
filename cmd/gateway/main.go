// Command gateway puts sign-in in front of any web app: a reverse proxy,
// and forward-auth endpoints for nginx, Traefik, Caddy and Envoy, that sign
// users in with Auth0 or any OpenID Connect provider, or, with nothing
// configured, with an embedded development provider. `gateway -h` lists its
// flags and the environment variables that configure it; the README's
// "Protect any web app" has the details.
package main

import "github.com/gologin/gologin/internal/cli"

func main() { cli.Main(cli.Gateway) }
