package sessionstore

import "time"

// SetRevokeTTL makes m revoke deleted tokens for only d, for the tests of
// tombstones' expiry.
func SetRevokeTTL(m *Memory, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.revokeTTL = d
}
