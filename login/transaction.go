package login

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"
)

// A transaction is one login attempt: what the callback needs to finish it.
// It travels in a cookie of its own, encrypted and authenticated with the
// Auth's attempt key and bound to its state, so a login started by a client
// writes nothing server-side (a flood of anonymous /login requests cannot
// grow the store), logins started in several tabs each complete, and
// every instance sharing the key can finish it. The callback clears it.
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
	// TransactionLifetime is how long a started login can be completed.
	TransactionLifetime = 10 * time.Minute
	// MaxPendingLogins caps the login attempts one browser can have open;
	// starting another drops the oldest.
	MaxPendingLogins = 8
	maxStateLen      = 128
	// txCookiePrefix starts the name of each login attempt's cookie; the
	// rest names its state.
	txCookiePrefix = "login_tx_"
)

// attemptKeyInfo separates the attempt key from any other use of the
// client secret it may be derived from.
const attemptKeyInfo = "gologin login attempt cookie v1"

// newAttemptCipher returns the AEAD that seals attempt cookies: with
// cfg.AttemptKey when set, else with a key derived from what every
// instance of an app shares, the client secret or else the client key; it
// reports whether the key is such a shared one, not a random key of this
// process.
func newAttemptCipher(cfg *Config) (aead cipher.AEAD, shared bool, err error) {
	key, secret := cfg.AttemptKey, []byte(cfg.ClientSecret)
	if key == nil && len(secret) == 0 && cfg.ClientKey != nil {
		secret, _ = x509.MarshalPKCS8PrivateKey(cfg.ClientKey) // nil for keys it cannot write
	}
	if key == nil && len(secret) > 0 {
		if key, err = hkdf.Key(sha256.New, secret, nil, attemptKeyInfo, 32); err != nil {
			return nil, false, err
		}
	}
	shared = key != nil
	if key == nil {
		key = make([]byte, 32)
		rand.Read(key) // crypto/rand.Read never fails
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, false, err
	}
	aead, err = cipher.NewGCM(block)
	return aead, shared, err
}

// txCookieName is the name of state's attempt cookie: 128 bits of its
// SHA-256, so the name has only cookie-safe characters whatever the state
// holds, and the name, which seals the cookie as its additional data,
// binds the cookie to its state. A named provider's attempts carry its
// name too, which binds them to it: another provider's callback cannot
// open them (mix-up defence), nor does its Login count or clear them.
func (a *Auth) txCookieName(state string) string {
	sum := sha256.Sum256([]byte(state))
	name := a.txPrefix() + hex.EncodeToString(sum[:16])
	if a.secure {
		// __Host- cookies are https-only, host-only and path=/ (RFC 6265bis).
		return "__Host-" + name
	}
	return name
}

// txPrefix starts the names of this provider's attempt cookies.
func (a *Auth) txPrefix() string {
	if a.cfg.Name == "" {
		return txCookiePrefix
	}
	return txCookiePrefix + a.cfg.Name + "_"
}

// ownAttempt reports whether a cookie of that name is one of this
// provider's attempts.
func (a *Auth) ownAttempt(name string) bool {
	rest, ok := strings.CutPrefix(strings.TrimPrefix(name, "__Host-"), a.txPrefix())
	if !ok || len(rest) != 32 {
		return false
	}
	_, err := hex.DecodeString(rest)
	return err == nil
}

// attemptCookie is the cookie of one attempt; value empty clears it.
func (a *Auth) attemptCookie(name, value string) *http.Cookie {
	c := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, Secure: a.secure,
		SameSite: http.SameSiteLaxMode, MaxAge: int(TransactionLifetime / time.Second)}
	if a.formPost {
		// A cross-site POST carries only SameSite=None cookies, which
		// browsers accept only when Secure (as they treat localhost).
		c.SameSite, c.Secure = http.SameSiteNoneMode, true
	}
	if value == "" {
		c.MaxAge = -1
	}
	return c
}

