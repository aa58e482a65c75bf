package devidp

import "time"

// SetClock makes p tell the time by now, so that tests can see what
// expires without waiting. Call it before p serves a request.
func SetClock(p *Provider, now func() time.Time) { p.now = now }
