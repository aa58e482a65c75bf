package login

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Rule is who may pass: a signed-in user must meet every condition the
// rule sets, and the zero Rule lets every signed-in user through.
type Rule struct {
	// Providers allows the users of these providers only, by Config.Name:
	// with several providers, the others' users may claim any email.
	Providers []string
	// Emails and EmailDomains allow users by address: the email claim must
	// be one of Emails or at a domain of EmailDomains (compared without
	// case). An address the provider marked unverified (email_verified
	// false, or "false") matches neither.
	Emails       []string
	EmailDomains []string
	// Groups allows the members of any of these groups, read from the
	// GroupsClaim claim of the ID token or userinfo.
	Groups []string
	// GroupsClaim names the claim with the user's groups: a string or an
	// array of strings. Default: groups. Auth0 needs a namespaced claim
	// such as https://example.com/roles, added by an Action.
	GroupsClaim string
	// Claims requires, for each claim it names, one of the listed values:
	// the claim is a string, a boolean or number written as in JSON, or an
	// array holding one of them.
	Claims map[string][]string
}

// Allows reports whether u meets every condition of r.
func (r Rule) Allows(u User) bool {
	if len(r.Emails) == 0 && len(r.EmailDomains) == 0 && len(r.Groups) == 0 && len(r.Claims) == 0 {
		return r.AllowsClaims(u, nil) // no claim to decode
	}
	return r.AllowsClaims(u, u.Claims())
}

// AllowsClaims is Allows for u's claims decoded already (User.Claims), as
// a proxy that checks every request keeps them.
func (r Rule) AllowsClaims(u User, claims map[string]any) bool {
	if len(r.Providers) > 0 && !slices.Contains(r.Providers, u.Provider) {
		return false
	}
	if len(r.Emails) > 0 || len(r.EmailDomains) > 0 {
		if !r.allowsEmail(u.Email, claims["email_verified"]) {
			return false
		}
	}
	if len(r.Groups) > 0 && !hasAny(claims[r.groupsClaim()], r.Groups) {
		return false
	}
	for name, values := range r.Claims {
		if !hasAny(claims[name], values) {
			return false
		}
	}
	return true
}

func (r Rule) groupsClaim() string {
	if r.GroupsClaim == "" {
		return "groups"
	}
	return r.GroupsClaim
}

// UserGroups returns u's groups as r reads them: the values of its
// GroupsClaim claim.
func (r Rule) UserGroups(u User) []string { return r.GroupsIn(u.Claims()) }

// GroupsIn is UserGroups for claims already decoded (User.Claims).
func (r Rule) GroupsIn(claims map[string]any) []string {
	return claimValues(claims[r.groupsClaim()])
}

func (r Rule) allowsEmail(email string, verified any) bool {
	// Some providers (Amazon Cognito's userinfo) send the string.
	if email == "" || verified == false || verified == "false" {
		return false
	}
	if slices.ContainsFunc(r.Emails, func(e string) bool { return strings.EqualFold(e, email) }) {
		return true
	}
	at := strings.LastIndexByte(email, '@')
	return at >= 0 && slices.ContainsFunc(r.EmailDomains, func(d string) bool { return strings.EqualFold(d, email[at+1:]) })
}

// hasAny reports whether a claim's value holds one of want.
func hasAny(claim any, want []string) bool {
	return slices.ContainsFunc(claimValues(claim), func(v string) bool { return slices.Contains(want, v) })
}

// claimValues is a claim's value as strings: a string or array of strings
// as they are, booleans and numbers as JSON writes them.
func claimValues(claim any) []string {
	var out []string
	add := func(v any) {
		switch v := v.(type) {
		case string:
			out = append(out, v)
		case bool:
			out = append(out, strconv.FormatBool(v))
		case float64:
			out = append(out, strconv.FormatFloat(v, 'f', -1, 64))
		}
	}
	if vs, ok := claim.([]any); ok {
		for _, v := range vs {
			add(v)
		}
	} else if claim != nil {
		add(claim)
	}
	return out
}

// Require is middleware that lets through the signed-in users rule allows.
// Guests are sent to sign in, as RequireUser does; a signed-in user the
// rule refuses gets a 403 through Config.ErrorHandler (Reason "forbidden"),
// never a redirect, which would loop.
func (a *Auth) Require(rule Rule) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		allowed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, _ := a.User(r)
			if !rule.Allows(u) {
				a.fail(w, r, "forbidden", nil)
				return
			}
			next.ServeHTTP(w, r)
		})
		return a.RequireUser(allowed)
	}
}

// LoginURL is the path that signs a guest in and then returns to
// returnTo, a local path (see SafeReturnTo); any other returnTo returns to
// "/".
func (a *Auth) LoginURL(returnTo string) string {
	if back, ok := SafeReturnTo(returnTo); ok && back != "/" {
		return a.cfg.LoginPath + "?" + url.Values{"returnTo": {back}}.Encode()
	}
	return a.cfg.LoginPath
}

// OwnsCookie reports whether a cookie of that name is the sign-in's: the
// session cookie or a login attempt's. A proxy that signs users in for
// another app removes these before passing a request on.
func (a *Auth) OwnsCookie(name string) bool {
	return name == a.cfg.Sessions.Cookie.Name || strings.HasPrefix(strings.TrimPrefix(name, "__Host-"), txCookiePrefix)
}
