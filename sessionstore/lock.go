package sessionstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"time"
)

// lockPoll is how often a waiting Lock retries.
const lockPoll = 10 * time.Millisecond

// lockWithTable takes a lock as a row of a locks table: insertSQL inserts
// (name, owner, until) or takes over a row whose until has passed (its last
// parameter is now); it reports success as one row affected.
func lockWithTable(ctx context.Context, db *sql.DB, name string, ttl time.Duration, insertSQL string) (func(), error) {
	owner := rand.Text()
	for {
		now := time.Now()
		res, err := db.ExecContext(ctx, insertSQL, name, owner, now.Add(ttl).UnixMilli(), now.UnixMilli())
		if err != nil {
			return nil, err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return func() {
				ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
				defer cancel()
				db.ExecContext(ctx, `DELETE FROM locks WHERE name = ? AND owner = ?`, name, owner)
			}, nil
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
