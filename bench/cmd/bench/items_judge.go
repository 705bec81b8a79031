package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/meshproof/meshproof/bench"
	"github.com/meshproof/meshproof/harness/assert/expect"
	"github.com/meshproof/meshproof/harness/assert/traces"
	"github.com/meshproof/meshproof/harness/assert/verdict"
	"github.com/meshproof/meshproof/harness/scenario"
)

// The real-trace fixture and what judging it must find, relative to the
// repository root.
const (
	fixtureFile       = "bench/testdata/fanout-traces.json.gz"
	fixtureExpectFile = "bench/testdata/fanout-traces.expect.json"
	// judgeTargetTraces is about how many traces one timed judging covers:
	// the fixture is replicated up to it, so a run takes long enough to time.
	judgeTargetTraces = 10_000
)

// judgeSpec is the fanout-load scenario's trace assertion, over every trace.
func judgeSpec(n int) scenario.TraceAssertion {
	return scenario.TraceAssertion{Name: "bench", Of: "load", Require: "100%", Shape: bench.GreetingShape, Sample: n}
}

// wantMeasured is the verdict's Measured text when judging finds exactly
// the fixture's tallies, scaled by copies.
func wantMeasured(e bench.FixtureExpect, copies int) string {
	n := e.Traces * copies
	return fmt.Sprintf("%d/%d traces match (%s), %d incomplete, %d mismatch", e.Match*copies, n,
		expect.Format(float64(e.Match)/float64(e.Traces), expect.Fraction), e.Incomplete*copies, e.Mismatch*copies)
}

// itemTraceJudging is the traces item: judging the fanout-load shape over
// traces captured from a real mesh run, mismatched and incomplete ones
// included, on one core (GOMAXPROCS=1), in spans per second.
func (r *runner) itemTraceJudging(context.Context) error {
	name := "judging real fanout-load traces, one core"
	goal := bench.AtLeast(1_000_000)
	fail := func(err error) error {
		f := bench.Unmeasured(itemTraces, name, goal, err.Error())
		f.Unit = "spans/s"
		r.add(f)
		return err
	}
	fs, err := bench.ReadFetched(filepath.Join(r.root, fixtureFile))
	if errors.Is(err, os.ErrNotExist) {
		return fail(bench.ErrNoFixture)
	} else if err != nil {
		return fail(err)
	}
	var want bench.FixtureExpect
	if err := readJSON(filepath.Join(r.root, fixtureExpectFile), &want); err != nil {
		return fail(err)
	}
	base := fs[0].Traces
	copies := max(1, judgeTargetTraces/len(base))
	recs := bench.Replicate(base, copies)
	spans := bench.SpanCount(recs)
	r.logf("item %s: %d real traces (%d mismatched, %d incomplete) × %d copies = %d traces, %d spans, GOMAXPROCS=1",
		itemTraces, len(base), want.Mismatch, want.Incomplete, copies, len(recs), spans)
	took, last := judgeOneCore(judgeSpec(len(recs)), traces.Evidence{Traces: recs})
	med := bench.Median(took)
	r.details[itemTraces] = map[string]any{"fixture": fixtureFile, "traces": len(recs), "copies": copies, "spans": spans, "seconds": took, "verdict": last}
	expected := wantMeasured(want, copies)
	if len(last) == 0 || last[0].Status != verdict.Fail || last[0].Measured != expected {
		f := bench.NewFigure(itemTraces, name, float64(spans)/med, "spans/s", goal, "")
		f.Verdict = bench.Missed
		f.Note = fmt.Sprintf("judging found something else than the fixture holds: want %q, got %+v", expected, last)
		r.add(f)
		return nil
	}
	r.add(bench.NewFigure(itemTraces, name, float64(spans)/med, "spans/s", goal,
		fmt.Sprintf("median of 3 over %d traces (%d spans) in %.3f s; %s, as the fixture holds; 1-min load average %s",
			len(recs), spans, med, last[0].Measured, loadAvg1())))
	return nil
}

// judgeOneCore times traces.Judge three times with GOMAXPROCS=1, the
// goal's terms, and restores GOMAXPROCS after.
func judgeOneCore(spec scenario.TraceAssertion, ev traces.Evidence) ([]float64, []verdict.Result) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var took []float64
	var last []verdict.Result
	for range 3 {
		runtime.GC() // each run starts from the same heap
		began := time.Now()
		last = traces.Judge(spec, ev, nil)
		took = append(took, time.Since(began).Seconds())
	}
	return took, last
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

// cmdFixture turns a fanout-load run's traces.json into the committed
// fixture: it adds the mutated copies, judges the result once and writes
// the tallies found beside it, refusing when the mutations did not come
// out as mismatches and incompletes (or a real trace did not match).
func cmdFixture(args []string) error {
	fs := flag.NewFlagSet("fixture", flag.ContinueOnError)
	in := fs.String("in", "", "traces.json of a fanout-load run")
	out := fs.String("out", fixtureFile, "fixture to write (gzipped when it ends in .gz)")
	expect := fs.String("expect", fixtureExpectFile, "where the tallies judging must find go")
	if err := fs.Parse(args); err != nil {
		return err
	}
	fetched, err := bench.ReadFetched(*in)
	if err != nil {
		return err
	}
	real := len(fetched[0].Traces)
	if err := bench.MutateFixture(fetched); err != nil {
		return err
	}
	want, err := bench.TallyShape(bench.GreetingShape, fetched[0].Traces)
	if err != nil {
		return err
	}
	if want.Match != real || want.Mismatch != bench.MutateEach || want.Incomplete != bench.MutateEach {
		return fmt.Errorf("fixture: %d real traces and %d of each mutation, but judging found %+v", real, bench.MutateEach, want)
	}
	if err := bench.WriteFixture(*out, fetched); err != nil {
		return err
	}
	b, err := json.MarshalIndent(want, "", "  ")
	if err != nil {
		return fmt.Errorf("encode tallies: %w", err)
	}
	if err := os.WriteFile(*expect, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write tallies: %w", err)
	}
	fmt.Printf("wrote %s: %+v\n", *out, want)
	return nil
}
