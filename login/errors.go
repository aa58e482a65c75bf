package login

import (
	"errors"
	"net/http"
)

// Error is a failed login, callback, logout or token refresh.
type Error struct {
	// Status is the HTTP status that fits the failure.
	Status int
	// Title and Message say what went wrong in words a user understands;
	// they never carry secrets.
	Title, Message string
	// Err is the underlying cause, for logs only.
	Err error
	// Reason is a short machine-readable cause, such as "invalid_state" or
	// "invalid_id_token": a key of the package's table of failures.
	Reason string
	// Retry reports whether starting to sign in again may succeed, for
	// pages that offer a way to do so.
	Retry bool
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Title + ": " + e.Err.Error()
	}
	return e.Title
}

func (e *Error) Unwrap() error { return e.Err }

// failure is what users are told of a failure.
type failure struct {
	status         int
	title, message string
	retry          bool
}

const tryAgain = " Please start signing in again."

// failures has every failure the package reports, by Reason, so that each
// is worded once.
var failures = map[string]failure{
	"internal":             {http.StatusInternalServerError, "Something went wrong", "Please try again.", true},
	"provider_unavailable": {http.StatusServiceUnavailable, "Sign-in is unavailable", "We cannot reach the sign-in provider right now. Please try again in a moment.", true},
	"missing_state":        {http.StatusBadRequest, "Sign-in link incomplete", "This sign-in response is missing its state." + tryAgain, true},
	"invalid_state":        {http.StatusBadRequest, "Sign-in expired", "This sign-in attempt is unknown, expired or already used." + tryAgain, true},
	"access_denied":        {http.StatusBadRequest, "Sign-in cancelled", "You cancelled sign-in.", true},
	"provider_error":       {http.StatusBadRequest, "Sign-in not completed", "The sign-in provider did not sign you in.", true},
	"issuer_mismatch":      {http.StatusBadRequest, "Sign-in failed", "The sign-in response came from an unexpected provider.", false},
	"wrong_response_mode":  {http.StatusBadRequest, "Sign-in failed", "This sign-in response did not come the way it was asked for." + tryAgain, true},
	"missing_code":         {http.StatusBadRequest, "Sign-in failed", "The sign-in response carries no authorization code." + tryAgain, true},
	"code_refused":         {http.StatusBadRequest, "Sign-in failed", "The sign-in provider refused this sign-in." + tryAgain, true},
	"par_failed":           {http.StatusBadGateway, "Sign-in is unavailable", "The sign-in provider did not take our sign-in request. Please try again.", true},
	"timeout":              {http.StatusGatewayTimeout, "Sign-in timed out", "The sign-in provider did not answer in time. Please try again.", true},
	"provider_failed":      {http.StatusBadGateway, "Sign-in failed", "The sign-in provider failed to complete the sign-in. Please try again.", true},
	"no_id_token":          {http.StatusBadGateway, "Sign-in failed", "The sign-in provider sent no ID token.", false},
	"userinfo_mismatch":    {http.StatusBadGateway, "Sign-in failed", "The sign-in provider's answers do not agree.", false},
	"invalid_id_token":     {http.StatusBadRequest, "Sign-in failed", "The sign-in provider's answer could not be verified. Please try again.", true},
	"session_store":        {http.StatusServiceUnavailable, "Sign-in failed", "We could not start your session. Please try again.", true},
	"logout_unconfirmed":   {http.StatusForbidden, "Sign-out not confirmed", "This sign-out request did not come from this site's sign-out button. Use the button to sign out.", false},
	"logout_failed":        {http.StatusServiceUnavailable, "Sign-out failed", "We could not end your session. Please try again.", false},
	"session_unavailable":  {http.StatusServiceUnavailable, "Session unavailable", "We could not reach our session storage. Please try again.", false},
	"sign_in_required":     {http.StatusUnauthorized, "Sign-in required", "Please sign in first.", true},
	"other_provider":       {http.StatusInternalServerError, "Something went wrong", "Your sign-in belongs to another provider. Please try again.", false},
	"forbidden":            {http.StatusForbidden, "Not allowed", "Your account may not open this page. Sign out to sign in with another account.", false},
	"session_ended":        {http.StatusUnauthorized, "Session ended", "Your sign-in has ended. Please sign in again.", true},
	"refresh_failed":       {http.StatusBadGateway, "Provider failed", "The sign-in provider failed to renew your access. Please try again.", false},
}

// NewError returns the failure of reason, worded as the package words it
// (see Error.Reason), with cause for the log. An unknown reason is an
// internal error.
func NewError(reason string, err error) *Error {
	f, ok := failures[reason]
	if !ok {
		reason, f = "internal", failures["internal"]
	}
	return &Error{Status: f.status, Title: f.title, Message: f.message, Err: err, Reason: reason, Retry: f.retry}
}

// asError returns err as an *Error, wrapping other errors as an internal
// failure.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return NewError("internal", err)
}

// providerError is the failure of an authorization response that carries
// an error (RFC 6749 4.1.2.1): the provider's own description when it gives
// one, else words for the code.
func providerError(code, description string) *Error {
	reason := "provider_error"
	if code == "access_denied" {
		reason = "access_denied"
	}
	e := NewError(reason, errors.New("authorization response error "+truncate(code, 64)))
	switch {
	case description != "":
		e.Message = "The sign-in provider said: " + truncate(description, 300)
	case reason == "provider_error":
		e.Message = "The sign-in provider did not sign you in (" + truncate(code, 64) + ")."
	}
	return e
}
