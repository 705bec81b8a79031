package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/meshproof/meshproof/harness/assert/verdict"
	"github.com/meshproof/meshproof/harness/load"
)

// htmlFile is the report a person opens in a browser.
const htmlFile = "report.html"

//go:embed report.html.tmpl
var htmlTemplate string

var pageTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"mark":  htmlMark,
	"ms":    func(d time.Duration) string { return d.Round(time.Millisecond).String() },
	"bytes": bytesHuman,
	"f1":    func(v float64) string { return fmt.Sprintf("%.1f", v) },
	"f2":    func(v float64) string { return fmt.Sprintf("%.2f", v) },
	"sub":   func(a, b float64) float64 { return a - b },
	"add":   func(a, b float64) float64 { return a + b },
}).Parse(htmlTemplate))

// page is everything the template draws.
type page struct {
	*Report
	Passed, Failed int
	Generated      time.Time
	Load           *LoadSummary
	Charts         []*chart
	Sample         *waterfall
	Failing        []waterfall
	MoreFailing    int
	Links          []string
	Problems       []string
	Services       []Service
	// Statuses lists the load's answers by status, with the first bodies
	// the engine kept for each, so a reader sees what a failure said.
	Statuses []statusRow
}

// statusRow is one status of the load's answers.
type statusRow struct {
	Status string
	Count  int64
	Bodies []string
}

// statusRows lists r's statuses, most frequent first, each with its
// sampled bodies.
func statusRows(r *load.Result) []statusRow {
	if r == nil {
		return nil
	}
	rows := make([]statusRow, 0, len(r.Status))
	for st, n := range r.Status {
		rows = append(rows, statusRow{Status: st, Count: n, Bodies: r.Bodies[st]})
	}
	sort.Slice(rows, func(i, j int) bool {
		return rows[i].Count > rows[j].Count || rows[i].Count == rows[j].Count && rows[i].Status < rows[j].Status
	})
	return rows
}

// WriteHTML writes report.html into r.Dir, drawing the charts and trace
// waterfalls from the evidence files already saved there. Unreadable
// evidence is noted on the page rather than failing the run: the report is
// most wanted exactly when a run went wrong.
func (r *Report) WriteHTML() error {
	f, err := os.Create(filepath.Join(r.Dir, htmlFile))
	if err != nil {
		return fmt.Errorf("write %s: %w", htmlFile, err)
	}
	defer f.Close()
	if err := r.RenderHTML(f, r.Dir); err != nil {
		return fmt.Errorf("write %s: %w", htmlFile, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", htmlFile, err)
	}
	return nil
}

// RenderHTML writes the self-contained HTML report of r, with the
// evidence read from dir.
func (r *Report) RenderHTML(w io.Writer, dir string) error {
	p := page{Report: r, Load: r.Load, Generated: time.Now().UTC(), Services: r.Services}
	p.Passed, p.Failed = r.Counts()
	a, err := ReadArtifacts(dir)
	if err != nil {
		p.Problems = append(p.Problems, err.Error())
		a = &Artifacts{Dir: dir}
	}
	p.Problems = append(p.Problems, a.Problems...)
	if a.Load != nil && len(a.Load.Series) > 0 {
		p.Charts = append(p.Charts, latencyChart(a), throughputChart(a))
	}
	if a.Hist != nil && a.Hist.TotalCount() > 0 {
		p.Charts = append(p.Charts, histogramChart(a))
	}
	p.Statuses = statusRows(a.Load)
	p.Sample, p.Failing, p.MoreFailing = waterfalls(a)
	p.Links = artifactLinks(dir)
	sort.SliceStable(p.Services, func(i, j int) bool { return p.Services[i].Name < p.Services[j].Name })
	if err := pageTemplate.Execute(w, p); err != nil {
		return fmt.Errorf("render report: %w", err)
	}
	return nil
}

// artifactLinks lists the run's other files, relative to report.html so
// the links survive the directory being zipped and moved.
func artifactLinks(dir string) []string {
	var out []string
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == htmlFile {
			return nil
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	sort.Strings(out)
	return out
}

// htmlMark is the assertion table's first column.
func htmlMark(st verdict.Status) string {
	switch st {
	case verdict.Pass:
		return "✓"
	case verdict.Incomplete:
		return "…"
	}
	return "✗"
}
