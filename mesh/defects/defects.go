//go:build defects

package defects

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
)

// Enabled reports a build with the defect hooks compiled in.
const Enabled = true

var (
	activeOnce sync.Once
	active     string
	ticks      sync.Map // defect name -> *atomic.Uint64
)

// Active reports whether GREETING_DEFECT names this defect. The variable is
// read once: a defect is a property of the process, not of a request.
func Active(name string) bool {
	activeOnce.Do(func() {
		active = os.Getenv(EnvVar)
		if active == "" {
			return
		}
		if _, ok := Lookup(active); !ok {
			// An unknown name would silently test nothing; say so loudly.
			fmt.Fprintf(os.Stderr, "%s=%q is not in the defect catalogue\n", EnvVar, active)
		}
	})
	return active != "" && active == name
}

// Tick counts one occurrence of name and returns the count so far (1 for
// the first call), for defects that strike every Nth time or after N.
func Tick(name string) uint64 {
	c, _ := ticks.LoadOrStore(name, new(atomic.Uint64))
	return c.(*atomic.Uint64).Add(1)
}
