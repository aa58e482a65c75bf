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

// WaitLock implements a store's Lock with its TryLock: it calls try until
// try takes the lock, fails otherwise, or ctx ends.
func WaitLock(ctx context.Context, try func() (func(), error)) (func(), error) {
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
