package sessionstore

import (
	"context"
	"errors"
	"time"
)

// ErrLocked is returned by TryLock when another holder has the lock.
var ErrLocked = errors.New("sessionstore: lock is held")

// lockPoll is how often a waiting Lock retries. The stores poll for a lock
// rather than wait on a notification: simple, and a lock is held only for
// a token refresh.
const lockPoll = 10 * time.Millisecond

// waitLock calls try, which is a store's TryLock, until it takes the lock,
// fails otherwise, or ctx ends.
func waitLock(ctx context.Context, try func() (func(), error)) (func(), error) {
	for {
		unlock, err := try()
		if !errors.Is(err, ErrLocked) {
			return unlock, err
		}
		t := time.NewTimer(lockPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}
