package login

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// pushAuthorization sends the authorization request that authURL carries
// to the provider's PAR endpoint (RFC 9126) and returns the URL the
// browser goes to instead, which carries only client_id and the
// request_uri the provider answered with: the parameters never pass
// through the browser, where they could be read or changed.
func (a *Auth) pushAuthorization(ctx context.Context, d *discovered, authURL string) (string, error) {
	u, err := url.Parse(authURL)
	if err != nil {
		return "", err
	}
	form := u.Query()
	if d.authMethod == ClientSecretPost {
		form.Set("client_secret", a.cfg.ClientSecret)
	}
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.parURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if d.authMethod == ClientSecretBasic {
		// RFC 6749 2.3.1: each part form-encoded first, as x/oauth2 does.
		req.SetBasicAuth(url.QueryEscape(a.cfg.ClientID), url.QueryEscape(a.cfg.ClientSecret))
	}
	// The JWT methods' assertion is added by d.tokenClient's transport.
	resp, err := d.tokenClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var answer struct {
		RequestURI string `json:"request_uri"`
		Error      string `json:"error"`
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err := json.Unmarshal(body, &answer); err != nil && resp.StatusCode < 300 {
		return "", fmt.Errorf("pushed authorization request: unreadable answer: %w", err)
	}
	switch {
	case resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK:
		return "", fmt.Errorf("pushed authorization request: %s %s", resp.Status, truncate(answer.Error, 64))
	case answer.RequestURI == "":
		return "", errors.New("pushed authorization request: the answer has no request_uri")
	}
	q := url.Values{"client_id": {a.cfg.ClientID}, "request_uri": {answer.RequestURI}}
	u.RawQuery = q.Encode()
	return u.String(), nil
}
