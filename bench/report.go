// Package bench holds the pure parts of `make bench`: figures with their
// goals and verdicts, the machine description, the parsers for the peer
// tools' output (hey, wrk, ghz) and the writers of bench/results.json and
// bench/RESULTS.md. The program that measures lives in bench/cmd/bench; it
// is kept apart so that what decides "MISSED" can be unit-tested without
// running a benchmark.
package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Verdicts of a figure.
const (
	Met         = "met"
	Missed      = "MISSED"
	Info        = "info"         // a measurement without a goal
	NotMeasured = "not measured" // the item could not run; Note says why
)

// Goal is a threshold a figure must meet: Value Op Target.
type Goal struct {
	// Op is one of >=, >, <=, <.
	Op     string  `json:"op"`
	Target float64 `json:"target"`
}

// AtLeast, Below and AtMost build goals.
func AtLeast(v float64) *Goal { return &Goal{Op: ">=", Target: v} }

// Below is a strict upper bound.
func Below(v float64) *Goal { return &Goal{Op: "<", Target: v} }

// AtMost is an inclusive upper bound.
func AtMost(v float64) *Goal { return &Goal{Op: "<=", Target: v} }

// Check reports whether v meets the goal.
func (g *Goal) Check(v float64) bool {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return false
	}
	switch g.Op {
	case ">=":
		return v >= g.Target
	case ">":
		return v > g.Target
	case "<=":
		return v <= g.Target
	case "<":
		return v < g.Target
	}
	return false
}

func (g *Goal) String() string {
	return g.Op + " " + trimFloat(g.Target)
}

// Figure is one line of the results table. Every figure is either a ratio
// or an absolute value with the reference it is to be read against (Ref),
// measured in the same run.
type Figure struct {
	// Item is the name of the bench item that measured it (http, grpc, …),
	// as `bench -items` selects it.
	Item  string  `json:"item"`
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	// Unit of Value: "x" for ratios, "ms", "s", "MB", "req/s", "traces/s", "%".
	Unit    string `json:"unit"`
	Goal    *Goal  `json:"goal,omitempty"`
	Verdict string `json:"verdict"`
	// Ref is what Value is compared with, e.g. "ours 41k req/s, hey 29k req/s".
	Ref  string `json:"ref,omitempty"`
	Note string `json:"note,omitempty"`
}

// NewFigure computes the verdict of a measured value against an optional goal.
func NewFigure(item string, name string, value float64, unit string, goal *Goal, ref string) Figure {
	f := Figure{Item: item, Name: name, Value: value, Unit: unit, Goal: goal, Ref: ref, Verdict: Info}
	if goal != nil {
		f.Verdict = Missed
		if goal.Check(value) {
			f.Verdict = Met
		}
	}
	return f
}

// Unmeasured is a figure that could not be taken, with the reason.
func Unmeasured(item string, name string, goal *Goal, reason string) Figure {
	return Figure{Item: item, Name: name, Value: math.NaN(), Goal: goal, Verdict: NotMeasured, Note: reason}
}

// MarshalJSON writes NaN (not measured) as null, which JSON can carry.
func (f Figure) MarshalJSON() ([]byte, error) {
	type plain Figure
	aux := struct {
		plain
		Value *float64 `json:"value"`
	}{plain: plain(f)}
	if !math.IsNaN(f.Value) && !math.IsInf(f.Value, 0) {
		v := f.Value
		aux.Value = &v
	}
	return json.Marshal(aux)
}

// Ratio is a ÷ b, NaN when b is not positive (the reference failed).
func Ratio(a, b float64) float64 {
	if b <= 0 || math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	return a / b
}

// RelErr is |got − want| ÷ want: how far a measurement is from its
// reference, as a share of the reference.
func RelErr(got, want float64) float64 {
	if want == 0 {
		return math.NaN()
	}
	return math.Abs(got-want) / math.Abs(want)
}

// Best is the largest of the values (the machine's capacity shows in the
// best round; the others lost time to neighbours on a shared host).
func Best(vs []float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	b := vs[0]
	for _, v := range vs[1:] {
		b = max(b, v)
	}
	return b
}

