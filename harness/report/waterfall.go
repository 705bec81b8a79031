package report

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/meshproof/meshproof/harness/assert/traces"
)

// waterfall is one trace drawn as timed rows, one per service node, beside
// the expected shape with the nodes that differ marked.
type waterfall struct {
	ID      string
	TraceID string
	Title   string
	// Outcome is match, mismatch or incomplete (empty without a shape).
	Outcome string
	W, H    float64
	Rows    []wfRow
	Ticks   []tick
	// Expected is the shape's lines, missing nodes marked.
	Expected []shapeLine
}

// wfRow is one node. Class is ok, unexpected (not in the shape), differs
// (wrong service, operation or sync/async edge), missing (expected but
// absent: drawn as an empty row) or fragment (under a lost parent).
type wfRow struct {
	Y, X, W  float64
	Label    string
	Title    string
	Duration string
	Class    string
}

type shapeLine struct {
	Text  string
	Class string
}

const (
	wfRowH  = 22.0
	wfLabel = 300.0
	wfW     = 760.0
)

// treeDiff marks where an actual tree departs from a shape.
type treeDiff struct {
	node    map[*traces.Node]string
	shape   map[*traces.Shape]string
	missing map[*traces.Node][]*traces.Shape
}

// diffTree walks shape and actual tree together. Children pair up by
// service (and edge kind); a shape child with no partner is missing, an
// actual child with none is unexpected unless the shape is open there.
// traces.Classify gives the verdict; this only says where to look.
func diffTree(s *traces.Shape, root *traces.Node, subset bool) *treeDiff {
	d := &treeDiff{node: map[*traces.Node]string{}, shape: map[*traces.Shape]string{}, missing: map[*traces.Node][]*traces.Shape{}}
	d.walk(s, root, subset)
	return d
}

func (d *treeDiff) walk(s *traces.Shape, n *traces.Node, subset bool) {
	if s == nil {
		d.node[n] = "unexpected"
		for _, c := range n.Children {
			d.walk(nil, c, subset)
		}
		return
	}
	if s.Service != n.Service || s.Async != n.Async || (s.Operation != "" && s.Operation != n.Operation) {
		d.node[n], d.shape[s] = "differs", "differs"
	}
	used := make([]bool, len(n.Children))
	for _, sc := range s.Children {
		j := partner(sc, n.Children, used)
		if j < 0 {
			d.missing[n] = append(d.missing[n], sc)
			sc.Walk(func(m *traces.Shape) { d.shape[m] = "missing" })
			continue
		}
		used[j] = true
		d.walk(sc, n.Children[j], subset)
	}
	for j, c := range n.Children {
		if !used[j] && !(subset || s.Open) {
			d.walk(nil, c, subset)
		}
	}
}

// partner finds the unused child for a shape child: the same service and
// edge kind first, then the same service alone.
func partner(s *traces.Shape, kids []*traces.Node, used []bool) int {
	for _, exact := range []bool{true, false} {
		for j, c := range kids {
			if !used[j] && c.Service == s.Service && (!exact || c.Async == s.Async) {
				return j
			}
		}
	}
	return -1
}

