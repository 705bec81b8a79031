package traces

import (
	"fmt"
	"math"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/meshproof/meshproof/harness/assert/expect"
	"github.com/meshproof/meshproof/harness/assert/verdict"
	"github.com/meshproof/meshproof/harness/scenario"
)

// DefaultSample is how many traces an assertion judges unless it says.
const DefaultSample = 200

// SampleIDs picks at most n ids spread evenly over the run, so a capped
// sample still sees the start, the middle and the end of the load.
func SampleIDs(ids []string, n int) []string {
	if n <= 0 || len(ids) <= n {
		return ids
	}
	out := make([]string, n)
	for i := range out {
		out[i] = ids[i*len(ids)/n]
	}
	return out
}

// Name is the assertion's name, or one derived from its shape.
func Name(spec scenario.TraceAssertion) string {
	if spec.Name != "" {
		return spec.Name
	}
	if s, err := ParseShape(spec.Shape); err == nil {
		return fmt.Sprintf("trace shape from %s (%d services)", s.Service, s.Size())
	}
	return "trace assertion"
}

// judged is one decoded trace.
type judged struct {
	rec  *Record
	tree *Tree
	err  error
}

// Judge evaluates one trace assertion over fetched evidence: the shape
// (one result), then each duration threshold and attribute check (one
// result each, named "<name> / <check>"). It touches no network, so
// `meshproof eval` re-runs it on saved evidence.
func Judge(spec scenario.TraceAssertion, ev Evidence, vars expect.Vars) []verdict.Result {
	name := Name(spec)
	sample := spec.Sample
	if sample <= 0 {
		sample = DefaultSample
	}
	recs := sampleRecords(ev.Traces, sample)
	withAttrs := len(spec.Attributes) > 0
	traces := decodeAll(recs, withAttrs)
	var out []verdict.Result
	if strings.TrimSpace(spec.Shape) != "" {
		out = append(out, judgeShape(name, spec, traces))
	}
	for _, d := range spec.Durations {
		out = append(out, judgeDuration(name, d, traces, vars))
	}
	for _, a := range spec.Attributes {
		out = append(out, judgeAttribute(name, a, traces))
	}
	if len(out) == 0 {
		out = append(out, verdict.Result{Kind: "traces", Name: name, Status: verdict.Error,
			Detail: "the assertion has no shape, durations or attributes to check"})
	}
	return out
}

// decodeAll decodes and builds every trace, spread over the CPUs: decoding
// dominates judging, and 10,000 traces must be judged in well under a second.
func decodeAll(recs []*Record, withAttrs bool) []judged {
	traces := make([]judged, len(recs))
	workers := min(runtime.GOMAXPROCS(0), max(1, len(recs)/64))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(recs) {
					return
				}
				r := recs[i]
				traces[i].rec = r
				if r.Raw == nil {
					traces[i].tree = &Tree{TraceID: r.ID}
					continue
				}
				spans, err := DecodeSpans(r.Raw, withAttrs)
				traces[i].tree, traces[i].err = BuildTree(spans), err
				traces[i].tree.TraceID = r.ID
			}
		})
	}
	wg.Wait()
	return traces
}

func sampleRecords(all []Record, n int) []*Record {
	idx := make([]string, len(all))
	pos := make(map[string]int, len(all))
	for i := range all {
		idx[i] = all[i].ID
		pos[all[i].ID] = i
	}
	ids := SampleIDs(idx, n)
	out := make([]*Record, len(ids))
	for i, id := range ids {
		out[i] = &all[pos[id]]
	}
	return out
}

// judgeShape judges the share of traces whose tree has the expected shape.
// Traces still missing spans count apart from mismatches: when only they
// stand between the run and the required share, the verdict is incomplete
// (missing telemetry) rather than failed.
func judgeShape(name string, spec scenario.TraceAssertion, traces []judged) verdict.Result {
	res := verdict.Result{Kind: "traces", Name: name}
	shape, err := ParseShape(spec.Shape)
	if err != nil {
		res.Status, res.Detail = verdict.Error, err.Error()
		return res
	}
	require, err := parseRequire(spec.Require)
	if err != nil {
		res.Status, res.Detail = verdict.Error, err.Error()
		return res
	}
	subset := spec.Match == "subset"
	res.Expected = fmt.Sprintf(">= %s of traces match (%s)", expect.Format(require, expect.Fraction), map[bool]string{true: "subset", false: "exact"}[subset])
	if len(traces) == 0 {
		res.Status, res.Measured = verdict.Incomplete, "0 traces fetched"
		res.Detail = "no trace ids to judge: did the load record any?"
		return res
	}
	t := classifyAll(traces, shape, subset)
	n := len(traces)
	share := float64(t.matched) / float64(n)
	res.Measured = fmt.Sprintf("%d/%d traces match (%s)", t.matched, n, expect.Format(share, expect.Fraction))
	if t.incomplete > 0 {
		res.Measured += fmt.Sprintf(", %d incomplete", t.incomplete)
	}
	if mism := n - t.matched - t.incomplete; mism > 0 {
		res.Measured += fmt.Sprintf(", %d mismatch", mism)
	}
	const eps = 1e-9
	switch {
	case share >= require-eps:
		res.Status = verdict.Pass
		return res
	case float64(t.matched+t.incomplete)/float64(n) >= require-eps:
		// Only missing telemetry stands between this run and a pass.
		res.Status = verdict.Incomplete
	default:
		res.Status = verdict.Fail
	}
	res.Detail = t.detail(shape)
	return res
}

