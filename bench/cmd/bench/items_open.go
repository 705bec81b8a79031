package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/meshproof/meshproof/bench"
)

// openRates are the fixed arrival rates at which ours and vegeta are
// compared: achieved rate and latency percentiles.
var openRates = []float64{1_000, 5_000, 20_000}

// openRun is one open-model run of one tool at one rate.
type openRun struct {
	Tool string  `json:"tool"`
	Rate float64 `json:"rate"`
	// Achieved is successful answers per second, first send to last answer.
	Achieved float64 `json:"achieved"`
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	// Dropped counts sends ours never made (every worker busy); vegeta has
	// no such count, it spawns workers without bound.
	Dropped    int64   `json:"dropped"`
	Late       int64   `json:"late,omitempty"`
	P50Ms      float64 `json:"p50_ms"`
	P99Ms      float64 `json:"p99_ms"`
	MaxMs      float64 `json:"max_ms"`
	CPUSeconds float64 `json:"cpu_seconds"`
	Err        string  `json:"error,omitempty"`
}

// sustained: the tool kept the rate (achieved within 1% below the target),
// with no error and no dropped send.
func (o openRun) sustained() bool {
	return o.Err == "" && o.Errors == 0 && o.Dropped == 0 && o.Achieved >= 0.99*o.Rate
}

func (o openRun) String() string {
	if o.Err != "" {
		return o.Err
	}
	return fmt.Sprintf("achieved %s of %s, p50 %.2f ms, p99 %.2f ms, %d errors, %d dropped, %.1f µs CPU/request",
		kRPS(o.Achieved), kRPS(o.Rate), o.P50Ms, o.P99Ms, o.Errors, o.Dropped, cpuPerReq(o.CPUSeconds, o.Requests))
}

// openTool runs one tool in the open model at rate for d.
type openTool func(ctx context.Context, rate float64, d time.Duration) openRun

// openOurs runs our engine's open model in a child process, like every
// other tool, so both compete with the server for the CPU alike.
func (r *runner) openOurs(ctx context.Context, rate float64, d time.Duration) openRun {
	o := openRun{Tool: "ours", Rate: rate}
	s, u, err := r.engine(ctx, d+30*time.Second, "-target", "http://"+r.srv.http+"/", "-model", "open",
		"-rate", strconv.FormatFloat(rate, 'f', -1, 64), "-duration", secs(d))
	if err != nil {
		o.Err = err.Error()
		return o
	}
	o.Achieved, o.Requests, o.Errors, o.Dropped, o.Late = s.OKRPS, s.Requests, s.Errors, s.Dropped, s.Late
	o.P50Ms, o.P99Ms, o.MaxMs, o.CPUSeconds = s.P50Ms, s.P99Ms, s.MaxMs, u.CPUSeconds
	return o
}

// openVegeta runs `vegeta attack` into a results file, then `vegeta
// report -type=json` on it: the attack's own process is the one whose CPU
// is counted, and no pipe couples the two.
func (r *runner) openVegeta(ctx context.Context, rate float64, d time.Duration) openRun {
	o := openRun{Tool: "vegeta", Rate: rate}
	rep, u, err := r.runVegeta(ctx, rate, d)
	if err != nil {
		o.Err = err.Error()
		return o
	}
	o.Achieved, o.Requests, o.Errors = rep.RPS, rep.Requests, rep.Errors
	o.P50Ms, o.P99Ms, o.MaxMs, o.CPUSeconds = rep.PercentilesMs["50"], rep.PercentilesMs["99"], rep.PercentilesMs["max"], u.CPUSeconds
	return o
}

