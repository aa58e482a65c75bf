package proccpu

import (
	"os"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name string
		stat string
		want int64
		ok   bool
	}{
		// A real line (proc(5)): utime 1523 and stime 377 are fields 14
		// and 15.
		{"plain", "4242 (gateway) S 1 4242 4242 0 -1 4194560 1234 0 0 0 1523 377 0 0 20 0 9 0 123456 1234567 2345 18446744073709551615 1 1 0 0 0 0 0 0 2143420159 0 0 0 17 1 0 0 0 0 0\n", 1900, true},
		// The command name may hold spaces and parentheses: fields count
		// from the last ')'.
		{"odd name", "7 (a) b (c)) R 1 7 7 0 -1 0 0 0 0 0 10 5 0 0 20 0 1 0 1 1 1\n", 15, true},
		{"no name", "7 a R 1 7 7 0 -1 0 0 0 0 0 10 5\n", 0, false},
		{"truncated", "7 (a) R 1 7 7 0 -1 0 0 0 0 0 10\n", 0, false},
		{"not numbers", "7 (a) R 1 7 7 0 -1 0 0 0 0 0 x 5 0 0\n", 0, false},
		{"negative", "7 (a) R 1 7 7 0 -1 0 0 0 0 0 -1 5 0 0\n", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat([]byte(tt.stat))
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("parseStat = %d, %v; want %d, ok %v", got, err, tt.want, tt.ok)
			}
		})
	}
}

// Of reads this very process's stat file: its CPU time grows.
func TestOfSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	pid := os.Getpid()
	before, err := Of(pid)
	if err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); time.Since(start) < 50*time.Millisecond; {
	}
	after, err := Of(pid)
	if err != nil {
		t.Fatal(err)
	}
	if after < before || after == 0 {
		t.Errorf("CPU time went from %v to %v", before, after)
	}
}
