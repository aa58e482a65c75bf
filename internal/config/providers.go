package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// NamedProvider is an OpenID provider offered beside the main one, read
// from OIDC_<NAME>_ISSUER, OIDC_<NAME>_CLIENT_ID and
// OIDC_<NAME>_CLIENT_SECRET for each NAME of OIDC_PROVIDERS.
type NamedProvider struct {
	Name                           string
	Issuer, ClientID, ClientSecret string
}

// providerName is what a name in OIDC_PROVIDERS may be: it appears in
// paths, cookie names and variable names.
var providerName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// loadMoreProviders reads OIDC_PROVIDERS.
func (c *Config) loadMoreProviders(env func(string) string) []error {
	list := env("OIDC_PROVIDERS")
	if list == "" {
		return nil
	}
	if c.Provider == Dev || c.Provider == "" {
		return []error{fmt.Errorf("OIDC_PROVIDERS adds providers beside the main one: configure that one first, with AUTH0_* or OIDC_*")}
	}
	var errs []error
	for name := range strings.SplitSeq(list, ",") {
		name = strings.TrimSpace(name)
		if !providerName.MatchString(name) {
			errs = append(errs, fmt.Errorf("OIDC_PROVIDERS: %q is not a name of lower-case letters, digits and '-', starting with a letter", name))
			continue
		}
		if name == string(Auth0) || name == string(OIDC) || name == string(Dev) {
			errs = append(errs, fmt.Errorf("OIDC_PROVIDERS: %q is the main provider's name (its kind); choose another", name))
			continue
		}
		if slices.ContainsFunc(c.MoreProviders, func(p NamedProvider) bool { return p.Name == name }) {
			errs = append(errs, fmt.Errorf("OIDC_PROVIDERS: %q is listed twice", name))
			continue
		}
		prefix := "OIDC_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_"
		p := NamedProvider{Name: name, Issuer: env(prefix + "ISSUER"), ClientID: env(prefix + "CLIENT_ID"), ClientSecret: env(prefix + "CLIENT_SECRET")}
		var missing []string
		for k, v := range map[string]string{"ISSUER": p.Issuer, "CLIENT_ID": p.ClientID, "CLIENT_SECRET": p.ClientSecret} {
			if v == "" {
				missing = append(missing, prefix+k)
			}
		}
		if len(missing) > 0 {
			slices.Sort(missing)
			errs = append(errs, fmt.Errorf("OIDC_PROVIDERS lists %s but %s missing", name, strings.Join(missing, ", ")))
			continue
		}
		if err := checkIssuer(prefix+"ISSUER", p.Issuer); err != nil {
			errs = append(errs, err)
			continue
		}
		c.MoreProviders = append(c.MoreProviders, p)
	}
	return errs
}
