package load

import (
	"fmt"
	"strings"
	"time"

	"github.com/meshproof/meshproof/harness/assert"
	"github.com/meshproof/meshproof/harness/assert/verdict"
	engine "github.com/meshproof/meshproof/harness/load"
)

// A run with faults breaks the system on purpose, so "error_rate == 0" over
// the whole run says nothing useful; what the scenario promises is that
// the system is clean *between* faults and recovers within some grace
// after each one. "error_rate == 0 outside faults +2s" says exactly that:
// the requests of every second of the load's per-second series that
// overlaps no fault window — each window extended 2 s past its end — must
// have no errors.
//
// The series is per second, so a second that overlaps a window even
// partly is left out: the verdict errs towards ignoring a little clean
// traffic rather than blaming the fault's own errors on the system.

// outsideSuffix ends a threshold that counts only outside fault windows.
const outsideSuffix = "outside faults"

// Window is one interval during which the environment was broken on
// purpose (a fault's effect window). To is zero for an effect that never
// ended (the run stopped first).
type Window = assert.FaultWindow

// parseOutside strips "outside faults [+GRACE]" from the end of raw and
// returns the rest.
func (t *Threshold) parseOutside(raw string) (string, error) {
	lower := strings.ToLower(raw)
	i := strings.LastIndex(lower, outsideSuffix)
	if i < 0 {
		return raw, nil
	}
	rest := strings.TrimSpace(raw[i+len(outsideSuffix):])
	t.Outside = true
	if rest != "" {
		g, ok := strings.CutPrefix(rest, "+")
		d, err := time.ParseDuration(strings.TrimSpace(g))
		if !ok || err != nil || d < 0 {
			return "", fmt.Errorf("after %q want nothing or a grace such as +2s, got %q", outsideSuffix, rest)
		}
		t.Grace = d
	}
	return strings.TrimSpace(raw[:i]), nil
}

// outsideCounts sums the series points that overlap no window (extended by
// grace), and says how much of the run that covered.
func outsideCounts(r *engine.Result, faults []Window, grace time.Duration) (requests, errors int64, kept, total time.Duration) {
	prev := 0.0
	for _, p := range r.Series {
		from := r.Start.Add(time.Duration(prev * float64(time.Second)))
		to := r.Start.Add(time.Duration(p.T * float64(time.Second)))
		prev = p.T
		total += to.Sub(from)
		if overlapsAny(from, to, faults, grace) {
			continue
		}
		kept += to.Sub(from)
		requests += p.Requests
		errors += p.Errors
	}
	return requests, errors, kept, total
}

func overlapsAny(from, to time.Time, faults []Window, grace time.Duration) bool {
	for _, w := range faults {
		if !to.After(w.From) {
			continue // the interval ends before the fault
		}
		if w.To.IsZero() || from.Before(w.To.Add(grace)) {
			return true
		}
	}
	return false
}

func (t Threshold) judgeOutside(r *engine.Result, faults []Window) verdict.Result {
	v := verdict.Result{Kind: "load", Name: t.Raw, Expected: t.Expect.String()}
	if r == nil {
		v.Status, v.Detail = verdict.Error, "no load result"
		return v
	}
	if len(r.Series) == 0 {
		v.Status, v.Detail = verdict.Error, "the load result has no per-second series to split by fault windows"
		return v
	}
	reqs, errs, kept, total := outsideCounts(r, faults, t.Grace)
	span := fmt.Sprintf("outside faults: %s of %s, %d requests", kept.Round(time.Second), total.Round(time.Second), reqs)
	var m float64
	switch t.Metric {
	case ErrorRate:
		if reqs == 0 {
			v.Status, v.Detail = verdict.Error, "no request completed outside the fault windows ("+span+")"
			return v
		}
		m = float64(errs) / float64(reqs)
	case Count:
		m = float64(reqs)
	case OK:
		m = float64(reqs - errs)
	case Errors:
		m = float64(errs)
	default:
		v.Status, v.Detail = verdict.Error, fmt.Sprintf("%s cannot be measured outside faults", t.Metric)
		return v
	}
	return t.settle(v, m, r, fmt.Sprintf("%s, %d errors", span, errs))
}
