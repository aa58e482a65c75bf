// Package gcfloor keeps the garbage collector's heap goal at or above a
// floor while the live heap is small.
//
// Go starts a collection when the heap reaches (1 + GOGC/100) times the
// live heap, and at least 4 MB. A server whose live heap is a few
// megabytes but which allocates tens of megabytes a second, as a web app
// under load does, then collects dozens of times a second. Holding the goal
// at a floor of a few tens of megabytes cuts that to a few collections a
// second; once the live heap is large enough for GOGC's own goal to pass
// the floor, GOGC applies unchanged.
//
// The runtime has no setting for a floor (GOMEMLIMIT bounds the heap from
// above), so after each collection the floor is turned into the GOGC
// percentage of the next one. The first collection still comes at Go's
// 4 MB; and the percentage follows the live heap one cycle late, so after a
// sudden rise of the live heap one cycle can still use a higher percentage
// (at most floor/4 MB × 100).
package gcfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// Keep sets, after every collection, the GOGC percentage that makes the
// next heap goal at least floor bytes, and never less than gogc. It
// returns a function that stops the adjustments and restores the
// percentage in force before.
func Keep(floor uint64, gogc int) (stop func()) {
	prev := debug.SetGCPercent(gogc)
	t := &tuner{floor: floor, gogc: gogc}
	t.arm()
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		t.stopped = true
		debug.SetGCPercent(prev)
	}
}

type tuner struct {
	floor uint64
	gogc  int

	mu      sync.Mutex // so that no adjustment follows stop's restore
	stopped bool
}

// sentinel is an object only the collector can end: its cleanup runs after
// each collection, and arms the next one.
type sentinel struct{ _ [16]byte }

func (t *tuner) arm() {
	runtime.AddCleanup(new(sentinel), func(t *tuner) {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.stopped {
			return
		}
		debug.SetGCPercent(t.percent(readHeap()))
		t.arm()
	}, t)
}

// heap is what the last collection found: the heap it marked live, and
// the goroutine stacks and globals it scanned, which GOGC also scales.
type heap struct{ live, stacks, globals uint64 }

// minimumGoal is the runtime's smallest heap goal at GOGC=100; it scales
// with GOGC.
const minimumGoal = 4 << 20

// percent is the GOGC that puts the next heap goal at the floor, which is
// live + (live + stacks + globals) × GOGC/100, and at least minimumGoal ×
// GOGC/100.
func (t *tuner) percent(h heap) int {
	if h.live == 0 || h.live >= t.floor {
		return t.gogc
	}
	// Rounded up, so the goal reaches the floor.
	scanned := h.live + h.stacks + h.globals
	p := min(((t.floor-h.live)*100+scanned-1)/scanned, t.floor*100/minimumGoal)
	return max(t.gogc, int(p))
}

func readHeap() heap {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}
	metrics.Read(s)
	v := make([]uint64, len(s))
	for i := range s {
		if s[i].Value.Kind() == metrics.KindUint64 {
			v[i] = s[i].Value.Uint64()
		}
	}
	return heap{live: v[0], stacks: v[1], globals: v[2]}
}
