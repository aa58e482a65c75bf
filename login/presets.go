package login

import (
	"net/url"
	"strings"
)

// Auth0 returns a Config for the Auth0 tenant at domain, such as
// dev-abc123.us.auth0.com (a custom domain works too): the issuer
// https://DOMAIN/ with the trailing slash Auth0's tokens carry,
// client_secret_post at the token endpoint (an Auth0 application's
// default), and logout through Auth0's /v2/logout, which also ends the
// tenant's session. With a ClientKey, its private_key_jwt assertions are
// addressed to the tenant, as Auth0 asks. A non-empty audience, the identifier of an API
// registered in Auth0, is sent as Auth0's audience parameter, so that the
// access token is one for that API. Fill in the client and the URLs:
//
//	cfg := login.Auth0("dev-abc123.us.auth0.com", "")
//	cfg.ClientID, cfg.ClientSecret = id, secret
func Auth0(domain, audience string) Config {
	domain = strings.TrimSuffix(strings.TrimPrefix(domain, "https://"), "/")
	issuer := "https://" + domain + "/"
	cfg := Config{
		Issuer:          issuer,
		TokenAuthMethod: ClientSecretPost,
		ProviderLogout:  Auth0Logout,
		// Auth0 wants its tenant's URL as a private_key_jwt assertion's aud.
		ClientAssertionAudience: issuer,
	}
	if audience != "" {
		cfg.AuthParams = url.Values{"audience": {audience}}
	}
	return cfg
}
