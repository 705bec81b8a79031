package run

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/meshproof/meshproof/harness/data"
	"github.com/meshproof/meshproof/harness/load"
	"github.com/meshproof/meshproof/harness/logs"
	"github.com/meshproof/meshproof/harness/metrics"
	"github.com/meshproof/meshproof/harness/report"
	"github.com/meshproof/meshproof/harness/traces"
	"github.com/meshproof/meshproof/harness/verdict"
)

// judge evaluates every assertion of p against ev. It is pure given the files
// under dir, so a live run and `meshproof eval` reach the same verdict.
func judge(p *Prepared, ev *Evidence, dir string, rep *report.Report) {
	sc := p.Scenario
	vars := ev.Vars()
	var results []verdict.Result
	if ev.Load != nil {
		rep.Load = loadSummary(ev.Load)
		for _, th := range p.Thresholds {
			results = append(results, th.JudgeFaults(ev.Load, faultWindows(ev.Faults)))
		}
	}
	results = append(results, faultResults(ev.Faults)...)
	for i, ta := range sc.Assert.Traces {
		if i >= len(ev.Traces) {
			results = append(results, missing("traces", traces.Name(ta)))
			continue
		}
		results = append(results, traces.Judge(ta, ev.Traces[i], vars)...)
		if rep.SampleTrace == "" {
			rep.SampleTrace = sampleTrace(ev.Traces[i])
		}
	}
	for i, ma := range sc.Assert.Metrics {
		if ev.Metrics == nil {
			results = append(results, missing("metrics", fmt.Sprintf("metrics[%d]", i)))
			continue
		}
		results = append(results, metrics.Judge(ma, *ev.Metrics, vars))
	}
	for _, la := range sc.Assert.Logs {
		results = append(results, logs.Judge(la, ev.Logs, ev.UnderTest, dir, vars))
	}
	for i, da := range sc.Assert.Data {
		if i >= len(ev.Data) {
			results = append(results, missing("data", fmt.Sprintf("data[%d]", i)))
			continue
		}
		results = append(results, data.Judge(da, ev.Data[i], vars))
	}
	rep.Results = uniqueNames(results)
	rep.Timeline = ev.Timeline
	rep.Drain = ev.Drain
}

// sampleTrace draws one trace of the evidence as a timed tree, preferring
// one that finished arriving.
func sampleTrace(ev traces.Evidence) string {
	recs := make([]traces.Record, 0, len(ev.Traces))
	for _, rec := range ev.Traces {
		if rec.State == traces.StateCovered {
			recs = append(recs, rec)
		}
	}
	recs = append(recs, ev.Traces...)
	for _, rec := range recs {
		if len(rec.Raw) == 0 {
			continue
		}
		spans, err := traces.DecodeSpans(rec.Raw, false)
		if err != nil || len(spans) == 0 {
			continue
		}
		return "trace " + rec.ID + "\n" + traces.BuildTree(spans).Draw()
	}
	return ""
}

func missing(kind, name string) verdict.Result {
	return verdict.Result{Kind: kind, Name: name, Status: verdict.Error, Detail: "no evidence was collected for this assertion"}
}

// uniqueNames suffixes repeated names so each result is its own subtest.
func uniqueNames(rs []verdict.Result) []verdict.Result {
	seen := map[string]int{}
	for i := range rs {
		n := rs[i].Name
		seen[n]++
		if seen[n] > 1 {
			rs[i].Name = fmt.Sprintf("%s #%d", n, seen[n])
		}
	}
	return rs
}

func loadSummary(r *load.Result) *report.LoadSummary {
	l := r.Latency
	return &report.LoadSummary{
		Target: r.Target, Model: string(r.Model),
		Requests: r.Requests, OK: r.OK, Errors: r.Errors,
		Duration: r.Duration(), RPS: r.Throughput(),
		Latency: map[string]float64{
			"min": l.MinMs / 1e3, "p50": l.P50Ms / 1e3, "p90": l.P90Ms / 1e3, "p95": l.P95Ms / 1e3,
			"p99": l.P99Ms / 1e3, "p99.9": l.P999Ms / 1e3, "max": l.MaxMs / 1e3, "avg": l.AvgMs / 1e3,
		},
		Statuses: r.Status, ErrorKinds: r.ErrorReasons,
	}
}

// Eval judges a finished run again from its artifacts directory, with the
// scenario saved there or another one (for tuning expectations).
func Eval(ctx context.Context, dir, scenarioFile string, sets []string) (*report.Report, error) {
	started := time.Now()
	ev, err := loadEvidence(dir)
	if err != nil {
		return nil, &InputError{Err: err}
	}
	if scenarioFile == "" {
		scenarioFile = filepath.Join(dir, "scenario.yaml")
	}
	sc, err := loadWithSets(scenarioFile, sets)
	if err != nil {
		return nil, err
	}
	p, err := prepareOffline(ctx, sc)
	if err != nil {
		return nil, err
	}
	rep := &report.Report{Scenario: sc.Name, File: scenarioFile, RunID: filepath.Base(dir), Backend: "eval", Started: started, Dir: dir}
	if prev, err := report.Read(filepath.Join(dir, "report.json")); err == nil {
		rep.Backend, rep.Services, rep.Ready = prev.Backend+" (eval)", prev.Services, prev.Ready
	}
	judge(p, ev, dir, rep)
	rep.Duration = time.Since(started)
	return rep, nil
}
