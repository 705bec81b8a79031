package metrics

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/meshproof/meshproof/harness/assert/expect"
	"github.com/meshproof/meshproof/harness/assert/verdict"
	"github.com/meshproof/meshproof/harness/scenario"
)

// Window is the stretch of the run the queries describe: load start to the
// end of the drain.
type Window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Reading is one instant query's answer, or why there is none.
type Reading struct {
	At     time.Time         `json:"at"`
	Value  float64           `json:"value"`
	Series int               `json:"series"`
	Labels map[string]string `json:"labels,omitempty"`
	Error  string            `json:"error,omitempty"`
}

// Baseline holds the delta queries' values at load start, by expression.
type Baseline struct {
	At       time.Time          `json:"at"`
	Readings map[string]Reading `json:"readings"`
}

// Sample is what one assertion's query measured.
type Sample struct {
	// Kind is "delta" or "promql".
	Kind string `json:"kind"`
	// Expr is the query as written; Query as sent ($__range replaced).
	Expr  string   `json:"expr"`
	Query string   `json:"query"`
	Start *Reading `json:"start,omitempty"`
	End   Reading  `json:"end"`
}

// Evidence is every metric sample of a run, saved for eval.
type Evidence struct {
	Window Window `json:"window"`
	// Range is what $__range stood for.
	Range   string   `json:"range"`
	Samples []Sample `json:"samples"`
}

// Begin reads every delta query at load start.
func Begin(ctx context.Context, c *Client, specs []scenario.MetricAssertion, at time.Time) (Baseline, error) {
	b := Baseline{At: at, Readings: map[string]Reading{}}
	for _, s := range specs {
		if s.Delta == "" {
			continue
		}
		if _, done := b.Readings[s.Delta]; done {
			continue
		}
		b.Readings[s.Delta] = read(ctx, c, s.Delta, at)
		if ctx.Err() != nil {
			return b, fmt.Errorf("metrics baseline: %w", ctx.Err())
		}
	}
	return b, nil
}

func read(ctx context.Context, c *Client, expr string, at time.Time) Reading {
	qctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	v, err := c.Query(qctx, expr, at)
	r := Reading{At: at, Value: v.Value, Series: v.Series, Labels: v.Labels}
	if err != nil {
		r.Error = err.Error()
	}
	return r
}

// Collect reads the delta queries' end values and the promql queries. Call
// it after the drain and after WaitScrape(ctx, c, w.End): queries are
// evaluated now, which is then past the last scrape, and $__range runs from
// w.Start to now rounded up to whole seconds, so range functions see every
// sample of the load and the drain.
func Collect(ctx context.Context, c *Client, specs []scenario.MetricAssertion, base Baseline, w Window) (Evidence, error) {
	at := time.Now()
	ev := Evidence{Window: w, Range: PromDuration(at.Sub(w.Start))}
	seen := map[string]bool{}
	for _, s := range specs {
		kind, expr := kindOf(s)
		if expr == "" || seen[kind+"\x00"+expr] {
			continue
		}
		seen[kind+"\x00"+expr] = true
		smp := Sample{Kind: kind, Expr: expr, Query: strings.ReplaceAll(expr, "$__range", ev.Range)}
		if kind == "delta" {
			start, ok := base.Readings[expr]
			if !ok {
				start = Reading{Error: "no baseline: the query was not read at load start"}
			}
			smp.Start = &start
		}
		smp.End = read(ctx, c, smp.Query, at)
		if ctx.Err() != nil {
			return ev, fmt.Errorf("collect metrics: %w", ctx.Err())
		}
		ev.Samples = append(ev.Samples, smp)
	}
	return ev, nil
}

// PromDuration writes d as a Prometheus duration in whole seconds, rounded
// up and at least 1s ("37s").
func PromDuration(d time.Duration) string {
	return fmt.Sprintf("%ds", max(1, int64(math.Ceil(d.Seconds()))))
}

func kindOf(s scenario.MetricAssertion) (kind, expr string) {
	switch {
	case s.Delta != "" && s.PromQL != "":
		return "", ""
	case s.Delta != "":
		return "delta", s.Delta
	case s.PromQL != "":
		return "promql", s.PromQL
	}
	return "", ""
}

// Name is the assertion's name, or its query.
func Name(s scenario.MetricAssertion) string {
	if s.Name != "" {
		return s.Name
	}
	kind, expr := kindOf(s)
	if kind == "" {
		return "metric " + s.Expect
	}
	return kind + " " + expr
}

// Judge compares one assertion's sample with its expectation.
func Judge(spec scenario.MetricAssertion, ev Evidence, vars expect.Vars) verdict.Result {
	res := verdict.Result{Kind: "metrics", Name: Name(spec), Expected: spec.Expect}
	fail := func(st verdict.Status, format string, args ...any) verdict.Result {
		res.Status, res.Detail = st, fmt.Sprintf(format, args...)
		return res
	}
	kind, expr := kindOf(spec)
	if kind == "" {
		return fail(verdict.Error, "a metric assertion needs exactly one of delta: or promql:")
	}
	e, err := expect.Parse(spec.Expect)
	if err != nil {
		return fail(verdict.Error, "%v", err)
	}
	var smp *Sample
	for i := range ev.Samples {
		if ev.Samples[i].Kind == kind && ev.Samples[i].Expr == expr {
			smp = &ev.Samples[i]
		}
	}
	switch {
	case smp == nil:
		return fail(verdict.Error, "no sample of %s %q was collected", kind, expr)
	case smp.End.Error != "":
		return fail(verdict.Error, "%s", smp.End.Error)
	case smp.End.Series == 0:
		return fail(verdict.Error, "query %q returned no series after the drain: check the metric name and labels", smp.Query)
	}
	measured := smp.End.Value
	res.Measured = e.Format(measured)
	if kind == "delta" {
		start := 0.0
		switch {
		case smp.Start == nil || smp.Start.Error != "":
			why := "missing"
			if smp.Start != nil {
				why = smp.Start.Error
			}
			return fail(verdict.Error, "start value: %s", why)
		case smp.Start.Series == 0:
			// A counter that did not exist before the load starts at 0.
			res.Measured = fmt.Sprintf("%s (start: no series, taken as 0; end %s)", e.Format(measured), e.Format(smp.End.Value))
		default:
			start = smp.Start.Value
			measured -= start
			res.Measured = fmt.Sprintf("%s (%s → %s)", e.Format(measured), e.Format(start), e.Format(smp.End.Value))
		}
	}
	ok, err := e.Check(measured, vars)
	switch {
	case err != nil:
		return fail(verdict.Error, "%v", err)
	case ok:
		res.Status = verdict.Pass
	default:
		t, _ := e.Target(vars)
		res.Status = verdict.Fail
		res.Detail = fmt.Sprintf("%s = %s, want %s (%s)", kind, e.Format(measured), spec.Expect, e.Format(t))
	}
	return res
}