// parseRequire is the share of traces that must match: all of them unless
// require says a percentage.
func parseRequire(require string) (float64, error) {
	if require == "" {
		return 1.0, nil
	}
	v, u, err := expect.ParseValue(require)
	if err != nil || (u != expect.Fraction && u != expect.None) {
		return 0, fmt.Errorf("require %q: want a percentage such as 99.9%%", require)
	}
	return v, nil
}

// shapeTally is how the traces compared with the shape, with the first
// trace of each kind of failure kept to show.
type shapeTally struct {
	matched, incomplete int
	firstBad            *judged // first mismatch
	firstIncomplete     *judged // first trace still missing spans
}

// classifyAll compares every trace with the shape; a trace that failed to
// decode counts as incomplete.
func classifyAll(traces []judged, shape *Shape, subset bool) shapeTally {
	var t shapeTally
	for i := range traces {
		tr := &traces[i]
		o := Incomplete
		if tr.err == nil {
			o = Classify(tr.tree, shape, subset)
		}
		switch o {
		case Match:
			t.matched++
		case Incomplete:
			t.incomplete++
			if t.firstIncomplete == nil {
				t.firstIncomplete = tr
			}
		default:
			if t.firstBad == nil {
				t.firstBad = tr
			}
		}
	}
	return t
}

// detail draws the first mismatch and the first incomplete trace beside the
// expected shape, saying why the incomplete one stopped being polled.
func (t shapeTally) detail(shape *Shape) string {
	var b strings.Builder
	if t.firstBad != nil {
		b.WriteString(sideBySide("expected", shape.String(), "actual, trace "+t.firstBad.rec.ID, t.firstBad.tree.Draw()))
	}
	if tr := t.firstIncomplete; tr != nil {
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		why := fmt.Sprintf("stopped polling: %s after %d polls", tr.rec.State, tr.rec.Polls)
		if tr.err != nil {
			why = tr.err.Error()
		} else if tr.rec.Error != "" {
			why += ": " + tr.rec.Error
		}
		fmt.Fprintf(&b, "incomplete (spans still missing; %s):\n", why)
		b.WriteString(sideBySide("expected", shape.String(), "actual, trace "+tr.rec.ID, tr.tree.Draw()))
	}
	return b.String()
}

// sideBySide draws two texts in columns.
func sideBySide(lt, left, rt, right string) string {
	ls := append([]string{lt, strings.Repeat("-", len(lt))}, strings.Split(strings.TrimRight(left, "\n"), "\n")...)
	rs := append([]string{rt, strings.Repeat("-", len(rt))}, strings.Split(strings.TrimRight(right, "\n"), "\n")...)
	w := 0
	for _, l := range ls {
		w = max(w, len(l))
	}
	var b strings.Builder
	for i := 0; i < max(len(ls), len(rs)); i++ {
		l, r := "", ""
		if i < len(ls) {
			l = ls[i]
		}
		if i < len(rs) {
			r = rs[i]
		}
		b.WriteString(strings.TrimRight(fmt.Sprintf("%-*s   | %s", w, l, r), " "))
		b.WriteByte('\n')
	}
	return b.String()
}

// DurationCheck is a parsed "service-a p(99) < 50ms".
type DurationCheck struct {
	Service string
	// Stat is p(N), avg, min, max or med.
	Stat string
	// Quantile in [0,1] when Stat is a percentile.
	Quantile float64
	Expect   expect.Expectation
}

