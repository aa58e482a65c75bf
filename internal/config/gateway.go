package config

import (
	"net/url"
	"strings"
	"time"

	"github.com/gologin/gologin/internal/gateway"
)

// Gateway is the configuration only the gateway has.
type Gateway struct {
	Upstream *url.URL // UPSTREAM_URL
	// Prefix, GATEWAY_PREFIX, is the path of the gateway's own routes:
	// /_auth by default, without a trailing slash.
	Prefix string
	Public []gateway.PublicPath // PUBLIC_PATHS
	// RulesFile, AUTH_RULES_FILE, holds Rules.
	RulesFile         string
	Rules             gateway.Rules
	GroupsClaim       string        // GROUPS_CLAIM
	PassAccessToken   bool          // PASS_ACCESS_TOKEN
	PassAuthorization bool          // PASS_AUTHORIZATION_HEADER
	PassHost          bool          // PASS_HOST_HEADER
	UpstreamTimeout   time.Duration // UPSTREAM_TIMEOUT
}

func loadGateway(env func(string) string, boolean func(string) bool, duration func(string, time.Duration) time.Duration,
	bad func(string, ...any)) *Gateway {
	g := &Gateway{
		Prefix:            strings.TrimRight(env("GATEWAY_PREFIX"), "/"),
		RulesFile:         env("AUTH_RULES_FILE"),
		GroupsClaim:       env("GROUPS_CLAIM"),
		PassAccessToken:   boolean("PASS_ACCESS_TOKEN"),
		PassAuthorization: boolean("PASS_AUTHORIZATION_HEADER"),
		PassHost:          env("PASS_HOST_HEADER") == "" || boolean("PASS_HOST_HEADER"),
		UpstreamTimeout:   duration("UPSTREAM_TIMEOUT", 30*time.Second),
	}
	if g.GroupsClaim == "" {
		g.GroupsClaim = "groups"
	}
	switch raw := env("UPSTREAM_URL"); {
	case raw == "":
		bad("UPSTREAM_URL is not set: set it to the app to protect, such as http://127.0.0.1:8080")
	default:
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			bad("UPSTREAM_URL=%q: want the app's URL, such as http://127.0.0.1:8080", raw)
		} else {
			g.Upstream = u
		}
	}
	if env("GATEWAY_PREFIX") == "" {
		g.Prefix = "/_auth"
	}
	if !strings.HasPrefix(g.Prefix, "/") || strings.ContainsAny(g.Prefix, "?#%{} ") || strings.Contains(g.Prefix, "//") {
		bad("GATEWAY_PREFIX=%q: want a path such as /_auth", env("GATEWAY_PREFIX"))
		g.Prefix = "/_auth"
	}
	var err error
	if g.Public, err = gateway.ParsePublicPaths(env("PUBLIC_PATHS")); err != nil {
		bad("PUBLIC_PATHS: %v", err)
	}
	if g.RulesFile != "" {
		if g.Rules, err = gateway.LoadRules(g.RulesFile); err != nil {
			bad("AUTH_RULES_FILE: %v", err)
		}
		for i, r := range g.Rules {
			if r.GroupsClaim == "" {
				g.Rules[i].GroupsClaim = g.GroupsClaim // the file names none
			}
		}
	}
	return g
}
