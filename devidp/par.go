package devidp

import (
	"net/http"
	"strings"
	"time"
)

// RequestURIPrefix begins every request_uri the PAR endpoint issues (RFC
// 9126 2.2).
const RequestURIPrefix = "urn:ietf:params:oauth:request_uri:"

// pushedRequest is an authorization request pushed to the PAR endpoint.
// Once its request_uri has been used (opened), it stands for the sign-in
// in progress, until the user signs in or cancels.
type pushedRequest struct {
	req     authRequest
	opened  bool
	expires time.Time
}

func (pr pushedRequest) expiry() time.Time { return pr.expires }

// handlePAR is the pushed authorization request endpoint (RFC 9126): an
// authenticated client posts the parameters of an authorization request,
// validated as at the authorization endpoint, and gets a request_uri that
// stands for them there, once, for RequestURILifetime.
func (p *Provider) handlePAR(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request", "unreadable form")
		return
	}
	// RFC 9126 2: the issuer, the token endpoint and the PAR endpoint all
	// name this provider as an assertion's audience.
	auth, problem := p.authenticate(r, p.issuer, p.endpoint("/token"), p.endpoint("/par"))
	if problem != "" {
		tokenError(w, http.StatusUnauthorized, "invalid_client", problem)
		return
	}
	if problem, code := p.spend(auth, nil); problem != "" {
		tokenError(w, http.StatusUnauthorized, code, problem)
		return
	}
	// Only the body counts (RFC 9126 2.1), never the query.
	form := r.PostForm
	switch id := form.Get("client_id"); {
	case id != "" && id != auth.client.ID:
		tokenError(w, http.StatusBadRequest, "invalid_request", "client_id is not the authenticated client")
		return
	case form.Has("request_uri"):
		tokenError(w, http.StatusBadRequest, "invalid_request", "request_uri cannot be pushed (RFC 9126 2.1)")
		return
	}
	form.Set("client_id", auth.client.ID)
	ar, e := p.checkAuthRequest(form, false)
	if e != nil {
		tokenError(w, http.StatusBadRequest, e.code, e.desc)
		return
	}
	key, ok := store(p, p.pushed, pushedRequest{req: ar, expires: p.now().Add(RequestURILifetime)})
	if !ok {
		tokenError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "too many outstanding pushed requests")
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{
		"request_uri": RequestURIPrefix + key,
		"expires_in":  int(RequestURILifetime.Seconds()),
	})
}

// openPushed uses the request_uri of a pushed request of clientID at the
// authorization endpoint: it works once, before it expires. The request
// then waits for the sign-in, for signInLifetime.
func (p *Provider) openPushed(clientID, requestURI string) (authRequest, bool) {
	key, ok := strings.CutPrefix(requestURI, RequestURIPrefix)
	if !ok {
		return authRequest{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	pr, ok := p.pushed[key]
	// Another client's request_uri is left alone: its client may use it.
	if !ok || pr.opened || now.After(pr.expires) || pr.req.ClientID != clientID {
		return authRequest{}, false
	}
	pr.opened, pr.expires = true, now.Add(signInLifetime)
	p.pushed[key] = pr
	pr.req.RequestURI = requestURI
	return pr.req, true
}

// pushedSignIn returns the pushed request whose sign-in form was posted.
func (p *Provider) pushedSignIn(clientID, requestURI string) (authRequest, bool) {
	key, _ := strings.CutPrefix(requestURI, RequestURIPrefix)
	p.mu.Lock()
	defer p.mu.Unlock()
	pr, ok := p.pushed[key]
	if !ok || !pr.opened || p.now().After(pr.expires) || pr.req.ClientID != clientID {
		return authRequest{}, false
	}
	pr.req.RequestURI = requestURI
	return pr.req, true
}

// closePushed ends the sign-in of a pushed request, reporting false if it
// had already ended. A direct request has nothing to close.
func (p *Provider) closePushed(ar authRequest) bool {
	if ar.RequestURI == "" {
		return true
	}
	key, _ := strings.CutPrefix(ar.RequestURI, RequestURIPrefix)
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.pushed[key]
	delete(p.pushed, key)
	return ok
}