// ParseDuration reads a per-service duration threshold.
func ParseDuration(s string) (DurationCheck, error) {
	f := strings.Fields(s)
	if len(f) < 4 {
		return DurationCheck{}, fmt.Errorf("duration check %q: want \"SERVICE STAT OP VALUE\", e.g. \"service-a p(99) < 50ms\"", s)
	}
	d := DurationCheck{Service: f[0], Stat: f[1]}
	switch {
	case strings.HasPrefix(d.Stat, "p(") && strings.HasSuffix(d.Stat, ")"):
		q, err := strconv.ParseFloat(d.Stat[2:len(d.Stat)-1], 64)
		if err != nil || q < 0 || q > 100 {
			return d, fmt.Errorf("duration check %q: %s is not a percentile p(0..100)", s, d.Stat)
		}
		d.Quantile = q / 100
	case d.Stat == "med":
		d.Quantile = 0.5
	case d.Stat == "avg" || d.Stat == "min" || d.Stat == "max":
	default:
		return d, fmt.Errorf("duration check %q: statistic %q: want p(N), avg, med, min or max", s, d.Stat)
	}
	e, err := expect.Parse(strings.Join(f[2:], " "))
	if err != nil {
		return d, fmt.Errorf("duration check %q: %w", s, err)
	}
	d.Expect = e
	return d, nil
}

// Measure computes the statistic over durations in seconds.
func (d DurationCheck) Measure(durs []float64) float64 {
	sort.Float64s(durs)
	switch d.Stat {
	case "avg":
		sum := 0.0
		for _, v := range durs {
			sum += v
		}
		return sum / float64(len(durs))
	case "min":
		return durs[0]
	case "max":
		return durs[len(durs)-1]
	}
	// Nearest rank, like k6 and HDR histograms report it.
	i := int(math.Ceil(d.Quantile*float64(len(durs)))) - 1
	return durs[max(0, min(i, len(durs)-1))]
}

// judgeDuration measures the entry-span (server or consumer) durations of
// one service over every judged trace.
func judgeDuration(name, spec string, traces []judged, vars expect.Vars) verdict.Result {
	res := verdict.Result{Kind: "traces", Name: name + " / " + spec, Expected: spec}
	d, err := ParseDuration(spec)
	if err != nil {
		res.Status, res.Detail = verdict.Error, err.Error()
		return res
	}
	var durs []float64
	for _, t := range traces {
		t.tree.walkNodes(func(n *Node) {
			if n.Service == d.Service {
				durs = append(durs, n.Duration())
			}
		})
	}
	if len(durs) == 0 {
		res.Status, res.Detail = verdict.Error, fmt.Sprintf("no spans of service %q in %d traces", d.Service, len(traces))
		return res
	}
	v := d.Measure(durs)
	unit := d.Expect.Unit
	if unit == expect.None {
		unit = expect.Seconds
	}
	res.Measured = fmt.Sprintf("%s %s = %s over %d spans", d.Service, d.Stat, expect.Format(v, unit), len(durs))
	ok, err := d.Expect.Check(v, vars)
	switch {
	case err != nil:
		res.Status, res.Detail = verdict.Error, err.Error()
	case ok:
		res.Status = verdict.Pass
	default:
		res.Status = verdict.Fail
	}
	return res
}

// judgeAttribute checks a span attribute on every span of a service.
func judgeAttribute(name string, a scenario.AttributeCheck, traces []judged) verdict.Result {
	desc := a.Service
	if a.Span != "" {
		desc += " " + a.Span
	}
	want := "exists"
	switch {
	case a.Equals != nil:
		want = fmt.Sprintf("== %q", *a.Equals)
	case a.Exists != nil && !*a.Exists:
		want = "absent"
	}
	res := verdict.Result{Kind: "traces", Name: fmt.Sprintf("%s / %s %s %s", name, desc, a.Key, want),
		Expected: fmt.Sprintf("every span: %s %s", a.Key, want)}
	var total, bad int
	var examples []string
	for _, t := range traces {
		for i := range t.tree.Spans {
			sp := &t.tree.Spans[i]
			if sp.Service != a.Service || (a.Span != "" && sp.Name != a.Span) {
				continue
			}
			total++
			v, has := sp.Attrs[a.Key]
			ok := has
			switch {
			case a.Equals != nil:
				ok = has && v == *a.Equals
			case a.Exists != nil && !*a.Exists:
				ok = !has
			}
			if !ok {
				bad++
				if len(examples) < 3 {
					got := "absent"
					if has {
						got = fmt.Sprintf("%q", v)
					}
					examples = append(examples, fmt.Sprintf("trace %s span %s %q: %s is %s", t.tree.TraceID, sp.SpanID, sp.Name, a.Key, got))
				}
			}
		}
	}
	if total == 0 {
		res.Status, res.Detail = verdict.Error, fmt.Sprintf("no spans of %s in %d traces", desc, len(traces))
		return res
	}
	res.Measured = fmt.Sprintf("%d/%d spans satisfy", total-bad, total)
	res.Status = verdict.Pass
	if bad > 0 {
		res.Status, res.Detail = verdict.Fail, strings.Join(examples, "\n")
	}
	return res
}
