package compare

import (
	"fmt"
	"strings"

	"github.com/meshproof/meshproof/harness/assert/expect"
)

// Result is a finished comparison; it is also the JSON output.
type Result struct {
	Base  Side    `json:"base"`
	New   Side    `json:"new"`
	Alpha float64 `json:"alpha"`
	// MinShiftMs is the smallest latency change that can be a regression.
	MinShiftMs float64         `json:"min_shift_ms"`
	Latency    Latency         `json:"latency"`
	Throughput Change          `json:"throughput_rps"`
	ErrorRate  Change          `json:"error_rate"`
	Services   []ServiceChange `json:"services"`
	Shape      ShapeDiff       `json:"shape"`
	Checks     []Check         `json:"checks"`
	// Regression is set when any check failed: exit code 1.
	Regression bool `json:"regression"`
}

// Side names one run.
type Side struct {
	Dir      string `json:"dir"`
	Run      string `json:"run"`
	Scenario string `json:"scenario,omitempty"`
	Requests int64  `json:"requests"`
	Traces   int    `json:"traces"`
}

// Latency compares the measured requests' distributions.
type Latency struct {
	KS          KS                 `json:"ks"`
	BaseAvgMs   float64            `json:"base_avg_ms"`
	NewAvgMs    float64            `json:"new_avg_ms"`
	Percentiles []PercentileChange `json:"percentiles"`
}

// PercentileChange is one row of the latency table.
type PercentileChange struct {
	P      float64 `json:"p"`
	BaseMs float64 `json:"base_ms"`
	NewMs  float64 `json:"new_ms"`
	// Change is relative: 0.5 is 50% slower.
	Change float64 `json:"change"`
}

// Change is a before/after number; Change is relative for throughput and
// absolute (points) for the error rate, whose P is a two-proportion test.
type Change struct {
	Base   float64 `json:"base"`
	New    float64 `json:"new"`
	Change float64 `json:"change"`
	P      float64 `json:"p,omitempty"`
}

// ServiceChange is one service's span durations in both runs.
type ServiceChange struct {
	Service   string  `json:"service"`
	NBase     int     `json:"spans_base"`
	NNew      int     `json:"spans_new"`
	BaseP50Ms float64 `json:"base_p50_ms"`
	NewP50Ms  float64 `json:"new_p50_ms"`
	BaseP99Ms float64 `json:"base_p99_ms"`
	NewP99Ms  float64 `json:"new_p99_ms"`
	P50Change float64 `json:"p50_change"`
	P99Change float64 `json:"p99_change"`
	KS        KS      `json:"ks"`
	// Slower: the durations differ significantly and the median grew by
	// more than 10% and the minimum shift, whatever the thresholds.
	Slower bool `json:"slower"`
}

// ShapeDiff lists what the traces of one run have and the other's lack.
type ShapeDiff struct {
	ServicesAdded []string `json:"services_added,omitempty"`
	ServicesGone  []string `json:"services_gone,omitempty"`
	EdgesAdded    []string `json:"edges_added,omitempty"`
	EdgesGone     []string `json:"edges_gone,omitempty"`
}

// Changed reports any difference.
func (s ShapeDiff) Changed() bool {
	return len(s.ServicesAdded)+len(s.ServicesGone)+len(s.EdgesAdded)+len(s.EdgesGone) > 0
}

// Check is one threshold's outcome.
type Check struct {
	Threshold  string `json:"threshold"`
	Measured   string `json:"measured"`
	Regression bool   `json:"regression"`
	// Note says why a change beyond the limit is not a regression (noise)
	// or what could not be measured.
	Note string `json:"note,omitempty"`
}

// judge applies every threshold, and counts a changed trace shape as a
// regression: a hop that appeared or vanished is a change in the system,
// not in its speed, and no threshold makes it acceptable.
func (r *Result) judge(o Options) {
	for _, t := range o.Thresholds {
		r.Checks = append(r.Checks, r.check(t, o))
	}
	if r.Shape.Changed() {
		r.Checks = append(r.Checks, Check{Threshold: "trace shape unchanged", Measured: r.Shape.summary(), Regression: true})
	}
	for _, c := range r.Checks {
		r.Regression = r.Regression || c.Regression
	}
}

