// Command webapp is a web app that signs users in with Auth0 or any OpenID
// Connect provider, or, with nothing configured, with an embedded
// development provider. `webapp -h` lists its flags and the environment
// variables that configure it; the README has the details.
package main

import (
	"context"
	"io"

	"github.com/gologin/gologin/internal/cli"
)

func main() { cli.Main(cli.Webapp) }

// run is the web app's cli.Run.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	return cli.Run(ctx, cli.Webapp, args, getenv, stdout)
}