// Median of the values, NaN when there are none.
func Median(vs []float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), vs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Percentile is the nearest-rank percentile p (0–100) of vs: the smallest
// value with at least p% of the values at or below it — the definition
// HdrHistogram's ValueAtPercentile follows.
func Percentile(vs []float64, p float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), vs...)
	sort.Float64s(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

// ProfileEntry is one line of `go tool pprof -top`.
type ProfileEntry struct {
	Flat     string  `json:"flat"`
	FlatPct  float64 `json:"flat_pct"`
	Cum      string  `json:"cum"`
	CumPct   float64 `json:"cum_pct"`
	Function string  `json:"function"`
}

// Report is everything one bench run wrote.
type Report struct {
	Machine Machine           `json:"machine"`
	Started time.Time         `json:"started"`
	Took    time.Duration     `json:"took_ns"`
	Tools   map[string]string `json:"tools"`
	Figures []Figure          `json:"figures"`
	// Details holds each item's raw measurements (rounds, percentiles).
	Details map[string]any `json:"details"`
	// Profile is the top of the engine's CPU profile in the throughput run.
	Profile     []ProfileEntry `json:"profile,omitempty"`
	ProfileFile string         `json:"profile_file,omitempty"`
	ProfileNote string         `json:"profile_note,omitempty"`
}

// Missed counts the figures that missed their goal. A goal that was not
// measured counts as missed: a figure nobody took proves nothing.
func (r *Report) Missed() int {
	n := 0
	for _, f := range r.Figures {
		if f.Verdict == Missed || (f.Verdict == NotMeasured && f.Goal != nil) {
			n++
		}
	}
	return n
}

// FormatValue renders a figure's value with its unit.
func FormatValue(f Figure) string {
	if math.IsNaN(f.Value) || math.IsInf(f.Value, 0) {
		return "—"
	}
	switch f.Unit {
	case "x":
		return fmt.Sprintf("%.2f×", f.Value)
	case "%":
		return fmt.Sprintf("%.1f%%", f.Value)
	case "req/s", "traces/s", "spans/s":
		return fmt.Sprintf("%s %s", humanInt(f.Value), f.Unit)
	case "MB", "ms":
		return fmt.Sprintf("%.1f %s", f.Value, f.Unit)
	case "s":
		return fmt.Sprintf("%.2f s", f.Value)
	case "":
		return trimFloat(f.Value)
	}
	return fmt.Sprintf("%s %s", trimFloat(f.Value), f.Unit)
}

func goalText(f Figure) string {
	if f.Goal == nil {
		return ""
	}
	g := *f.Goal
	if f.Unit == "x" {
		return g.Op + " " + trimFloat(g.Target) + "×"
	}
	if f.Unit == "" {
		return g.String()
	}
	if strings.HasSuffix(f.Unit, "/s") {
		return g.Op + " " + humanInt(g.Target) + " " + f.Unit
	}
	return g.String() + " " + f.Unit
}

// WriteTable prints the figures as an aligned table.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "item\tfigure\tvalue\tgoal\tverdict\treference / note")
	for _, f := range r.Figures {
		ref := f.Ref
		if f.Note != "" {
			ref = strings.TrimSpace(ref + "  " + f.Note)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", f.Item, f.Name, FormatValue(f), goalText(f), f.Verdict, ref)
	}
	return tw.Flush()
}

// WriteMarkdown writes RESULTS.md: the machine, the table and the profile.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	m := r.Machine
	b.WriteString("# meshproof bench results\n\n")
	b.WriteString("Written by `make bench` (bench/cmd/bench); the raw numbers are in `results.json`.\n")
	b.WriteString("Every figure is a ratio, or an absolute value beside the reference measured in the same run.\n")
	b.WriteString("Absolute times belong to this machine only.\n\n")
	b.WriteString("## Machine\n\n")
	fmt.Fprintf(&b, "| | |\n|---|---|\n")
	fmt.Fprintf(&b, "| date | %s |\n", r.Started.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "| CPU | %s |\n", mdEscape(m.CPUModel))
	fmt.Fprintf(&b, "| cores | %d |\n", m.Cores)
	fmt.Fprintf(&b, "| memory | %.1f GiB |\n", float64(m.MemoryBytes)/(1<<30))
	fmt.Fprintf(&b, "| OS | %s |\n", mdEscape(m.OS))
	fmt.Fprintf(&b, "| Go | %s |\n", m.GoVersion)
	fmt.Fprintf(&b, "| load average at start | %s |\n", m.LoadAvg)
	if m.OpenFiles > 0 {
		fmt.Fprintf(&b, "| open files per process | %d |\n", m.OpenFiles)
	}
	fmt.Fprintf(&b, "| run took | %s |\n", r.Took.Round(time.Second))
	if len(r.Tools) > 0 {
		names := make([]string, 0, len(r.Tools))
		for n := range r.Tools {
			names = append(names, n)
		}
		sort.Strings(names)
		parts := make([]string, len(names))
		for i, n := range names {
			parts[i] = n + " " + r.Tools[n]
		}
		fmt.Fprintf(&b, "| peer tools | %s |\n", mdEscape(strings.Join(parts, ", ")))
	}
	fmt.Fprintf(&b, "\n## Goals (%d missed)\n\n", r.Missed())
	writeGoals(&b, r.Figures)
	b.WriteString("## All figures\n\n")
	b.WriteString("| item | figure | value | goal | verdict | reference / note |\n|---|---|---|---|---|---|\n")
	for _, f := range r.Figures {
		verdict := f.Verdict
		if verdict == Missed {
			verdict = "**MISSED**"
		}
		ref := f.Ref
		if f.Note != "" {
			ref = strings.TrimSpace(ref + " " + f.Note)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", f.Item, mdEscape(f.Name), FormatValue(f), mdEscape(goalText(f)), verdict, mdEscape(ref))
	}
	if len(r.Profile) > 0 || r.ProfileNote != "" {
		b.WriteString("\n## Where the engine's time goes\n\n")
		if r.ProfileNote != "" {
			b.WriteString(r.ProfileNote + "\n\n")
		}
		if len(r.Profile) > 0 {
			fmt.Fprintf(&b, "Top of the CPU profile (`go tool pprof -top %s`):\n\n", r.ProfileFile)
			b.WriteString("| flat | flat% | cum | cum% | function |\n|---|---|---|---|---|\n")
			for _, e := range r.Profile {
				fmt.Fprintf(&b, "| %s | %.1f%% | %s | %.1f%% | `%s` |\n", e.Flat, e.FlatPct, e.Cum, e.CumPct, e.Function)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeGoals lists every figure with a goal, met or missed; one that was
// not measured is listed as missed, with the reason.
func writeGoals(b *strings.Builder, figs []Figure) {
	for _, f := range figs {
		if f.Goal == nil {
			continue
		}
		verdict, why := "met", ""
		switch f.Verdict {
		case Missed:
			verdict = "**MISSED**"
		case NotMeasured:
			verdict, why = "**MISSED**", " — not measured: "+mdEscape(f.Note)
		}
		fmt.Fprintf(b, "- %s — `%s` %s %s: %s%s\n", verdict, f.Item, mdEscape(f.Name), mdEscape(goalText(f)), FormatValue(f), why)
	}
	b.WriteString("\n")
}

// WriteFiles writes results.json and RESULTS.md into dir.
func (r *Report) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("results dir: %w", err)
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(js, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results.json: %w", err)
	}
	var md strings.Builder
	if err := r.WriteMarkdown(&md); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "RESULTS.md"), []byte(md.String()), 0o644); err != nil {
		return fmt.Errorf("write RESULTS.md: %w", err)
	}
	return nil
}

func mdEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ")
}

// trimFloat prints up to three decimals without trailing zeros.
func trimFloat(v float64) string {
	s := fmt.Sprintf("%.3f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "-0" {
		s = "0"
	}
	return s
}

// humanInt prints 41234.5 as 41,235.
func humanInt(v float64) string {
	n := int64(math.Round(v))
	neg := n < 0
	if neg {
		n = -n
	}
	s := fmt.Sprint(n)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}
