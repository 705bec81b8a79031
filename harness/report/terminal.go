package report

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/meshproof/meshproof/harness/assert/expect"
	"github.com/meshproof/meshproof/harness/assert/verdict"
)

// Style decides how the terminal report looks; Color only on a terminal.
type Style struct {
	Color bool
}

func (s Style) paint(code, text string) string {
	if !s.Color {
		return text
	}
	return "\x1b[" + code + "m" + text + "\x1b[0m"
}

func (s Style) mark(st verdict.Status) string {
	switch st {
	case verdict.Pass:
		return s.paint("32", "✓")
	case verdict.Incomplete:
		return s.paint("33", "…")
	}
	return s.paint("31", "✗")
}

// WriteTerminal prints the human summary: environment, load, one line per
// assertion with its measured value, details of failures, a sample trace.
func (r *Report) WriteTerminal(w io.Writer, st Style) {
	fmt.Fprintf(w, "\n%s  %s  (backend %s, run %s)\n", st.paint("1", "scenario"), r.Scenario, r.Backend, r.RunID)
	if len(r.Services) > 0 {
		fmt.Fprintf(w, "\n%s  all ready in %s\n", st.paint("1", "environment"), r.Ready.Round(time.Millisecond))
		fmt.Fprintf(w, "  %-12s %-10s %9s %10s %8s  %s\n", "SERVICE", "KIND", "READY", "PEAK RSS", "CPU s", "RUNS")
		for _, s := range r.Services {
			fmt.Fprintf(w, "  %-12s %-10s %9s %10s %8.2f  %s\n", s.Name, s.Kind,
				s.ServiceInfo.Ready.Round(time.Millisecond), bytesHuman(s.PeakRSSBytes), s.CPUSeconds, runs(s))
		}
	}
	if l := r.Load; l != nil {
		fmt.Fprintf(w, "\n%s  %s %s  %d requests (%d ok, %d errors) in %s = %.1f/s\n",
			st.paint("1", "load"), l.Model, l.Target, l.Requests, l.OK, l.Errors, l.Duration.Round(time.Millisecond), l.RPS)
		if len(l.Latency) > 0 {
			var parts []string
			for _, k := range latencyOrder(l.Latency) {
				parts = append(parts, fmt.Sprintf("%s=%s", k, expect.Format(l.Latency[k], expect.Seconds)))
			}
			fmt.Fprintf(w, "  latency  %s\n", strings.Join(parts, "  "))
		}
		if len(l.Statuses) > 0 {
			fmt.Fprintf(w, "  statuses %s\n", countsLine(l.Statuses))
		}
		if len(l.ErrorKinds) > 0 {
			fmt.Fprintf(w, "  errors   %s\n", countsLine(l.ErrorKinds))
		}
	}
	if r.Drain > 0 {
		fmt.Fprintf(w, "  drained in %s\n", r.Drain.Round(time.Millisecond))
	}
	if len(r.Timeline) > 0 {
		fmt.Fprintf(w, "\n%s\n", st.paint("1", "timeline"))
		for _, e := range r.Timeline {
			fmt.Fprintf(w, "  %+8s  %s\n", e.At.Round(time.Millisecond), e.What)
		}
	}
	fmt.Fprintf(w, "\n%s\n", st.paint("1", "assertions"))
	for _, res := range r.Results {
		fmt.Fprintf(w, "  %s %-8s %s", st.mark(res.Status), res.Kind, res.Name)
		if res.Measured != "" {
			fmt.Fprintf(w, "  — measured %s", res.Measured)
		}
		if res.Status != verdict.Pass && res.Status != verdict.Fail {
			fmt.Fprintf(w, " [%s]", res.Status)
		}
		fmt.Fprintln(w)
		if !res.Passed() && res.Detail != "" {
			for line := range strings.SplitSeq(strings.TrimRight(res.Detail, "\n"), "\n") {
				fmt.Fprintf(w, "        %s\n", line)
			}
		}
	}
	if r.SampleTrace != "" {
		fmt.Fprintf(w, "\n%s\n%s\n", st.paint("1", "sample trace"), strings.TrimRight(r.SampleTrace, "\n"))
	}
	passed, failed := r.Counts()
	verdictText := st.paint("32;1", "PASS")
	if failed > 0 {
		verdictText = st.paint("31;1", "FAIL")
	}
	fmt.Fprintf(w, "\n%s  %d passed, %d failed  in %s  → %s\n", verdictText, passed, failed, r.Duration.Round(time.Millisecond), r.Dir)
}

func runs(s Service) string {
	if s.Version != "" {
		return s.Runs + " (" + s.Version + ")"
	}
	return s.Runs
}

func latencyOrder(m map[string]float64) []string {
	order := []string{"min", "p50", "p90", "p95", "p99", "p99.9", "max", "avg"}
	var out []string
	for _, k := range order {
		if _, ok := m[k]; ok {
			out = append(out, k)
		}
	}
	return out
}

func countsLine(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] || m[keys[i]] == m[keys[j]] && keys[i] < keys[j] })
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s×%d", k, m[k]))
	}
	return strings.Join(parts, "  ")
}

func bytesHuman(b uint64) string {
	if b == 0 {
		return "-"
	}
	const mib = 1 << 20
	return fmt.Sprintf("%.1fMiB", float64(b)/mib)
}

// AppendStepSummary appends a markdown table to $GITHUB_STEP_SUMMARY when the
// variable is set, so a pull request shows the verdict without opening logs.
func (r *Report) AppendStepSummary() error {
	path := os.Getenv("GITHUB_STEP_SUMMARY")
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("open step summary: %w", err)
	}
	defer f.Close()
	r.WriteMarkdown(f)
	return f.Close()
}

// WriteMarkdown writes the assertion table as GitHub-flavoured markdown.
func (r *Report) WriteMarkdown(w io.Writer) {
	passed, failed := r.Counts()
	fmt.Fprintf(w, "### meshproof: %s (%s) — %d passed, %d failed\n\n", r.Scenario, r.Backend, passed, failed)
	fmt.Fprintln(w, "| | kind | assertion | expected | measured |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, res := range r.Results {
		mark := "✅"
		if !res.Passed() {
			mark = "❌"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", mark, res.Kind, mdEscape(res.Name), mdEscape(res.Expected), mdEscape(res.Measured))
	}
	fmt.Fprintln(w)
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", "\\|", "\n", " ").Replace(s)
}