// runVegeta attacks the trivial target at rate for d.
func (r *runner) runVegeta(ctx context.Context, rate float64, d time.Duration) (bench.VegetaReport, usage, error) {
	if r.vegeta == "" {
		return bench.VegetaReport{}, usage{}, errors.New("vegeta is not installed")
	}
	dir := filepath.Join(r.outDir, "out")
	targets, results := filepath.Join(dir, "vegeta-targets.txt"), filepath.Join(dir, "vegeta-results.bin")
	defer os.Remove(results) // up to tens of MB at the highest rates
	if err := os.WriteFile(targets, []byte("GET http://"+r.srv.http+"/\n"), 0o644); err != nil {
		return bench.VegetaReport{}, usage{}, fmt.Errorf("vegeta targets: %w", err)
	}
	_, u, err := runChild(ctx, d+30*time.Second, r.vegeta, "attack", "-rate="+strconv.FormatFloat(rate, 'f', -1, 64)+"/s",
		"-duration="+secs(d), "-timeout=10s", "-targets="+targets, "-output="+results)
	if err != nil {
		return bench.VegetaReport{}, u, err
	}
	out, _, err := runChild(ctx, time.Minute, r.vegeta, "report", "-type=json", results)
	if err != nil {
		return bench.VegetaReport{}, u, err
	}
	rep, err := bench.ParseVegeta(out)
	return rep, u, err
}

// itemOpenModel is the open-model item: ours vs vegeta at fixed rates on
// the trivial target, then the highest rate each sustains.
func (r *runner) itemOpenModel(ctx context.Context) error {
	tools := map[string]openTool{"ours": r.openOurs, "vegeta": r.openVegeta}
	rounds := min(2, r.rounds)
	r.logf("item %s: fixed rates %v/s, %d rounds × %s per tool, then the max sustainable rate of each", itemOpenModel, openRates, rounds, r.round)
	var runs []openRun
	for _, rate := range openRates {
		best := map[string]openRun{}
		for i := range rounds {
			for _, t := range rotate([]string{"ours", "vegeta"}, i) {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				o := tools[t](ctx, rate, r.round)
				r.logf("  %s/s round %d %-6s %s", humanCount(int(rate)), i+1, t, o)
				runs = append(runs, o)
				// Best of the rounds by p99, for both tools alike: a
				// neighbour's burst spoils a round, not the tool.
				if b, ok := best[t]; !ok || b.Err != "" || (o.Err == "" && o.P99Ms < b.P99Ms) {
					best[t] = o
				}
			}
		}
		r.fixedRateFigures(rate, best["ours"], best["vegeta"])
	}
	search := r.maxSustainable(ctx, tools)
	r.details[itemOpenModel] = map[string]any{"round_seconds": r.round.Seconds(), "fixed_rate_runs": runs, "search": search}
	return nil
}

// fixedRateFigures adds, for one rate, each tool's achieved rate against
// the target and our p99 against vegeta's.
func (r *runner) fixedRateFigures(rate float64, ours, veg openRun) {
	label := fmt.Sprintf("open model %s/s", humanCount(int(rate)))
	for _, o := range []openRun{ours, veg} {
		name := fmt.Sprintf("%s: achieved rate, %s (off target %%)", label, o.Tool)
		if o.Err != "" {
			r.add(bench.Unmeasured(itemOpenModel, name, bench.AtMost(1), o.Err))
			continue
		}
		r.add(bench.NewFigure(itemOpenModel, name, 100*bench.RelErr(o.Achieved, rate), "%", bench.AtMost(1),
			fmt.Sprintf("%s successful answers/s of %s/s scheduled; %d errors, %d dropped", kRPS(o.Achieved), humanCount(int(rate)), o.Errors, o.Dropped)))
	}
	name := label + ": p99 ours vs vegeta (difference %)"
	if ours.Err != "" || veg.Err != "" {
		r.add(bench.Unmeasured(itemOpenModel, name, bench.AtMost(10), "a tool failed; see the log"))
		return
	}
	r.add(bench.NewFigure(itemOpenModel, name, 100*bench.RelErr(ours.P99Ms, veg.P99Ms), "%", bench.AtMost(10),
		fmt.Sprintf("ours p50 %.2f ms p99 %.2f ms (from the scheduled send), vegeta p50 %.2f ms p99 %.2f ms (from its actual send); CPU/request ours %.1f µs, vegeta %.1f µs",
			ours.P50Ms, ours.P99Ms, veg.P50Ms, veg.P99Ms, cpuPerReq(ours.CPUSeconds, ours.Requests), cpuPerReq(veg.CPUSeconds, veg.Requests))))
}

