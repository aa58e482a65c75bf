package app

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/gologin/gologin/internal/gateway"
)

// newGateway sets up the reverse proxy to the upstream the gateway
// protects.
func (a *App) newGateway() error {
	gc := a.cfg.Gateway
	base, _ := url.Parse(a.cfg.BaseURL) // valid: config.Load checked it
	var names []string
	for _, p := range a.providers {
		names = append(names, p.Name())
	}
	for _, r := range gc.Rules {
		for _, p := range r.Providers {
			if a.providers.Named(p) == nil {
				return fmt.Errorf("AUTH_RULES_FILE: %s:%d: no provider is named %q (OIDC_PROVIDERS names them, and the main one is %q once there are several)",
					gc.RulesFile, r.Line, p, strings.Join(names, ", "))
			}
		}
	}
	g, err := gateway.New(gateway.Config{
		Upstream: gc.Upstream, BaseURL: base, Prefix: gc.Prefix,
		Providers: a.providers, Public: gc.Public, Rules: gc.Rules, GroupsClaim: gc.GroupsClaim,
		PassAccessToken: gc.PassAccessToken, PassAuthorization: gc.PassAuthorization, PassHost: gc.PassHost,
		TrustedProxies: a.cfg.TrustedProxies,
		Transport:      a.metrics.instrumentUpstream(gateway.NewTransport(gc.UpstreamTimeout)),
		Logger:         a.log, ErrorHandler: a.renderError,
	})
	a.gateway = g
	return err
}
