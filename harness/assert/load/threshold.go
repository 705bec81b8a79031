// Package threshold parses and judges k6-style load thresholds such as
// "p(99) < 250ms", "error_rate < 0.1%" or "throughput > 100/s". The
// comparison half is harness/expect, so units and run variables behave as in
// every other assertion; this package adds the metric half. status(503) > 0
// and body(503) contains 'TEXT' reach into the per-status results (status.go).
package load

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/meshproof/meshproof/harness/assert/expect"
	"github.com/meshproof/meshproof/harness/assert/verdict"
	engine "github.com/meshproof/meshproof/harness/load"
)

// Metric is what a threshold measures.
type Metric string

// Metrics. Latency metrics cover measured (post-warm-up) requests; count, ok,
// errors and error_rate cover every request, warm-up included, like the
// engine.* run variables.
const (
	Percentile Metric = "p"          // p(N): latency at percentile N
	Avg        Metric = "avg"        // mean latency
	Min        Metric = "min"        // fastest request
	Max        Metric = "max"        // slowest request
	Med        Metric = "med"        // p(50)
	ErrorRate  Metric = "error_rate" // errors ÷ requests
	Throughput Metric = "throughput" // measured requests per second
	Count      Metric = "count"      // requests
	OK         Metric = "ok"         // successful requests
	Errors     Metric = "errors"     // failed requests
	// StatusCount is status(CODE): requests with that status (see status.go).
	StatusCount Metric = "status"
	// Body is body(CODE) contains 'TEXT': not a number but a rule on the
	// bodies sampled for that status (see status.go).
	Body Metric = "body"
)

// aliases maps accepted spellings to metrics.
var aliases = map[string]Metric{
	"avg": Avg, "mean": Avg, "min": Min, "max": Max, "med": Med, "median": Med,
	"error_rate": ErrorRate, "throughput": Throughput, "rps": Throughput,
	"count": Count, "requests": Count, "ok": OK, "errors": Errors,
}

type family int

const (
	latency family = iota
	fraction
	rate
	counter
)

func (m Metric) family() family {
	switch m {
	case ErrorRate:
		return fraction
	case Throughput:
		return rate
	case Count, OK, Errors, StatusCount:
		return counter
	}
	return latency
}

// Threshold is one parsed expression.
type Threshold struct {
	Metric Metric
	// Quantile is N of p(N), in percent.
	Quantile float64
	Expect   expect.Expectation
	// Raw is the expression as written; it names the assertion.
	Raw string
	// Outside restricts the metric to the seconds of the run outside every
	// fault window ("error_rate < 1% outside faults"), each window pushed
	// out by Grace after its end ("... outside faults +2s"). See outside.go.
	Outside bool
	Grace   time.Duration
	// Code is the status of status(CODE) and body(CODE), spelt as the
	// engine records it ("503", "Unavailable", "error").
	Code string
	// Text is what a body rule looks for; Negate makes it !contains.
	Text   string
	Negate bool
}

// Parse reads "METRIC OP VALUE". Latency values take a unit (ms, s, 1m…);
// a bare number means milliseconds, as in k6. error_rate takes a fraction or
// a percentage, throughput a number or N/s. The value may also be a run
// variable ("count == load.ok"). A body rule, "body(CODE) contains 'TEXT'",
// has a grammar of its own (status.go).
func Parse(expr string) (Threshold, error) {
	raw := strings.TrimSpace(expr)
	if isBodyRule(raw) {
		return parseBody(raw)
	}
	t := Threshold{Raw: raw}
	body, err := t.parseOutside(raw)
	if err != nil {
		return t, fmt.Errorf("threshold %q: %w", raw, err)
	}
	i := strings.IndexAny(body, "<>=!")
	if i <= 0 {
		return t, fmt.Errorf("threshold %q: want METRIC OP VALUE, e.g. \"p(99) < 250ms\"", raw)
	}
	name := strings.ToLower(strings.TrimSpace(body[:i]))
	if err := t.parseMetric(name); err != nil {
		return t, fmt.Errorf("threshold %q: %w", raw, err)
	}
	if t.Outside && (t.Metric.family() != fraction && t.Metric.family() != counter || t.Metric == StatusCount) {
		return t, fmt.Errorf("threshold %q: outside faults applies to error_rate, errors, ok and count (the per-second series has no full latency distribution, nor counts per status)", raw)
	}
	e, err := expect.Parse(body[i:])
	if err != nil {
		return t, fmt.Errorf("threshold %q: %w", raw, err)
	}
	if e.Var == "" {
		if err := t.checkUnit(&e); err != nil {
			return t, fmt.Errorf("threshold %q: %w", raw, err)
		}
	}
	t.Expect = e
	return t, nil
}

