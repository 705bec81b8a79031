package compare

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Formats Write knows.
const (
	FormatTable    = "table"
	FormatMarkdown = "markdown"
	FormatJSON     = "json"
)

// Write renders the result: an aligned table for a terminal, Markdown for
// a pull-request comment or $GITHUB_STEP_SUMMARY, or JSON for tools.
func (r *Result) Write(w io.Writer, format string) error {
	switch format {
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("encode comparison: %w", err)
		}
		return nil
	case FormatMarkdown:
		r.writeMarkdown(w)
		return nil
	case FormatTable, "":
		return r.writeTable(w)
	}
	return fmt.Errorf("%w: format %q: want table, markdown or json", ErrInput, format)
}

// verdictLine is the comparison's one-line answer.
func (r *Result) verdictLine() string {
	n := 0
	for _, c := range r.Checks {
		if c.Regression {
			n++
		}
	}
	if n == 0 {
		return fmt.Sprintf("no regression (%d checks)", len(r.Checks))
	}
	return fmt.Sprintf("REGRESSION: %d of %d checks", n, len(r.Checks))
}

func mark(bad bool) string {
	if bad {
		return "✗"
	}
	return "✓"
}

func (r *Result) writeTable(w io.Writer) error {
	fmt.Fprintf(w, "base %s (%d requests, %d traces)\nnew  %s (%d requests, %d traces)\n\n",
		r.Base.Run, r.Base.Requests, r.Base.Traces, r.New.Run, r.New.Requests, r.New.Traces)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LATENCY\tBASE\tNEW\tCHANGE\t")
	for _, p := range r.Latency.Percentiles {
		fmt.Fprintf(tw, "p(%g)\t%s\t%s\t%s\t\n", p.P, fmtMs(p.BaseMs), fmtMs(p.NewMs), pct(p.Change))
	}
	fmt.Fprintf(tw, "avg\t%s\t%s\t%s\t\n", fmtMs(r.Latency.BaseAvgMs), fmtMs(r.Latency.NewAvgMs), pct(relChange(r.Latency.BaseAvgMs, r.Latency.NewAvgMs)))
	fmt.Fprintf(tw, "throughput\t%.1f/s\t%.1f/s\t%s\t\n", r.Throughput.Base, r.Throughput.New, pct(r.Throughput.Change))
	fmt.Fprintf(tw, "error rate\t%.2f%%\t%.2f%%\t%+.2f pts\t\n", r.ErrorRate.Base*100, r.ErrorRate.New*100, r.ErrorRate.Change*100)
	k := r.Latency.KS
	fmt.Fprintf(tw, "\nKS test\tD=%.3f\tp=%.3g\t%s\t\n", k.D, k.P, map[bool]string{true: "distributions differ", false: "same distribution"}[k.Significant(r.Alpha)])
	if len(r.Services) > 0 {
		fmt.Fprintln(tw, "\nSPANS\tBASE p50\tNEW p50\tCHANGE\tBASE p99\tNEW p99\tCHANGE\t")
		for _, s := range r.Services {
			flag := ""
			if s.Slower {
				flag = "slower"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Service, fmtMs(s.BaseP50Ms), fmtMs(s.NewP50Ms), pct(s.P50Change),
				fmtMs(s.BaseP99Ms), fmtMs(s.NewP99Ms), pct(s.P99Change), flag)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write comparison: %w", err)
	}
	if r.Shape.Changed() {
		fmt.Fprintf(w, "\ntrace shape changed: %s\n", r.Shape.summary())
	}
	fmt.Fprintln(w, "\nchecks")
	for _, c := range r.Checks {
		fmt.Fprintf(w, "  %s %s — %s", mark(c.Regression), c.Threshold, c.Measured)
		if c.Note != "" {
			fmt.Fprintf(w, " (%s)", c.Note)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "\n%s\n", r.verdictLine())
	return nil
}

func (r *Result) writeMarkdown(w io.Writer) {
	icon := "✅"
	if r.Regression {
		icon = "❌"
	}
	fmt.Fprintf(w, "### %s meshproof compare: %s\n\n", icon, r.verdictLine())
	fmt.Fprintf(w, "Base `%s` (%d requests) → new `%s` (%d requests).\n\n", md(r.Base.Run), r.Base.Requests, md(r.New.Run), r.New.Requests)
	fmt.Fprintln(w, "| | check | measured | note |\n|---|---|---|---|")
	for _, c := range r.Checks {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", mark(c.Regression), md(c.Threshold), md(c.Measured), md(c.Note))
	}
	fmt.Fprintln(w, "\n| latency | base | new | change |\n|---|---:|---:|---:|")
	for _, p := range r.Latency.Percentiles {
		fmt.Fprintf(w, "| p(%g) | %s | %s | %s |\n", p.P, fmtMs(p.BaseMs), fmtMs(p.NewMs), pct(p.Change))
	}
	fmt.Fprintf(w, "| throughput | %.1f/s | %.1f/s | %s |\n", r.Throughput.Base, r.Throughput.New, pct(r.Throughput.Change))
	fmt.Fprintf(w, "| error rate | %.2f%% | %.2f%% | %+.2f pts |\n", r.ErrorRate.Base*100, r.ErrorRate.New*100, r.ErrorRate.Change*100)
	fmt.Fprintf(w, "\nKolmogorov–Smirnov on the latency histograms: D=%.3f, p=%.3g.\n", r.Latency.KS.D, r.Latency.KS.P)
	if len(r.Services) > 0 {
		fmt.Fprintln(w, "\n<details><summary>span durations per service</summary>\n\n| service | base p50 | new p50 | change | base p99 | new p99 | change | |\n|---|---:|---:|---:|---:|---:|---:|---|")
		for _, s := range r.Services {
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", md(s.Service), fmtMs(s.BaseP50Ms), fmtMs(s.NewP50Ms), pct(s.P50Change),
				fmtMs(s.BaseP99Ms), fmtMs(s.NewP99Ms), pct(s.P99Change), map[bool]string{true: "**slower**"}[s.Slower])
		}
		fmt.Fprintln(w, "\n</details>")
	}
	if r.Shape.Changed() {
		fmt.Fprintf(w, "\n**Trace shape changed:** %s\n", md(r.Shape.summary()))
	}
}

// md keeps a cell in its table cell.
func md(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}