// Bounds of the max-sustainable-rate search.
const (
	searchFirstRate  = 5_000.0
	searchCeiling    = 640_000.0
	searchBisections = 3
	searchProbe      = 3 * time.Second
)

// rateSearch finds the highest rate one tool sustains: it doubles the rate
// until a probe fails, then bisects between the last rate kept and the
// first one lost.
type rateSearch struct {
	Tool   string    `json:"tool"`
	Lo     float64   `json:"max_sustained"` // highest rate sustained
	Hi     float64   `json:"lowest_failed"` // lowest rate lost, 0 if none
	Probes []openRun `json:"probes"`
	bisect int
}

// next is the rate to probe, false when the search is over.
func (s *rateSearch) next() (float64, bool) {
	switch {
	case s.Hi == 0:
		rate := max(searchFirstRate, 2*s.Lo)
		return rate, rate <= searchCeiling
	case s.bisect < searchBisections && s.Hi-s.Lo > 200:
		return float64(int((s.Lo+s.Hi)/2/100) * 100), true
	}
	return 0, false
}

func (s *rateSearch) record(o openRun) {
	s.Probes = append(s.Probes, o)
	if s.Hi > 0 {
		s.bisect++
	}
	if o.sustained() {
		s.Lo = max(s.Lo, o.Rate)
	} else if s.Hi == 0 || o.Rate < s.Hi {
		s.Hi = o.Rate
	}
}

// maxSustainable searches both tools in lock-step, one probe each in turn,
// so that a neighbour's load falls on both alike; the whole search is
// bounded by -search-bound.
func (r *runner) maxSustainable(ctx context.Context, tools map[string]openTool) []*rateSearch {
	searchBound := r.searchBound
	ctx, cancel := context.WithTimeout(ctx, searchBound)
	defer cancel()
	probe := min(r.round, searchProbe)
	searches := []*rateSearch{{Tool: "ours"}, {Tool: "vegeta"}}
	r.logf("  max sustainable rate: probes of %s, doubling from %s/s then %d bisections, bounded by %s", probe, humanCount(int(searchFirstRate)), searchBisections, searchBound)
	for active := true; active && ctx.Err() == nil; {
		active = false
		for _, s := range searches {
			rate, ok := s.next()
			if !ok || ctx.Err() != nil {
				continue
			}
			active = true
			o := tools[s.Tool](ctx, rate, probe)
			if ctx.Err() != nil {
				break // a probe cut short by the bound says nothing
			}
			s.record(o)
			r.logf("  probe %-6s %s/s: sustained=%v, %s", s.Tool, humanCount(int(rate)), o.sustained(), o)
		}
	}
	name := "max sustainable open-model rate, ours ÷ vegeta"
	ours, veg := searches[0], searches[1]
	if ours.Lo == 0 || veg.Lo == 0 {
		f := bench.Unmeasured(itemOpenModel, name, bench.AtLeast(1.2),
			fmt.Sprintf("a tool sustained no probed rate (ours %.0f/s, vegeta %.0f/s)", ours.Lo, veg.Lo))
		f.Unit = "x"
		r.add(f)
		return searches
	}
	note := ""
	if ctx.Err() != nil {
		note = fmt.Sprintf(" The search hit its %s bound; the figures are lower bounds.", searchBound)
	}
	r.add(bench.NewFigure(itemOpenModel, name, bench.Ratio(ours.Lo, veg.Lo), "x", bench.AtLeast(1.2),
		fmt.Sprintf("ours %s/s (lost at %s), vegeta %s/s (lost at %s): the highest rate probed with ≥ 99%% achieved, no error, no dropped send; %s probes.%s",
			humanCount(int(ours.Lo)), lostAt(ours.Hi), humanCount(int(veg.Lo)), lostAt(veg.Hi), probe, note)))
	return searches
}

func lostAt(hi float64) string {
	if hi == 0 {
		return "no probed rate"
	}
	return humanCount(int(hi)) + "/s"
}
