package testskip

import "testing"

func TestSkipLogSummary(t *testing.T) {
	tests := []struct {
		name string
		adds [][2]string // reason, remedy
		want string
	}{
		{"none", nil, ""},
		{"one", [][2]string{{"no X", "install X"}}, "pkg: skipped 1 test: no X (1): install X"},
		{
			"reasons sharing a remedy",
			[][2]string{{"A not set", "run S"}, {"B not set", "run S"}, {"A not set", "run S"}, {"no C", "install C"}, {"B not set", "run S"}},
			"pkg: skipped 5 tests: A not set (2), B not set (2): run S; no C (1): install C",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l Log
			for _, a := range tt.adds {
				l.Add(a[0], a[1])
			}
			if got := l.Summary("pkg"); got != tt.want {
				t.Errorf("summary\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}