// sealTransaction encrypts tx for state's cookie; the cookie's name, and so
// the state, is the additional data, so a cookie opens only for its state.
func (a *Auth) sealTransaction(name string, tx transaction) (string, error) {
	plain, err := json.Marshal(tx)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, a.attempts.NonceSize(), a.attempts.NonceSize()+len(plain)+a.attempts.Overhead())
	rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(a.attempts.Seal(nonce, nonce, plain, []byte(name))), nil
}

func (a *Auth) openTransaction(name, value string) (transaction, bool) {
	sealed, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(sealed) < a.attempts.NonceSize() {
		return transaction{}, false
	}
	n := a.attempts.NonceSize()
	plain, err := a.attempts.Open(nil, sealed[:n], sealed[n:], []byte(name))
	if err != nil {
		return transaction{}, false
	}
	var tx transaction
	if json.Unmarshal(plain, &tx) != nil {
		return transaction{}, false
	}
	return tx, true
}

// saveTransaction sets the cookie of state's attempt, clearing the oldest
// of the browser's open attempts beyond MaxPendingLogins, and unreadable or
// expired ones.
func (a *Auth) saveTransaction(w http.ResponseWriter, r *http.Request, state string, tx transaction) error {
	type pending struct {
		name    string
		started time.Time
		size    int
	}
	var open []pending
	for _, c := range r.Cookies() {
		if !a.ownAttempt(c.Name) {
			continue
		}
		old, ok := a.openTransaction(c.Name, c.Value)
		if !ok || tx.Started.Sub(old.Started) > TransactionLifetime {
			http.SetCookie(w, a.attemptCookie(c.Name, ""))
			continue
		}
		open = append(open, pending{c.Name, old.Started, len(c.Name) + len(c.Value)})
	}
	name := a.txCookieName(state)
	value, err := a.sealTransaction(name, tx)
	if err == nil && len(name)+len(value) > maxCookieSize {
		// Browsers drop larger cookies, and the login would then fail: a
		// return path that needs so much escaping is not worth that.
		tx.ReturnTo = "/"
		value, err = a.sealTransaction(name, tx)
	}
	if err != nil {
		return err
	}
	// The oldest attempts go first, beyond MaxPendingLogins or
	// maxAttemptBytes: every request of the browser carries these cookies
	// for ten minutes, and proxies refuse large Cookie headers.
	slices.SortFunc(open, func(a, b pending) int { return a.started.Compare(b.started) })
	total := len(name) + len(value)
	for _, p := range open {
		total += p.size
	}
	for len(open) > 0 && (len(open) >= MaxPendingLogins || total > maxAttemptBytes) {
		http.SetCookie(w, a.attemptCookie(open[0].name, ""))
		total -= open[0].size
		open = open[1:]
	}
	http.SetCookie(w, a.attemptCookie(name, value))
	return nil
}

// maxAttemptBytes bounds a browser's attempt cookies together, names and
// values, under the 8 KiB a Cookie header may have at nginx's default.
const maxAttemptBytes = 6 << 10

// maxCookieSize is the name and value size every browser keeps (RFC 6265
// 6.1 asks for at least 4096 bytes, attributes included).
const maxCookieSize = 3800

// takeTransaction clears the cookie of state's attempt and returns the
// attempt, if the browser sent it, it opens for state and has not expired.
func (a *Auth) takeTransaction(w http.ResponseWriter, r *http.Request, state string, now time.Time) (transaction, bool) {
	if state == "" || len(state) > maxStateLen {
		return transaction{}, false
	}
	name := a.txCookieName(state)
	c, err := r.Cookie(name)
	if err != nil {
		return transaction{}, false
	}
	http.SetCookie(w, a.attemptCookie(name, ""))
	tx, ok := a.openTransaction(name, c.Value)
	if !ok || now.Sub(tx.Started) > TransactionLifetime || tx.Started.After(now.Add(a.cfg.ClockSkew)) {
		return transaction{}, false
	}
	return tx, true
}
