package gcfloor

import (
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
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
		{heap{live: 3 * mb}, 800},                 // 3 + 3 × 9.67 = 32 MB, but the minimum goal caps at 800
		{heap{live: 5 * mb}, 540},                 // 5 + 5 × 5.4 = 32 MB
		{heap{live: 7 * mb}, 358},                 // 7 + 7 × 3.5714… ≥ 32 MB: rounded up
		{heap{live: 16 * mb}, 100},                // GOGC's own goal reaches the floor
		{heap{live: 20 * mb}, 100},                // and passes it: never below gogc
		{heap{live: 64 * mb}, 100},                // far above
	} {
		if got := tu.percent(tt.heap); got != tt.want {
			t.Errorf("percent(%+v) = %d, want %d", tt.heap, got, tt.want)
		}
	}
}

func heapGoal() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestFloorRaisesTheHeapGoal: with a small live heap, the goal of the
// collections after Keep is at least the floor, so garbage is collected
// once per floor's worth instead of once per 4 MB; stop restores Go's goal.
func TestFloorRaisesTheHeapGoal(t *testing.T) {
	const floor = 32 << 20
	runtime.GC()
	if g := heapGoal(); g >= floor {
		t.Fatalf("heap goal before Keep: %d, want Go's default, under %d", g, floor)
	}

	stop := Keep(floor, 100)
	runtime.GC()
	// The adjustment runs on the runtime's cleanup goroutine after the
	// collection: wait for it (a bound against hanging, not a timing check).
	deadline := time.Now().Add(time.Minute)
	for heapGoal() < floor*99/100 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	g := heapGoal()
	stop()
	if g < floor*99/100 || g > 2*floor {
		t.Fatalf("heap goal with a floor of %d: %d", floor, g)
	}
	if g := heapGoal(); g >= floor {
		t.Fatalf("heap goal after stop: %d, want Go's default again", g)
	}
}
