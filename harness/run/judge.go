package run

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/meshproof/meshproof/harness/assert/verdict"
	"github.com/meshproof/meshproof/harness/load"
	"github.com/meshproof/meshproof/harness/report"
)

// judge evaluates every assertion of p on the evidence saved in rep.Dir. It
// touches no network, so a live run and `meshproof eval` reach the same
// verdict.
func judge(p *Prepared, f *Facts, rep *report.Report) {
	af := f.assertFacts(rep.Dir)
	results := faultResults(f.Faults)
	for _, k := range p.Kinds {
		results = append(results, k.Judge(af)...)
		// Kinds may offer more to the report than verdicts.
		if s, ok := k.(interface{ Sample() string }); ok && rep.SampleTrace == "" {
			rep.SampleTrace = s.Sample()
		}
		if r, ok := k.(interface{ Result() *load.Result }); ok && r.Result() != nil {
			rep.Load = loadSummary(r.Result())
		}
	}
	rep.Results = uniqueNames(results)
	rep.Timeline = f.Timeline
	rep.Drain = f.Collected
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

// writeFailure writes report.json and junit.xml for a run that never
// reached a verdict, with the failure as its one result: a CI gate reading
// them must see red, not nothing.
func writeFailure(rep *report.Report, err error, started time.Time) {
	kind := "environment"
	if _, ok := errors.AsType[*InputError](err); ok {
		kind = "input"
	}
	rep.Results = append(rep.Results, verdict.Result{Kind: kind, Name: "the run reached a verdict", Status: verdict.Error, Detail: err.Error()})
	rep.Duration = time.Since(started)
	_ = rep.WriteFiles()
}

// Eval judges a finished run again from its artifacts directory, with the
// scenario saved there (the effective one, --set included) or another one
// (for tuning expectations). Evidence is matched by what it measured, so a
// variant that reads something the run never read is refused, not judged
// on another reading.
func Eval(ctx context.Context, dir, scenarioFile string, sets []string) (*report.Report, error) {
	started := time.Now()
	f, err := loadFacts(dir)
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
	for _, k := range p.Kinds {
		if err := k.Load(dir); err != nil {
			return nil, &InputError{Err: fmt.Errorf("%s evidence: %w", k.Name(), err)}
		}
	}
	rep := &report.Report{Scenario: sc.Name, File: scenarioFile, RunID: filepath.Base(dir), Backend: "eval", Started: started, Dir: dir}
	if prev, err := report.Read(filepath.Join(dir, "report.json")); err == nil {
		rep.Backend, rep.Services, rep.Ready = prev.Backend+" (eval)", prev.Services, prev.Ready
	}
	judge(p, f, rep)
	rep.Duration = time.Since(started)
	// The page shows the verdict just given; report.json and junit.xml
	// stay the run's own record.
	if err := rep.WriteHTML(); err != nil {
		return rep, envErr("%w", err)
	}
	return rep, nil
}