func (r *Result) check(t Threshold, o Options) Check {
	c := Check{Threshold: t.Raw}
	switch {
	case t.Service != "":
		return r.checkSpans(t, o)
	case t.Subject == "throughput":
		// A drop is the regression, relative to the base's throughput.
		drop := -r.Throughput.Change
		c.Measured = fmt.Sprintf("%.1f/s → %.1f/s (%s)", r.Throughput.Base, r.Throughput.New, pct(r.Throughput.Change))
		c.Regression = r.Throughput.Base > 0 && drop > t.Limit
	case t.Subject == "error_rate":
		c.Measured = fmt.Sprintf("%s → %s (%+.2f points)", expect.Format(r.ErrorRate.Base, expect.Fraction),
			expect.Format(r.ErrorRate.New, expect.Fraction), r.ErrorRate.Change*100)
		c.Regression = r.ErrorRate.Change > t.Limit
		if c.Regression && r.ErrorRate.P >= o.Alpha {
			c.Regression, c.Note = false, fmt.Sprintf("within noise (two-proportion test p=%.3g)", r.ErrorRate.P)
		}
	default:
		b, n := r.Latency.BaseAvgMs, r.Latency.NewAvgMs
		if t.Percentile > 0 {
			b, n = r.latencyAt(t.Percentile)
		}
		c = latencyCheck(t, b, n, r.Latency.KS, o)
	}
	return c
}

// latencyAt reads a percentile from the table, which Compare extends with
// every percentile a threshold names.
func (r *Result) latencyAt(p float64) (float64, float64) {
	for _, pc := range r.Latency.Percentiles {
		if pc.P == p {
			return pc.BaseMs, pc.NewMs
		}
	}
	return 0, 0
}

// latencyCheck is the rule for every latency threshold: beyond the limit,
// at least MinShift, and a significant KS test.
func latencyCheck(t Threshold, baseMs, newMs float64, ks KS, o Options) Check {
	bad, ch := t.exceeds(baseMs/1000, newMs/1000)
	c := Check{Threshold: t.Raw, Measured: fmt.Sprintf("%s → %s (%s)", fmtMs(baseMs), fmtMs(newMs), changeText(t, ch))}
	switch {
	case !bad:
	case newMs-baseMs < ms(o.MinShift):
		c.Note = fmt.Sprintf("below the minimum shift of %s", fmtMs(ms(o.MinShift)))
	case !ks.Significant(o.Alpha):
		c.Note = fmt.Sprintf("within noise (KS D=%.3f p=%.3g, n=%d/%d)", ks.D, ks.P, ks.NBase, ks.NNew)
	default:
		c.Regression = true
		c.Note = fmt.Sprintf("KS D=%.3f p=%.3g", ks.D, ks.P)
	}
	return c
}

// checkSpans applies a span threshold to one service or, for "spans", to
// each service, naming the ones that regressed.
func (r *Result) checkSpans(t Threshold, o Options) Check {
	c := Check{Threshold: t.Raw}
	var worse, measured []string
	for _, s := range r.Services {
		if t.Service != "*" && s.Service != t.Service || s.NBase == 0 || s.NNew == 0 {
			continue
		}
		b, n := quantilePair(s, t.Percentile)
		sc := latencyCheck(t, b, n, s.KS, o)
		if t.Service != "*" || sc.Regression {
			measured = append(measured, s.Service+" "+sc.Measured)
		}
		if sc.Regression {
			worse = append(worse, s.Service)
		}
	}
	if len(measured) == 0 && t.Service != "*" {
		c.Note = fmt.Sprintf("no spans of %s in both runs", t.Service)
	}
	c.Measured = strings.Join(measured, "; ")
	if c.Measured == "" {
		c.Measured = "no service beyond the limit"
	}
	if len(worse) > 0 {
		c.Regression, c.Note = true, "slower: "+strings.Join(worse, ", ")
	}
	return c
}

// quantilePair reads p50 or p99 from a service row (ParseThreshold
// allows no other percentile for spans).
func quantilePair(s ServiceChange, p float64) (float64, float64) {
	if p == 50 {
		return s.BaseP50Ms, s.NewP50Ms
	}
	return s.BaseP99Ms, s.NewP99Ms
}

func changeText(t Threshold, ch float64) string {
	if t.Unit == expect.Fraction {
		return pct(ch)
	}
	return fmt.Sprintf("%+.2fms", ch*1000)
}

func pct(ch float64) string { return fmt.Sprintf("%+.1f%%", ch*100) }

func fmtMs(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0fms", v)
	case v >= 10:
		return fmt.Sprintf("%.1fms", v)
	}
	return fmt.Sprintf("%.2fms", v)
}

func (s ShapeDiff) summary() string {
	var parts []string
	add := func(label string, xs []string) {
		if len(xs) > 0 {
			parts = append(parts, label+": "+strings.Join(xs, ", "))
		}
	}
	add("services added", s.ServicesAdded)
	add("services gone", s.ServicesGone)
	add("edges added", s.EdgesAdded)
	add("edges gone", s.EdgesGone)
	return strings.Join(parts, "; ")
}
