package app

import (
	"errors"
	"net/http"

	"github.com/gologin/gologin/login"
)

// pageError is a failure that the app shows as its error page: its own
// (a page not found, the session store down, a panic) or the login
// package's, converted by asPageError.
type pageError struct {
	Status         int
	Title, Message string // for users: never a secret
	// Retry offers to sign in again, where that may help.
	Retry bool
	// Reason is a short machine-readable cause, for the log.
	Reason string
	Err    error // for the log only
}

func (e *pageError) Error() string {
	if e.Err != nil {
		return e.Title + ": " + e.Err.Error()
	}
	return e.Title
}

func (e *pageError) Unwrap() error { return e.Err }

// asPageError is err as the page that shows it: a 500 for errors that are
// neither the app's nor the login package's.
func asPageError(err error) *pageError {
	var pe *pageError
	if errors.As(err, &pe) {
		return pe
	}
	var le *login.Error
	if errors.As(err, &le) {
		return &pageError{Status: le.Status, Title: le.Title, Message: le.Message, Retry: le.Retry, Reason: le.Reason, Err: le.Err}
	}
	return &pageError{Status: http.StatusInternalServerError, Title: "Something went wrong", Message: "Please try again.",
		Reason: "internal", Err: err}
}
