package login

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/gologin/gologin/sessionstore"
)

// A transaction is one login attempt: what the callback needs to finish it.
// It lives in the browser's session, server-side, under its state, so logins
// started in several tabs each complete, and it is removed when used.
type transaction struct {
	Nonce    string
	Verifier string // PKCE code verifier (RFC 7636)
	ReturnTo string
	Started  time.Time
	// MaxAge, when CheckMaxAge, is the max_age the login asked for.
	MaxAge      int
	CheckMaxAge bool
}

const (
	txPrefix = "login.tx."
	// TransactionLifetime is how long a started login can be completed.
	TransactionLifetime = 10 * time.Minute
	// MaxPendingLogins caps the login attempts one browser can have open;
	// starting another drops the oldest.
	MaxPendingLogins = 8
	maxStateLen      = 128
)

func init() {
	sessionstore.RegisterType("login.transaction", transaction{})
}

// saveTransaction stores tx under state, dropping expired attempts and the
// oldest ones beyond MaxPendingLogins.
func saveTransaction(ctx context.Context, sm *scs.SessionManager, state string, tx transaction) {
	type pending struct {
		key     string
		started time.Time
	}
	var open []pending
	for _, k := range sm.Keys(ctx) {
		if !strings.HasPrefix(k, txPrefix) {
			continue
		}
		old, ok := sm.Get(ctx, k).(transaction)
		if !ok || tx.Started.Sub(old.Started) > TransactionLifetime {
			sm.Remove(ctx, k)
			continue
		}
		open = append(open, pending{k, old.Started})
	}
	slices.SortFunc(open, func(a, b pending) int { return a.started.Compare(b.started) })
	for len(open) >= MaxPendingLogins {
		sm.Remove(ctx, open[0].key)
		open = open[1:]
	}
	sm.Put(ctx, txPrefix+state, tx)
}

// takeTransaction removes and returns the transaction of state, if it exists
// and has not expired.
func takeTransaction(ctx context.Context, sm *scs.SessionManager, state string, now time.Time) (transaction, bool) {
	if state == "" || len(state) > maxStateLen {
		return transaction{}, false
	}
	tx, ok := sm.Pop(ctx, txPrefix+state).(transaction)
	if !ok || now.Sub(tx.Started) > TransactionLifetime {
		return transaction{}, false
	}
	return tx, true
}