// MustParse is Parse for thresholds written in code.
func MustParse(expr string) Threshold {
	t, err := Parse(expr)
	if err != nil {
		panic(err)
	}
	return t
}

func (t *Threshold) parseMetric(name string) error {
	if m, ok := aliases[name]; ok {
		t.Metric = m
		return nil
	}
	var num string
	switch {
	case strings.HasPrefix(name, "status(") && strings.HasSuffix(name, ")"):
		return t.parseStatusMetric(name[len("status(") : len(name)-1])
	case strings.HasPrefix(name, "p(") && strings.HasSuffix(name, ")"):
		num = strings.TrimSpace(name[2 : len(name)-1])
	case strings.HasPrefix(name, "p") && len(name) > 1:
		num = name[1:] // p99, p99.9
	default:
		return fmt.Errorf("unknown metric %q (p(N), avg, min, max, med, error_rate, throughput, count, ok, errors, status(CODE); or body(CODE) contains 'TEXT')", name)
	}
	q, err := strconv.ParseFloat(num, 64)
	if err != nil || q < 0 || q > 100 {
		return fmt.Errorf("percentile %q: want a number from 0 to 100", num)
	}
	t.Metric, t.Quantile = Percentile, q
	return nil
}

// checkUnit rejects units that do not fit the metric and reads bare
// latency numbers as milliseconds.
func (t *Threshold) checkUnit(e *expect.Expectation) error {
	switch t.Metric.family() {
	case latency:
		switch e.Unit {
		case expect.None:
			e.Value /= 1000
			e.Unit = expect.Seconds
		case expect.Seconds:
		default:
			return fmt.Errorf("%s is a latency: write ms or s", t.Metric)
		}
	case fraction:
		if e.Unit != expect.None && e.Unit != expect.Fraction {
			return fmt.Errorf("error_rate is a share: write 0.001 or 0.1%%")
		}
		if e.Unit == expect.None {
			e.Unit = expect.Fraction
		}
	case rate:
		if e.Unit != expect.None && e.Unit != expect.PerSec {
			return fmt.Errorf("throughput is a rate: write 100 or 100/s")
		}
		e.Unit = expect.PerSec
	case counter:
		if e.Unit != expect.None {
			return fmt.Errorf("%s is a count: write a plain number", t.Metric)
		}
	}
	return nil
}

// String is the expression as written.
func (t Threshold) String() string { return t.Raw }

// unit is how measured values of the metric are shown.
func (t Threshold) unit() expect.Unit {
	switch t.Metric.family() {
	case latency:
		return expect.Seconds
	case fraction:
		return expect.Fraction
	case rate:
		return expect.PerSec
	}
	return expect.None
}

