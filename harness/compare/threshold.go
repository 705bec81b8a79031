package compare

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/meshproof/meshproof/harness/assert/expect"
)

// Threshold is a parsed "SUBJECT regression <= LIMIT": how much worse the
// new run may be before the comparison fails. SUBJECT is one of
//
//	p(N) avg               the load's latency (from the HDR histograms)
//	throughput             the measured requests per second (a drop)
//	error_rate             the share of failed requests (a rise, in points)
//	SERVICE p(N)           one service's span durations (from traces.json)
//	spans p(N)             every service's span durations
//
// LIMIT is relative ("10%": new may be 10% worse than base) or, for
// latencies, absolute ("20ms"). For error_rate a percentage is absolute
// percentage points, since a relative rise from 0 is meaningless.
type Threshold struct {
	Raw string `json:"threshold"`
	// Subject is p(N), avg, throughput, error_rate; Service is set (or
	// "*" for spans) for span thresholds.
	Subject string `json:"subject"`
	Service string `json:"service,omitempty"`
	// Percentile is N of p(N).
	Percentile float64 `json:"percentile,omitempty"`
	// Limit in Unit: a fraction (expect.Fraction) or seconds.
	Limit float64     `json:"limit"`
	Unit  expect.Unit `json:"unit"`
}

// DefaultThresholds apply when neither the scenario's compare: section nor
// the command line names any: the percentiles a reader looks at first,
// throughput, errors, and every service's median span.
var DefaultThresholds = []string{
	"p(50) regression <= 10%",
	"p(90) regression <= 10%",
	"p(99) regression <= 10%",
	"throughput regression <= 10%",
	"error_rate regression <= 0.1%",
	"spans p(50) regression <= 10%",
}

// ParseThreshold reads one threshold.
func ParseThreshold(s string) (Threshold, error) {
	t := Threshold{Raw: strings.TrimSpace(s)}
	subj, limit, ok := strings.Cut(t.Raw, " regression ")
	if !ok {
		return t, fmt.Errorf("threshold %q: want \"SUBJECT regression <= LIMIT\", e.g. \"p(99) regression <= 10%%\"", s)
	}
	limit = strings.TrimSpace(limit)
	rest, ok := strings.CutPrefix(limit, "<=")
	if !ok {
		return t, fmt.Errorf("threshold %q: the only comparison is <= (how much worse is allowed)", s)
	}
	v, u, err := expect.ParseValue(strings.TrimSpace(rest))
	if err != nil {
		return t, fmt.Errorf("threshold %q: %w", s, err)
	}
	if u != expect.Fraction && u != expect.Seconds || v < 0 {
		return t, fmt.Errorf("threshold %q: the limit is a percentage (10%%) or a duration (20ms)", s)
	}
	t.Limit, t.Unit = v, u
	f := strings.Fields(subj)
	if len(f) == 2 {
		t.Service = f[0]
		if t.Service == "spans" {
			t.Service = "*"
		}
		f = f[1:]
	}
	if len(f) != 1 {
		return t, fmt.Errorf("threshold %q: subject %q: want p(N), avg, throughput, error_rate or \"SERVICE p(N)\"", s, subj)
	}
	t.Subject = f[0]
	return t, t.checkSubject(s)
}

func (t *Threshold) checkSubject(s string) error {
	switch {
	case strings.HasPrefix(t.Subject, "p(") && strings.HasSuffix(t.Subject, ")"):
		q, err := strconv.ParseFloat(t.Subject[2:len(t.Subject)-1], 64)
		if err != nil || q <= 0 || q > 100 {
			return fmt.Errorf("threshold %q: %s is not a percentile p(0..100)", s, t.Subject)
		}
		t.Percentile = q
		if t.Service != "" && q != 50 && q != 99 {
			return fmt.Errorf("threshold %q: span thresholds take p(50) or p(99)", s)
		}
	case t.Subject == "avg" && t.Service == "":
	case (t.Subject == "throughput" || t.Subject == "error_rate") && t.Service == "":
		if t.Unit != expect.Fraction {
			return fmt.Errorf("threshold %q: %s takes a percentage", s, t.Subject)
		}
	default:
		return fmt.Errorf("threshold %q: subject %q: want p(N), avg, throughput, error_rate, \"SERVICE p(N)\" or \"spans p(N)\"", s, t.Subject)
	}
	return nil
}

// ParseThresholds parses a list, reporting every bad one.
func ParseThresholds(list []string) ([]Threshold, error) {
	out := make([]Threshold, 0, len(list))
	var errs []string
	for _, s := range list {
		t, err := ParseThreshold(s)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		out = append(out, t)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return out, nil
}

// exceeds reports whether going from base to new is worse than the limit
// (higher is worse), and the change in the limit's unit.
func (t Threshold) exceeds(base, new float64) (bool, float64) {
	if t.Unit == expect.Fraction {
		if base <= 0 {
			return new > 0 && t.Limit == 0, 0
		}
		ch := (new - base) / base
		return ch > t.Limit, ch
	}
	ch := new - base
	return ch > t.Limit, ch
}
