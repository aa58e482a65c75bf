package sessionstore

import (
	"context"
	"time"
)

// lockPoll is how often a waiting Lock retries. The SQL and Redis stores
// poll for a lock rather than wait on a notification: simple, and a lock
// is held only for a token refresh.
const lockPoll = 10 * time.Millisecond

// lockWait waits lockPoll before a Lock tries again, or returns ctx's error
// when ctx ends first.
func lockWait(ctx context.Context) error {
	t := time.NewTimer(lockPoll)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
