// Package storekit holds what the session stores of this module share and
// their users need not see.
package storekit

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"time"
)

// PurgeEvery calls purge every d until done is closed.
func PurgeEvery(d time.Duration, done <-chan struct{}, purge func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			purge()
		}
	}
}

// Unreachable reports whether err is a failure to reach a server, which
// time may mend, rather than a refusal or a broken configuration.
func Unreachable(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded)
}

// Connect calls connect, which reaches a store's server and prepares it
// (a ping, a migration), once within ctx. If that fails because the server
// cannot be reached, Connect logs a warning to log (slog.Default() if nil),
// goes on calling connect in the background until it succeeds or done is
// closed, waiting a second and then up to 30 seconds between tries, and
// returns nil: the store's calls fail meanwhile. Any other failure it
// returns.
func Connect(ctx context.Context, done <-chan struct{}, log *slog.Logger, store string, connect func(context.Context) error) error {
	err := connect(ctx)
	if err == nil || !Unreachable(err) {
		return err
	}
	if log == nil {
		log = slog.Default()
	}
	log.Warn("session store unreachable: its calls fail until it answers", "store", store, "error", err)
	go func() {
		// Tries end when the store closes, not only on their deadline.
		stop, cancelAll := context.WithCancel(context.Background())
		defer cancelAll()
		go func() {
			select {
			case <-done:
			case <-stop.Done():
			}
			cancelAll()
		}()
		for delay := time.Second; ; delay = min(2*delay, 30*time.Second) {
			select {
			case <-stop.Done():
				return
			case <-time.After(delay):
			}
			ctx, cancel := context.WithTimeout(stop, 10*time.Second)
			err := connect(ctx)
			cancel()
			switch {
			case err == nil:
				log.Info("session store connected", "store", store)
				return
			case stop.Err() != nil:
				return
			case Unreachable(err):
				log.Warn("session store still unreachable; will retry", "store", store, "error", err)
			default:
				// It answers now, but refuses: a configuration to fix.
				log.Error("session store refuses the app; will retry", "store", store, "error", err)
			}
		}
	}()
	return nil
}
