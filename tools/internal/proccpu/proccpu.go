// Package proccpu reads the CPU time that processes have used, for the
// measurement tools' CPU per request.
package proccpu

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Self is this process's user and system CPU time.
func Self() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Of is a process's user and system CPU time, all its threads
// included, from /proc/PID/stat.
func Of(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	ticks, err := parseStat(b)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return time.Duration(ticks) * time.Second / UserHZ, nil
}

// UserHZ is the unit of the times in /proc/PID/stat and /proc/stat, clock ticks: USER_HZ,
// which Linux fixes at 100 for user space whatever the kernel's own HZ
// (sysconf(_SC_CLK_TCK) answers 100 on every Linux architecture Go runs on).
const UserHZ = 100

// parseStat returns utime+stime, in clock ticks, from the content of a
// /proc/PID/stat file: fields 14 and 15 (proc(5)). Field 2, the command
// name in parentheses, may itself hold spaces and parentheses, so the
// fields are counted from the last ')'.
func parseStat(b []byte) (int64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("no command name in parentheses")
	}
	// After the name: field 3 (state) is f[0], so field n is f[n-3].
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("%d fields after the command name, want at least 13", len(f))
	}
	utime, err1 := strconv.ParseInt(f[14-3], 10, 64)
	stime, err2 := strconv.ParseInt(f[15-3], 10, 64)
	if err1 != nil || err2 != nil || utime < 0 || stime < 0 {
		return 0, fmt.Errorf("utime %q and stime %q are not tick counts", f[14-3], f[15-3])
	}
	return utime + stime, nil
}
