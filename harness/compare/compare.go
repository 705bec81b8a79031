// Package compare sets a run against a baseline run (`meshproof compare
// BASE NEW`): the latency distributions from the HDR histograms, per
// percentile, throughput and error rate, every service's span durations,
// and the trace shape, judged against regression thresholds. A shift must
// be both statistically real (stats.go says which test and why) and larger
// than its threshold to count: a comparison that cries wolf at noise is
// soon ignored, and one that flags a real but tiny shift is no better.
package compare

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/meshproof/meshproof/harness/assert/traces"
	"github.com/meshproof/meshproof/harness/report"
)

// Run is one side of a comparison, read from its artifacts directory.
type Run struct {
	*report.Artifacts
	Report *report.Report
	// spans holds each service's entry-span durations in seconds.
	spans map[string][]float64
	// edges and services count the traces each appears in.
	edges    map[string]int
	services map[string]int
	trees    int
}

// ErrInput marks a comparison that cannot be made (exit code 2).
var ErrInput = errors.New("bad input")

// Load reads a run directory. It needs load.json with its histogram;
// traces.json and report.json are used when present.
func Load(dir string) (*Run, error) {
	a, err := report.ReadArtifacts(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInput, dir, err)
	}
	if a.Load == nil || a.Hist == nil {
		return nil, fmt.Errorf("%w: %s has no readable load.json with a latency histogram (is it a meshproof run directory of a scenario with a load?)", ErrInput, dir)
	}
	r := &Run{Artifacts: a, spans: map[string][]float64{}, edges: map[string]int{}, services: map[string]int{}}
	if rep, err := report.Read(filepath.Join(dir, "report.json")); err == nil {
		r.Report = rep
	}
	for _, t := range a.Trees() {
		r.addTree(t)
	}
	return r, nil
}

// addTree records a trace's service nodes and edges; the entry span of a
// node is the service's own time for the request, as in the scenario's
// `durations:` checks.
func (r *Run) addTree(t *traces.Tree) {
	r.trees++
	seenS, seenE := map[string]bool{}, map[string]bool{}
	var walk func(parent, n *traces.Node)
	walk = func(parent, n *traces.Node) {
		r.spans[n.Service] = append(r.spans[n.Service], n.Duration())
		seenS[n.Service] = true
		if parent != nil {
			arrow := " → "
			if n.Async {
				arrow = " ~> "
			}
			seenE[parent.Service+arrow+n.Service] = true
		}
		for _, c := range n.Children {
			walk(n, c)
		}
	}
	for _, root := range t.Roots {
		walk(nil, root)
	}
	for s := range seenS {
		r.services[s]++
	}
	for e := range seenE {
		r.edges[e]++
	}
}

// Name is the run's id, or its directory's name.
func (r *Run) Name() string {
	if r.Report != nil && r.Report.RunID != "" {
		return r.Report.RunID
	}
	return filepath.Base(r.Dir)
}

// Options tune a comparison.
type Options struct {
	Thresholds []Threshold
	// Alpha is the significance level (default 0.01).
	Alpha float64
	// MinShift is the smallest latency change that can count, however
	// significant (default 1ms): below it is the timer's and scheduler's
	// business, not the code's.
	MinShift time.Duration
}

func (o Options) withDefaults() Options {
	if o.Alpha <= 0 {
		o.Alpha = 0.01
	}
	if o.MinShift <= 0 {
		o.MinShift = time.Millisecond
	}
	return o
}

// Thresholds picks what a comparison judges by: the command line's, else
// the new run's scenario compare: section, else DefaultThresholds.
func Thresholds(cli []string, newRun *Run) ([]Threshold, error) {
	list := cli
	if len(list) == 0 && newRun.Scenario != nil {
		list = newRun.Scenario.Compare
	}
	if len(list) == 0 {
		list = DefaultThresholds
	}
	ts, err := ParseThresholds(list)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	return ts, nil
}

