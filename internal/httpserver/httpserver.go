// Package httpserver makes the http.Server of this module's programs.
package httpserver

import (
	"log"
	"net/http"
	"time"
)

// ReadTimeout and WriteTimeout bound a whole request: reading it, and
// writing its response.
const (
	ReadTimeout  = 15 * time.Second
	WriteTimeout = 30 * time.Second
)

// New is an http.Server for h whose timeouts and header limit bound slow
// or hostile clients, logging its own errors to errorLog.
func New(h http.Handler, errorLog *log.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          errorLog,
	}
}