// Measure is the metric's value in r, normalised as expect does (latency in
// seconds, error_rate as a fraction, throughput per second).
func (t Threshold) Measure(r *engine.Result) (float64, error) {
	secs := func(d time.Duration) float64 { return d.Seconds() }
	if t.Metric == Body {
		return 0, errors.New("a body rule has no value to measure; Judge it")
	}
	if t.Metric.family() == latency {
		if r.Histogram == nil || r.Histogram.Count() == 0 {
			return 0, fmt.Errorf("no measured requests to take %s from", t.Metric)
		}
	}
	switch t.Metric {
	case Percentile:
		d, err := r.Percentile(t.Quantile)
		return secs(d), err
	case Med:
		d, err := r.Percentile(50)
		return secs(d), err
	case Avg:
		return secs(r.Histogram.Mean()), nil
	case Min:
		return secs(r.Histogram.Min()), nil
	case Max:
		return secs(r.Histogram.Max()), nil
	case ErrorRate:
		return r.ErrorRate(), nil
	case Throughput:
		return r.Throughput(), nil
	case Count:
		return float64(r.Requests), nil
	case OK:
		return float64(r.OK), nil
	case Errors:
		return float64(r.Errors), nil
	case StatusCount:
		return float64(r.Status[t.Code]), nil
	}
	return 0, fmt.Errorf("unknown metric %q", t.Metric)
}

// Judge evaluates the threshold against a finished run that had no
// faults; an "outside faults" threshold then covers the whole run.
func (t Threshold) Judge(r *engine.Result) verdict.Result { return t.JudgeFaults(r, nil) }

// JudgeFaults evaluates the threshold against a finished run whose fault
// windows were faults: an "outside faults" threshold counts only the
// seconds of the series that overlap none of them (see outside.go); any
// other threshold ignores them.
func (t Threshold) JudgeFaults(r *engine.Result, faults []Window) verdict.Result {
	switch {
	case t.Metric == Body:
		return t.judgeBody(r)
	case t.Outside:
		return t.judgeOutside(r, faults)
	}
	v := verdict.Result{Kind: "load", Name: t.Raw, Expected: t.Expect.String()}
	if r == nil {
		v.Status, v.Detail = verdict.Error, "no load result"
		return v
	}
	m, err := t.Measure(r)
	if err != nil {
		v.Status, v.Detail = verdict.Error, err.Error()
		return v
	}
	note := ""
	if t.Metric == StatusCount {
		note = "statuses seen: " + statusesLine(r.Status)
	}
	return t.settle(v, m, r, note)
}

func (t Threshold) metricName() string {
	switch t.Metric {
	case Percentile:
		return "p(" + strconv.FormatFloat(t.Quantile, 'g', -1, 64) + ")"
	case StatusCount:
		return "status(" + t.Code + ")"
	}
	return string(t.Metric)
}

// JudgeAll parses and judges each expression; a bad expression becomes an
// Error verdict rather than aborting the others.
func JudgeAll(exprs []string, r *engine.Result) []verdict.Result {
	out := make([]verdict.Result, 0, len(exprs))
	for _, e := range exprs {
		t, err := Parse(e)
		if err != nil {
			out = append(out, verdict.Result{Kind: "load", Name: strings.TrimSpace(e), Status: verdict.Error, Detail: err.Error()})
			continue
		}
		out = append(out, t.Judge(r))
	}
	return out
}

// settle compares measured value m with the expectation and fills in the
// verdict; note, when set, follows a failure's detail in parentheses.
func (t Threshold) settle(v verdict.Result, m float64, r *engine.Result, note string) verdict.Result {
	v.Measured = expect.Format(m, t.unit())
	ok, err := t.Expect.Check(m, r.Vars())
	switch {
	case err != nil:
		v.Status, v.Detail = verdict.Error, err.Error()
	case ok:
		v.Status = verdict.Pass
	default:
		v.Status = verdict.Fail
		target, _ := t.Expect.Target(r.Vars())
		v.Detail = fmt.Sprintf("%s is %s, want %s %s", t.metricName(), v.Measured, t.Expect.Op, expect.Format(target, t.unit()))
		if note != "" {
			v.Detail += " (" + note + ")"
		}
	}
	return v
}