// Compare sets newRun against base.
func Compare(base, newRun *Run, o Options) *Result {
	o = o.withDefaults()
	res := &Result{
		Base: side(base), New: side(newRun),
		Alpha: o.Alpha, MinShiftMs: ms(o.MinShift),
	}
	res.Latency = compareLatency(base, newRun, o.Thresholds)
	res.Throughput = Change{Base: base.Load.Throughput(), New: newRun.Load.Throughput()}
	res.Throughput.Change = relChange(res.Throughput.Base, res.Throughput.New)
	bm, nm := base.Load.Measured(), newRun.Load.Measured()
	res.ErrorRate = Change{Base: base.Load.ErrorRate(), New: newRun.Load.ErrorRate(),
		P: twoProportionP(bm.Errors, bm.Requests, nm.Errors, nm.Requests)}
	res.ErrorRate.Change = res.ErrorRate.New - res.ErrorRate.Base
	res.Services = compareServices(base, newRun, o)
	res.Shape = compareShape(base, newRun)
	res.judge(o)
	return res
}

func side(r *Run) Side {
	s := Side{Dir: r.Dir, Run: r.Name(), Requests: r.Load.Measured().Requests, Traces: r.trees}
	if r.Report != nil {
		s.Scenario = r.Report.Scenario
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func relChange(base, new float64) float64 {
	if base == 0 {
		return 0
	}
	return (new - base) / base
}

// reportedPercentiles are the rows of the latency table.
var reportedPercentiles = []float64{50, 75, 90, 95, 99, 99.9}

func compareLatency(base, newRun *Run, ts []Threshold) Latency {
	l := Latency{KS: ksTest(histBins(base.Hist), histBins(newRun.Hist)),
		BaseAvgMs: base.Hist.Mean() / 1000, NewAvgMs: newRun.Hist.Mean() / 1000}
	ps := append([]float64(nil), reportedPercentiles...)
	for _, t := range ts {
		if t.Service == "" && t.Percentile > 0 && !slices.Contains(ps, t.Percentile) {
			ps = append(ps, t.Percentile)
		}
	}
	sort.Float64s(ps)
	for _, p := range ps {
		b, n := float64(base.Hist.ValueAtPercentile(p))/1000, float64(newRun.Hist.ValueAtPercentile(p))/1000
		l.Percentiles = append(l.Percentiles, PercentileChange{P: p, BaseMs: b, NewMs: n, Change: relChange(b, n)})
	}
	return l
}

// compareServices sets each service's span durations side by side, with
// a KS test on the raw durations.
func compareServices(base, newRun *Run, o Options) []ServiceChange {
	names := map[string]bool{}
	for s := range base.spans {
		names[s] = true
	}
	for s := range newRun.spans {
		names[s] = true
	}
	var out []ServiceChange
	for s := range names {
		b, n := base.spans[s], newRun.spans[s]
		sc := ServiceChange{Service: s, NBase: len(b), NNew: len(n), KS: ksTest(samples(b), samples(n))}
		if len(b) > 0 && len(n) > 0 {
			sc.BaseP50Ms, sc.NewP50Ms = quantileMs(b, 50), quantileMs(n, 50)
			sc.BaseP99Ms, sc.NewP99Ms = quantileMs(b, 99), quantileMs(n, 99)
			sc.P50Change, sc.P99Change = relChange(sc.BaseP50Ms, sc.NewP50Ms), relChange(sc.BaseP99Ms, sc.NewP99Ms)
			sc.Slower = sc.KS.Significant(o.Alpha) && sc.NewP50Ms-sc.BaseP50Ms >= ms(o.MinShift) && sc.P50Change > 0.10
		}
		out = append(out, sc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Service < out[j].Service })
	return out
}

// quantileMs is a nearest-rank percentile of durations in seconds, by the
// same rule the scenario's `durations:` checks use.
func quantileMs(durs []float64, p float64) float64 {
	d := traces.DurationCheck{Stat: fmt.Sprintf("p(%g)", p), Quantile: p / 100}
	return d.Measure(append([]float64(nil), durs...)) * 1000
}

// compareShape lists services and edges seen in one run's traces and in
// none of the other's. Presence in any trace (not a share) keeps it immune
// to the sampling noise of a few incomplete traces.
func compareShape(base, newRun *Run) ShapeDiff {
	var d ShapeDiff
	if base.trees == 0 || newRun.trees == 0 {
		return d
	}
	diff := func(a, b map[string]int) []string {
		var out []string
		for k := range a {
			if b[k] == 0 {
				out = append(out, k)
			}
		}
		sort.Strings(out)
		return out
	}
	d.ServicesAdded, d.ServicesGone = diff(newRun.services, base.services), diff(base.services, newRun.services)
	d.EdgesAdded, d.EdgesGone = diff(newRun.edges, base.edges), diff(base.edges, newRun.edges)
	return d
}
