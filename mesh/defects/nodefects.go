//go:build !defects

package defects

// Enabled reports a build with the defect hooks compiled in.
const Enabled = false

// Active is constant false without -tags defects, so every hook branch is
// dead code and the default binary carries no defect.
func Active(string) bool { return false }

// Tick is never reached in a default build (its callers sit behind Active).
func Tick(string) uint64 { return 0 }
