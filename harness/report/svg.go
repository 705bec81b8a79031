package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/meshproof/meshproof/harness/load"
)

// Chart geometry, in SVG user units. The charts are drawn here rather than
// by a JavaScript library so report.html opens offline, from a CI artifact
// zip, with nothing to fetch and nothing to execute.
const (
	chartW, chartH           = 760.0, 220.0
	padL, padR, padT, padB   = 58.0, 14.0, 14.0, 30.0
	plotW, plotH             = chartW - padL - padR, chartH - padT - padB
	histBins                 = 48
	maxWaterfallsPerFailures = 12
)

// chart is one SVG chart, filled by the builders below and drawn by the
// "chart" template.
type chart struct {
	ID     string
	Title  string
	W, H   float64
	Shades []shade
	Lines  []polyline
	Bars   []bar
	Marks  []vmark
	XTicks []tick
	YTicks []tick
	XLabel string
	YLabel string
	Legend []legend
}

type shade struct {
	X, W  float64
	Class string
	Title string
}

type polyline struct {
	Class, Points string
}

type bar struct {
	X, Y, W, H float64
	Class      string
	Title      string
}

// vmark is a labelled vertical line (a percentile on the histogram).
type vmark struct {
	X, LabelX, LabelY float64
	Anchor            string
	Label             string
}

type tick struct {
	Pos   float64
	Label string
}

type legend struct{ Class, Label string }

// scale maps [lo, hi] onto [from, to].
type scale struct{ lo, hi, from, to float64 }

func (s scale) at(v float64) float64 {
	if s.hi <= s.lo {
		return s.from
	}
	return s.from + (v-s.lo)/(s.hi-s.lo)*(s.to-s.from)
}

