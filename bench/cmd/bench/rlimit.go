package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// wantOpenFiles is the descriptor limit the bench gives itself and every
// tool and target it starts. At 20k requests/s an open-model tool keeps
// thousands of connections in flight; with this machine's default of 20000
// the target ran out first (accept4: too many open files) and the probe
// measured the limit, not the tool.
const wantOpenFiles = 1 << 20

// raiseOpenFiles lifts RLIMIT_NOFILE to wantOpenFiles (bounded by the
// kernel's fs.nr_open; the hard limit only rises for root). Children
// started after it inherit the limit: Go hands them the original soft
// limit only while the program has not set one itself.
func raiseOpenFiles() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("getrlimit: %w", err)
	}
	want := uint64(wantOpenFiles)
	if b, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
		if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil {
			want = min(want, n)
		}
	}
	if lim.Max >= want {
		lim.Cur = want
		return want, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	raised := syscall.Rlimit{Cur: want, Max: want}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err == nil {
		return want, nil
	}
	// Not root: the hard limit is as far as it goes.
	lim.Cur = lim.Max
	return lim.Max, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}
