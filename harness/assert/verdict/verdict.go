// Package verdict holds the outcome of one assertion. Every assertion kind
// (load, traces, metrics, logs, data) reports in this one shape, so the
// terminal report, report.json, junit.xml and go test subtests are made alike.
package verdict

// Status of one assertion.
type Status string

// Statuses. Incomplete is apart from Fail: the evidence never finished
// arriving (a trace still missing spans at the deadline), which is a
// different problem from evidence that arrived and was wrong.
const (
	Pass       Status = "pass"
	Fail       Status = "fail"
	Incomplete Status = "incomplete"
	// Error: the assertion could not be evaluated (bad query, store down).
	Error Status = "error"
)

// Result is one judged assertion.
type Result struct {
	// Kind is load, traces, metrics, logs or data.
	Kind string `json:"kind"`
	// Name is unique within a run; it becomes the subtest name.
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Expected is the expectation as written, e.g. "< 250ms".
	Expected string `json:"expected,omitempty"`
	// Measured is the observed value, formatted with its unit.
	Measured string `json:"measured,omitempty"`
	// Detail explains a failure: offending lines, expected vs actual tree.
	Detail string `json:"detail,omitempty"`
}

// Passed reports whether the result counts as a pass.
func (r Result) Passed() bool { return r.Status == Pass }

// AllPassed reports whether every result passed. No results is not a pass:
// a run that judged nothing has proven nothing.
func AllPassed(rs []Result) bool {
	if len(rs) == 0 {
		return false
	}
	for _, r := range rs {
		if !r.Passed() {
			return false
		}
	}
	return true
}