// niceMax rounds v up to 1, 2 or 5 times a power of ten, so axis labels are
// round numbers.
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func ticks(s scale, n int, format func(float64) string) []tick {
	out := make([]tick, 0, n+1)
	for i := 0; i <= n; i++ {
		v := s.lo + (s.hi-s.lo)*float64(i)/float64(n)
		out = append(out, tick{Pos: s.at(v), Label: format(v)})
	}
	return out
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func points(xs, ys []float64) string {
	var b strings.Builder
	for i := range xs {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.1f,%.1f", xs[i], ys[i])
	}
	return b.String()
}

// timeAxis is the x axis of the per-second charts: seconds since load start.
func timeAxis(series []load.Point) scale {
	end := 1.0
	if n := len(series); n > 0 {
		end = math.Max(end, math.Ceil(series[n-1].T))
	}
	return scale{0, end, padL, padL + plotW}
}

// windowShades shades the warm-up and every fault's effect window.
func windowShades(series []load.Point, x scale, a *Artifacts) []shade {
	var out []shade
	warm := 0.0
	for _, p := range series {
		if p.Warmup {
			warm = p.T
		}
	}
	if warm > 0 {
		out = append(out, shade{X: x.at(0), W: x.at(warm) - x.at(0), Class: "warmup", Title: "warm-up"})
	}
	start := a.LoadStart()
	for _, w := range a.Faults {
		from := w.From.Sub(start).Seconds()
		to := x.hi
		if !w.To.IsZero() {
			to = w.To.Sub(start).Seconds()
		}
		from, to = math.Max(from, x.lo), math.Min(to, x.hi)
		if to <= from {
			continue
		}
		out = append(out, shade{X: x.at(from), W: x.at(to) - x.at(from), Class: "fault",
			Title: fmt.Sprintf("faults[%d] %s %s", w.Step, w.Action, w.Service)})
	}
	return out
}

// latencyChart draws the per-second p50, p90 and p99.
func latencyChart(a *Artifacts) *chart {
	s := a.Load.Series
	top := 0.0
	for _, p := range s {
		top = math.Max(top, p.P99Ms)
	}
	x := timeAxis(s)
	y := scale{0, niceMax(top), padT + plotH, padT}
	c := &chart{ID: "latency-chart", Title: "Latency per second", W: chartW, H: chartH,
		XLabel: "seconds since load start", YLabel: "ms",
		Shades: windowShades(s, x, a),
		XTicks: ticks(x, 6, func(v float64) string { return num(math.Round(v*10) / 10) }),
		YTicks: ticks(y, 4, num),
		Legend: []legend{{"p50", "p50"}, {"p90", "p90"}, {"p99", "p99"}}}
	xs := make([]float64, len(s))
	p50, p90, p99 := make([]float64, len(s)), make([]float64, len(s)), make([]float64, len(s))
	for i, p := range s {
		xs[i], p50[i], p90[i], p99[i] = x.at(p.T), y.at(p.P50Ms), y.at(p.P90Ms), y.at(p.P99Ms)
	}
	c.Lines = []polyline{{"p99", points(xs, p99)}, {"p90", points(xs, p90)}, {"p50", points(xs, p50)}}
	return c
}

// throughputChart draws requests per second as a line and errors per
// second as red bars on the same axis.
func throughputChart(a *Artifacts) *chart {
	s := a.Load.Series
	top := 0.0
	for _, p := range s {
		top = math.Max(top, math.Max(p.RPS, float64(p.Errors)))
	}
	x := timeAxis(s)
	y := scale{0, niceMax(top), padT + plotH, padT}
	c := &chart{ID: "throughput-chart", Title: "Throughput and errors per second", W: chartW, H: chartH,
		XLabel: "seconds since load start", YLabel: "req/s",
		Shades: windowShades(s, x, a),
		XTicks: ticks(x, 6, func(v float64) string { return num(math.Round(v*10) / 10) }),
		YTicks: ticks(y, 4, num),
		Legend: []legend{{"rps", "requests/s"}, {"errors", "errors/s"}}}
	xs, ys := make([]float64, len(s)), make([]float64, len(s))
	prev := 0.0
	for i, p := range s {
		xs[i], ys[i] = x.at(p.T), y.at(p.RPS)
		if p.Errors > 0 {
			c.Bars = append(c.Bars, bar{X: x.at(prev), Y: y.at(float64(p.Errors)), W: math.Max(1, x.at(p.T)-x.at(prev)),
				H: y.at(0) - y.at(float64(p.Errors)), Class: "errors", Title: fmt.Sprintf("%d errors at %.0fs", p.Errors, p.T)})
		}
		prev = p.T
	}
	c.Lines = []polyline{{"rps", points(xs, ys)}}
	return c
}

// histogramChart re-bins the HDR histogram into log-spaced bins between
// the fastest and slowest request (the HDR buckets are far too fine to
// draw) and marks p50, p90 and p99.
func histogramChart(a *Artifacts) *chart {
	h := a.Hist
	lo, hi := math.Max(1, float64(h.Min())), math.Max(2, float64(h.Max()))
	if hi <= lo {
		hi = lo * 2
	}
	llo, lhi := math.Log10(lo), math.Log10(hi)+1e-9
	counts := make([]int64, histBins)
	for _, b := range h.Distribution() {
		if b.Count == 0 {
			continue
		}
		v := math.Max(lo, float64(b.From+b.To)/2)
		i := int((math.Log10(v) - llo) / (lhi - llo) * histBins)
		counts[max(0, min(i, histBins-1))] += b.Count
	}
	top := int64(1)
	for _, n := range counts {
		top = max(top, n)
	}
	x := scale{llo, lhi, padL, padL + plotW}
	y := scale{0, niceMax(float64(top)), padT + plotH, padT}
	ms := func(lg float64) string { return fmtMs(math.Pow(10, lg) / 1000) }
	c := &chart{ID: "histogram-chart", Title: "Latency distribution (measured requests)", W: chartW, H: chartH,
		XLabel: "latency (log scale)", YLabel: "requests",
		XTicks: ticks(x, 5, ms), YTicks: ticks(y, 4, num)}
	bw := plotW / histBins
	for i, n := range counts {
		if n == 0 {
			continue
		}
		from := math.Pow(10, llo+(lhi-llo)*float64(i)/histBins) / 1000
		c.Bars = append(c.Bars, bar{X: padL + float64(i)*bw + 0.5, Y: y.at(float64(n)), W: bw - 1, H: y.at(0) - y.at(float64(n)),
			Class: "hist", Title: fmt.Sprintf("%d requests from %s", n, fmtMs(from))})
	}
	for i, p := range []float64{50, 90, 99} {
		v := math.Max(lo, float64(h.ValueAtPercentile(p)))
		m := vmark{X: x.at(math.Log10(v)), LabelX: x.at(math.Log10(v)) + 3, LabelY: 26 + 13*float64(i),
			Anchor: "start", Label: fmt.Sprintf("p%s %s", num(p), fmtMs(v/1000))}
		if m.X > padL+plotW*0.75 {
			m.LabelX, m.Anchor = m.X-3, "end"
		}
		c.Marks = append(c.Marks, m)
	}
	return c
}

// fmtMs prints milliseconds with the precision a reader needs.
func fmtMs(ms float64) string {
	return time.Duration(ms * float64(time.Millisecond)).Round(durRound(ms)).String()
}

func durRound(ms float64) time.Duration {
	switch {
	case ms >= 100:
		return time.Millisecond
	case ms >= 1:
		return 10 * time.Microsecond
	}
	return time.Microsecond
}
