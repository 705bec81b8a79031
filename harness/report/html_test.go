package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/assert/traces"
	"github.com/meshproof/meshproof/harness/assert/verdict"
	"github.com/meshproof/meshproof/harness/load"
)

const testScenario = `name: html
environment:
  compose: docker-compose.yml
assert:
  traces:
    - name: crosses the mesh
      shape: |
        gateway
          service-a
            service-b
              service-d
                ~> service-f
              service-e
                service-g
                service-h
            service-c
`

// runDir writes the evidence files a run leaves: a load with a per-second
// series and a histogram, one matching and one mismatching trace (the
// traces package's own fixtures), and the scenario.
func runDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	h := load.NewHistogram()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var series []load.Point
	for s := 1; s <= 5; s++ {
		for i := range 50 {
			h.Record(time.Duration(10+i) * time.Millisecond)
		}
		series = append(series, load.Point{T: float64(s), Requests: 50, Errors: int64(s % 2), RPS: 50, P50Ms: 30, P99Ms: 58})
	}
	res := load.Result{Start: start, MeasuredStart: start, MeasuredEnd: start.Add(5 * time.Second), Requests: 250, OK: 248, Errors: 2, Histogram: h, Series: series,
		Status: map[string]int64{"200": 248, "503": 2},
		Bodies: map[string][]string{"200": {"{}"}, "503": {`{"error":"gone","service":"service-e"}`}}}
	writeJSON(t, dir, "load.json", &res)
	var recs []traces.Record
	for _, f := range []string{"greeting-trace.json", "greeting-c-under-b.json"} {
		raw, err := os.ReadFile(filepath.Join("..", "assert", "traces", "testdata", f))
		require.NoError(t, err)
		recs = append(recs, traces.Record{ID: strings.TrimSuffix(f, ".json"), State: "quiet", Raw: raw})
	}
	writeJSON(t, dir, "traces.json", []traces.Fetched{{Source: "load", Evidence: traces.Evidence{Traces: recs}}})
	require.NoError(t, os.WriteFile(filepath.Join(dir, "scenario.yaml"), []byte(testScenario), 0o644))
	return dir
}

func writeJSON(t *testing.T, dir, name string, v any) {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
}

func TestWriteHTML(t *testing.T) {
	dir := runDir(t)
	r := &Report{Scenario: "html", RunID: "html-1", Dir: dir, Results: []verdict.Result{
		{Kind: "load", Name: "p(99) < 1s", Status: verdict.Pass, Expected: "< 1s", Measured: "58ms"},
		{Kind: "traces", Name: "crosses the mesh", Status: verdict.Fail, Expected: ">= 100%", Measured: "1/2", Detail: "expected | actual"},
	}}
	require.NoError(t, r.WriteFiles())
	b, err := os.ReadFile(filepath.Join(dir, "report.html"))
	require.NoError(t, err)
	page := string(b)

	// Well-formed: every element closes (the SVG must be XML anyway).
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict, d.AutoClose, d.Entity = false, xml.HTMLAutoClose, xml.HTMLEntity
	for {
		_, err := d.Token()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
	}
	for _, want := range []string{`id="verdict"`, `id="assertions"`, `id="latency-chart"`, `id="throughput-chart"`,
		`id="histogram-chart"`, `id="sample-trace"`, `id="failing-trace-1"`, "<polyline", `class="errors"`, `href="load.json"`, "✗", "✓",
		`id="statuses"`, `<td>503</td><td class="num">2</td><td><pre>{&#34;error&#34;:&#34;gone&#34;,&#34;service&#34;:&#34;service-e&#34;}</pre>`} {
		assert.Contains(t, page, want)
	}
	assert.NotContains(t, page, "<script", "the report runs no code")
	assert.NotContains(t, page, "http://cdn", "the report fetches nothing")
	assert.Regexp(t, `class="[^"]*differs|missing`, page, "the failing trace marks where it departs from the shape")
}

// A run that never got to load (a failed bring-up) still gets a page.
func TestWriteHTMLWithoutEvidence(t *testing.T) {
	r := &Report{Scenario: "x", Dir: t.TempDir(), Results: []verdict.Result{{Kind: "environment", Name: "up", Status: verdict.Error}}}
	require.NoError(t, r.WriteFiles())
	b, err := os.ReadFile(filepath.Join(r.Dir, "report.html"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "FAIL")
	assert.NotContains(t, string(b), "latency-chart")
}
