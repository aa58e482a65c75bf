package gcfloor

import (
	"runtime"
	"testing"
)

func TestPercent(t *testing.T) {
	const mb = 1 << 20
	tu := &tuner{floor: 32 * mb, gogc: 100}
	for _, tt := range []struct {
		heap heap
		want int
	}{
		{heap{}, 100},                             // before the first collection: no figure yet
		{heap{live: 2 * mb}, 800},                 // the minimum goal, 4 MB × 8, is the floor
		{heap{live: 8 * mb}, 300},                 // 8 + 8 × 3 = 32 MB
		{heap{live: 6 * mb, stacks: 2 * mb}, 325}, // 6 + 8 × 3.25 = 32 MB
		{heap{live: 16 * mb}, 100},                // GOGC's own goal reaches the floor
		{heap{live: 20 * mb}, 100},                // and passes it: never below gogc
		{heap{live: 64 * mb}, 100},                // far above
	} {
		if got := tu.percent(tt.heap); got != tt.want {
			t.Errorf("percent(%+v) = %d, want %d", tt.heap, got, tt.want)
		}
	}
}

// garbageGCs allocates 64 MB of short-lived garbage and reports how many
// collections ran meanwhile.
func garbageGCs() uint32 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 64 << 10 {
		sink = make([]byte, 1<<10)
	}
	runtime.ReadMemStats(&after)
	return after.NumGC - before.NumGC
}

var sink []byte

// TestFloorCutsCollections: with a small live heap, a floor of 32 MB makes
// 64 MB of garbage cost a few collections instead of one per 4 MB.
func TestFloorCutsCollections(t *testing.T) {
	runtime.GC()
	without := garbageGCs()

	stop := Keep(32<<20, 100)
	runtime.GC() // the first adjustment follows a collection
	runtime.GC()
	with := garbageGCs()
	stop()

	t.Logf("collections: %d without the floor, %d with it", without, with)
	if without < 8 || with > without/4 {
		t.Fatalf("collections for 64 MB of garbage: %d without the floor, %d with it; want at least 8, and a quarter or less", without, with)
	}
}
