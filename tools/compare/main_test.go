package main

import (
	"testing"
)

func TestParseTarget(t *testing.T) {
	tg, err := parseTarget("upstream=http://127.0.0.1:47100/,pid=12,guest")
	if err != nil || tg.name != "upstream" || tg.base != "http://127.0.0.1:47100" || tg.pid != 12 || !tg.guest {
		t.Errorf("parseTarget = %+v, %v", tg, err)
	}
	for _, bad := range []string{"x", "=http://a", "x=ftp://a", "x=http://a,pid=0", "x=http://a,other"} {
		if _, err := parseTarget(bad); err == nil {
			t.Errorf("parseTarget(%q) accepted", bad)
		}
	}
}

func TestMedian(t *testing.T) {
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median of 3 = %v", m)
	}
	if m := median([]float64{4, 1, 2, 3}); m != 2.5 {
		t.Errorf("median of 4 = %v", m)
	}
	if m := median(nil); m != 0 {
		t.Errorf("median of none = %v", m)
	}
}

func TestParseSystemStat(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	got, err := parseSystemStat([]byte("cpu  100810 348 26336 165913 938 0 666 1859 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n"))
	if want := int64(100810 + 348 + 26336 + 666 + 1859); err != nil || got != want {
		t.Errorf("parseSystemStat = %d, %v; want %d", got, err, want)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4 5 6 7 8\n", "cpu 1 2 3\n", "cpu 1 2 x 4 5 6 7 8\n"} {
		if _, err := parseSystemStat([]byte(bad)); err == nil {
			t.Errorf("parseSystemStat(%q) accepted", bad)
		}
	}
}