// buildWaterfall lays out a tree; shape may be nil (no expectation).
func buildWaterfall(id, title string, t *traces.Tree, shape *NamedShape) waterfall {
	w := waterfall{ID: id, TraceID: t.TraceID, Title: title, W: wfW}
	var d *treeDiff
	if shape != nil {
		w.Outcome = traces.Classify(t, shape.Shape, shape.Subset).String()
		if len(t.Roots) > 0 {
			d = diffTree(shape.Shape, mainRoot(t, shape.Shape), shape.Subset)
		}
		w.Expected = shapeLines(shape.Shape, d)
	}
	t0, t1 := uint64(math.MaxUint64), uint64(0)
	for i := range t.Spans {
		t0, t1 = min(t0, t.Spans[i].Start), max(t1, t.Spans[i].End)
	}
	x := scale{0, math.Max(float64(t1-t0), 1), wfLabel, wfW - 70}
	add := func(label, title, dur, class string, from, to uint64) {
		r := wfRow{Y: float64(len(w.Rows))*wfRowH + 4, Label: label, Title: title, Duration: dur, Class: class, X: x.at(0)}
		if to > from {
			r.X, r.W = x.at(float64(from-t0)), math.Max(1, x.at(float64(to-t0))-x.at(float64(from-t0)))
		}
		w.Rows = append(w.Rows, r)
	}
	var walk func(n *traces.Node, depth int, class string)
	walk = func(n *traces.Node, depth int, class string) {
		if d != nil && d.node[n] != "" {
			class = d.node[n]
		}
		// The label column is narrow: the operation's last path segment
		// (Greeting of greeting.v3.GreetingService/Greeting) goes there,
		// the whole name into the bar's tooltip.
		op := n.Operation[strings.LastIndex(n.Operation, "/")+1:]
		label := strings.Repeat("  ", depth) + map[bool]string{true: "~> ", false: ""}[n.Async] + n.Service + ": " + op
		dur := time.Duration(n.Duration() * float64(time.Second)).Round(10 * time.Microsecond).String()
		add(label, n.Service+": "+n.Operation, dur, class, n.Entry.Start, n.Entry.End)
		for _, c := range n.Children {
			walk(c, depth+1, rowClass(class))
		}
		if d != nil {
			for _, m := range d.missing[n] {
				add(strings.Repeat("  ", depth+1)+"missing: "+m.Service, "expected but absent", "", "missing", 0, 0)
			}
		}
	}
	for i, r := range t.Roots {
		class := "ok"
		if shape != nil && r != mainRoot(t, shape.Shape) || shape == nil && i > 0 {
			class = "fragment"
		}
		walk(r, 0, class)
	}
	w.H = float64(len(w.Rows))*wfRowH + 28
	w.Ticks = ticks(x, 4, func(v float64) string { return fmtMs(v / 1e6) })
	return w
}

// rowClass is what a node's children inherit: an unexpected subtree stays
// unexpected, a fragment stays a fragment, anything else starts over.
func rowClass(parent string) string {
	if parent == "unexpected" || parent == "fragment" {
		return parent
	}
	return "ok"
}

// mainRoot mirrors traces.Classify's choice: the earliest root of the
// shape's root service, else the earliest root.
func mainRoot(t *traces.Tree, s *traces.Shape) *traces.Node {
	for _, r := range t.Roots {
		if r.Service == s.Service {
			return r
		}
	}
	return t.Roots[0]
}

func shapeLines(s *traces.Shape, d *treeDiff) []shapeLine {
	var out []shapeLine
	var walk func(n *traces.Shape, depth int)
	walk = func(n *traces.Shape, depth int) {
		text := strings.Repeat("  ", depth) + map[bool]string{true: "~> ", false: ""}[n.Async] + n.Service
		if n.Operation != "" {
			text += ": " + n.Operation
		}
		class := "ok"
		if d != nil && d.shape[n] != "" {
			class = d.shape[n]
		}
		out = append(out, shapeLine{Text: text, Class: class})
		for _, c := range n.Children {
			walk(c, depth+1)
		}
		if n.Open {
			out = append(out, shapeLine{Text: strings.Repeat("  ", depth+1) + "...", Class: "ok"})
		}
	}
	walk(s, 0)
	return out
}

// waterfalls draws the sample trace (the first that matches the first
// shape, else the first with spans) and every failing trace, up to a cap.
func waterfalls(a *Artifacts) (sample *waterfall, failing []waterfall, more int) {
	trees := a.Trees()
	shapes := a.Shapes()
	var first *NamedShape
	if len(shapes) > 0 {
		first = &shapes[0]
	}
	for _, t := range trees {
		if first == nil || traces.Classify(t, first.Shape, first.Subset) == traces.Match {
			w := buildWaterfall("sample-trace", "Sample trace", t, first)
			sample = &w
			break
		}
	}
	if sample == nil && len(trees) > 0 {
		w := buildWaterfall("sample-trace", "Sample trace", trees[0], first)
		sample = &w
	}
	for i := range shapes {
		sh := &shapes[i]
		for _, t := range trees {
			if traces.Classify(t, sh.Shape, sh.Subset) == traces.Match {
				continue
			}
			if len(failing) >= maxWaterfallsPerFailures {
				more++
				continue
			}
			failing = append(failing, buildWaterfall(fmt.Sprintf("failing-trace-%d", len(failing)+1), sh.Name, t, sh))
		}
	}
	return sample, failing, more
}
