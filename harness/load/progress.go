package load

import (
	"fmt"
	"os"
	"time"
)

// String is the progress line: elapsed, RPS, p50, p99 and errors.
func (s Snapshot) String() string {
	phase := ""
	if s.Warmup {
		phase = " (warm-up)"
	}
	return fmt.Sprintf("%6s%s  %8.1f req/s  p50 %-9s p99 %-9s requests %d  errors %d",
		s.Elapsed.Truncate(time.Second), phase, s.RPS,
		s.P50.Round(10*time.Microsecond), s.P99.Round(10*time.Microsecond), s.Requests, s.Errors)
}

// IsTerminal reports whether f is an interactive terminal (a character
// device other than /dev/null), where a live line helps; elsewhere (CI logs,
// pipes, files) progress would only be noise.
func IsTerminal(f *os.File) bool {
	if f == nil {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	if null, err := os.Stat(os.DevNull); err == nil && os.SameFile(fi, null) {
		return false
	}
	return true
}
