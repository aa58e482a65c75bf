package app

import (
	"net/url"

	"github.com/gologin/gologin/internal/gateway"
)

// newGateway sets up the reverse proxy to the upstream the gateway
// protects.
func (a *App) newGateway() error {
	gc := a.cfg.Gateway
	base, _ := url.Parse(a.cfg.BaseURL) // valid: config.Load checked it
	rules := gc.Rules
	for i := range rules {
		if rules[i].GroupsClaim == "" {
			rules[i].GroupsClaim = gc.GroupsClaim
		}
	}
	g, err := gateway.New(gateway.Config{
		Upstream: gc.Upstream, BaseURL: base, Prefix: gc.Prefix,
		Providers: a.providers, Public: gc.Public, Rules: rules, GroupsClaim: gc.GroupsClaim,
		PassAccessToken: gc.PassAccessToken, PassAuthorization: gc.PassAuthorization, PassHost: gc.PassHost,
		TrustedProxies: a.cfg.TrustedProxies,
		Transport:      a.metrics.instrumentUpstream(gateway.NewTransport(gc.UpstreamTimeout)),
		Logger:         a.log, ErrorHandler: a.renderError,
	})
	a.gateway = g
	return err
}
