package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/meshproof/meshproof/bench"
	"github.com/meshproof/meshproof/harness/load"
)

// conns is the concurrency of the throughput items: the 50
// connections, for every tool.
const conns = 50

// roundResult is one tool's run in one round.
type roundResult struct {
	Round    int     `json:"round"`
	Tool     string  `json:"tool"`
	RPS      float64 `json:"rps"`
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	// CPUSeconds is the tool's own process (rusage), not the server's.
	CPUSeconds float64 `json:"cpu_seconds"`
	Err        string  `json:"error,omitempty"`
}

// roundOut is what one tool reports for one round.
type roundOut struct {
	rps      float64
	requests int64
	errors   int64
	u        usage
}

// rotate starts round i at a different tool, so no tool always runs right
// after another's connections were torn down.
func rotate(tools []string, i int) []string {
	out := make([]string, len(tools))
	for j := range tools {
		out[j] = tools[(i+j)%len(tools)]
	}
	return out
}

// interleave runs every tool once per round and collects requests/s.
func (r *runner) interleave(ctx context.Context, tools []string, one func(ctx context.Context, tool string) (roundOut, error)) (map[string][]float64, []roundResult) {
	rps := map[string][]float64{}
	var rounds []roundResult
	for i := range r.rounds {
		for _, t := range rotate(tools, i) {
			if ctx.Err() != nil {
				return rps, rounds
			}
			o, err := one(ctx, t)
			rr := roundResult{Round: i + 1, Tool: t, RPS: o.rps, Requests: o.requests, Errors: o.errors, CPUSeconds: o.u.CPUSeconds}
			if err == nil && o.errors > 0 {
				// A round with errors measured something else than the
				// ratio's subject: it is reported, never counted.
				err = fmt.Errorf("%d of %d requests failed; round excluded from the ratio", o.errors, o.requests)
			}
			if err != nil {
				rr.Err = err.Error()
				r.logf("  round %d %s: %v", i+1, t, err)
			} else {
				rps[t] = append(rps[t], o.rps)
				r.logf("  round %d %-4s %s (%d errors, %.1f µs CPU/request)", i+1, t, kRPS(o.rps), o.errors, cpuPerReq(o.u.CPUSeconds, o.requests))
			}
			rounds = append(rounds, rr)
		}
	}
	return rps, rounds
}

// cpuPerReq is microseconds of the tool's CPU per request.
func cpuPerReq(cpuSeconds float64, requests int64) float64 {
	if requests <= 0 {
		return 0
	}
	return 1e6 * cpuSeconds / float64(requests)
}

// cpuFigure compares the CPU each tool's process spends per request, summed
// over all successful rounds: on a shared host this is steadier than
// requests/s, since a neighbour's load slows both sides of a round.
func cpuFigure(item, name, tool, peer string, rounds []roundResult) bench.Figure {
	var cpu, req = map[string]float64{}, map[string]int64{}
	for _, rr := range rounds {
		if rr.Err == "" {
			cpu[rr.Tool] += rr.CPUSeconds
			req[rr.Tool] += rr.Requests
		}
	}
	o, p := cpuPerReq(cpu[tool], req[tool]), cpuPerReq(cpu[peer], req[peer])
	if o == 0 || p == 0 {
		return bench.Unmeasured(item, name, nil, "no clean round")
	}
	return bench.NewFigure(item, name, bench.Ratio(o, p), "x", nil,
		fmt.Sprintf("%s %.1f µs, %s %.1f µs of its own CPU per request (lower is better)", tool, o, peer, p))
}

// ratioFigure is tool ÷ peer over the best clean round of each; rounds
// with errors were left out of rps by interleave and are counted here.
func ratioFigure(item, name, tool, peer string, rps map[string][]float64, goal *bench.Goal, rounds []roundResult) bench.Figure {
	ours, theirs := rps[tool], rps[peer]
	excluded := map[string]int{}
	for _, rr := range rounds {
		if rr.Err != "" {
			excluded[rr.Tool]++
		}
	}
	left := ""
	if excluded[tool]+excluded[peer] > 0 {
		left = fmt.Sprintf("; rounds failed or with errors, excluded: %s %d, %s %d", tool, excluded[tool], peer, excluded[peer])
	}
	if len(ours) == 0 || len(theirs) == 0 {
		f := bench.Unmeasured(item, name, goal, fmt.Sprintf("no clean round (%s %d, %s %d)%s", tool, len(ours), peer, len(theirs), left))
		f.Unit = "x"
		return f
	}
	o, p := bench.Best(ours), bench.Best(theirs)
	return bench.NewFigure(item, name, bench.Ratio(o, p), "x", goal,
		fmt.Sprintf("%s %s, %s %s (best of %d / %d clean rounds; medians %s / %s)%s", tool, kRPS(o), peer, kRPS(p), len(ours), len(theirs),
			kRPS(bench.Median(ours)), kRPS(bench.Median(theirs)), left))
}

// itemThroughputHTTP is the http item: ours vs hey vs wrk on the trivial server.
func (r *runner) itemThroughputHTTP(ctx context.Context) error {
	r.logf("item %s: HTTP throughput, %d connections, %d rounds × %s per tool", itemHTTP, conns, r.rounds, r.round)
	url := "http://" + r.srv.http + "/"
	timeout := r.round + 30*time.Second
	rps, rounds := r.interleave(ctx, []string{"ours", "hey", "wrk"}, func(ctx context.Context, tool string) (roundOut, error) {
		switch tool {
		case "ours":
			s, u, err := r.engine(ctx, timeout, "-target", url, "-users", strconv.Itoa(conns), "-duration", secs(r.round))
			return roundOut{s.RPS, s.Requests, s.Errors, u}, err
		case "hey":
			res, u, err := r.runHey(ctx, timeout, "-z", secs(r.round), "-c", strconv.Itoa(conns), url)
			return roundOut{res.RPS, res.Requests, res.Errors, u}, err
		default:
			res, u, err := r.runWrk(ctx, timeout, "-t", strconv.Itoa(runtime.NumCPU()), "-c", strconv.Itoa(conns), "-d", secs(r.round), url)
			return roundOut{res.RPS, res.Requests, res.Errors, u}, err
		}
	})
	r.details["http"] = map[string]any{"connections": conns, "round_seconds": r.round.Seconds(), "rounds": rounds}
	r.add(ratioFigure(itemHTTP, "HTTP throughput ours ÷ hey", "ours", "hey", rps, bench.AtLeast(1.2), rounds))
	r.add(ratioFigure(itemHTTP, "HTTP throughput ours ÷ wrk", "ours", "wrk", rps, bench.AtLeast(0.6), rounds))
	r.add(cpuFigure(itemHTTP, "CPU per HTTP request ours ÷ hey", "ours", "hey", rounds))
	r.profileEngine(ctx, url)
	return nil
}

// profileCum are the functions whose cumulative share explains an HTTP
// request's cost in the engine's process.
var profileCum = []struct{ what, fn string }{
	{"engine send (all of a request)", "github.com/meshproof/meshproof/harness/load.(*engine).send"},
	{"net/http write loop goroutine", "net/http.(*persistConn).writeLoop"},
	{"net/http read loop goroutine", "net/http.(*persistConn).readLoop"},
	{"write syscalls", "syscall.write"},
	{"read syscalls", "syscall.read"},
	{"scheduler (goroutine hand-offs)", "runtime.schedule"},
	{"select", "runtime.selectgo"},
	{"allocation", "runtime.mallocgc"},
	{"GC workers", "runtime.gcBgMarkWorker"},
	{"per-request context", "context.WithTimeout"},
	{"request copy (WithContext)", "net/http.(*Request).WithContext"},
	{"recording (histograms, samples)", "github.com/meshproof/meshproof/harness/load.(*recorder).record"},
	{"traceparent", "github.com/meshproof/meshproof/harness/load.(*traceparent).next"},
}

// profileEngine runs one more (uncounted) round of our engine with the CPU
// profiler on and summarises where its time goes.
func (r *runner) profileEngine(ctx context.Context, url string) {
	prof := filepath.Join(r.outDir, "out", "engine.pprof")
	r.rep.ProfileFile = prof
	s, u, err := r.engine(ctx, r.round+30*time.Second, "-target", url, "-users", strconv.Itoa(conns), "-duration", secs(r.round), "-cpuprofile", prof)
	if err != nil {
		r.rep.ProfileNote = "profile not taken: " + err.Error()
		return
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := exec.CommandContext(pctx, goBin, "tool", "pprof", "-top", "-nodecount=500", prof).Output()
	if err != nil {
		r.rep.ProfileNote = fmt.Sprintf("profile written to %s; `go tool pprof -top` failed: %v", prof, err)
		return
	}
	entries, err := bench.ParsePprofTop(string(out))
	if err != nil {
		r.rep.ProfileNote = err.Error()
		return
	}
	groups := bench.GroupProfile(entries)
	parts := make([]string, 0, len(groups))
	for _, g := range groups {
		if g.Pct >= 0.5 {
			parts = append(parts, fmt.Sprintf("%s %.0f%%", g.Group, g.Pct))
		}
	}
	var cum []string
	for _, c := range profileCum {
		if v := bench.CumPct(entries, c.fn); v > 0 {
			cum = append(cum, fmt.Sprintf("%s %.0f%%", c.what, v))
		}
	}
	r.rep.Profile = entries[:min(len(entries), 15)]
	r.rep.ProfileNote = fmt.Sprintf("Profiled round (not counted above): %s, %.2f CPU s in %.1f s wall (%.0f µs of CPU per request, the engine's process only). "+
		"Flat CPU by where it is spent: %s. Cumulative shares of the pieces a request goes through: %s.",
		kRPS(s.RPS), u.CPUSeconds, u.Wall, 1e6*u.CPUSeconds/max(1, float64(s.Requests)), strings.Join(parts, ", "), strings.Join(cum, ", "))
	r.details["http_profile_groups"] = groups
}

// stall asks the target server to stall for d and returns the window.
func (r *runner) stall(ctx context.Context, d time.Duration) (stallWindow, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+r.srv.http+"/stall?for="+d.String(), nil)
	if err != nil {
		return stallWindow{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return stallWindow{}, fmt.Errorf("stall: %w", err)
	}
	defer resp.Body.Close()
	var w stallWindow
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return w, fmt.Errorf("stall: HTTP %d: %s", resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&w); err != nil {
		return w, fmt.Errorf("stall: %w", err)
	}
	return w, nil
}

// stallAfter stalls the server once, after delay, in the background.
func (r *runner) stallAfter(ctx context.Context, delay, d time.Duration) <-chan stallResult {
	ch := make(chan stallResult, 1)
	go func() {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-ctx.Done():
			ch <- stallResult{err: ctx.Err()}
			return
		case <-t.C:
		}
		w, err := r.stall(ctx, d)
		ch <- stallResult{w: w, err: err}
	}()
	return ch
}

type stallResult struct {
	w   stallWindow
	err error
}

// itemCoordinatedOmission is the omission item: a fixed arrival rate
// against a target that stalls for one second, for ours, hey and vegeta.
// The true latencies follow from the schedule and the stall window alone;
// our p99 must be within 10% of their p99.
func (r *runner) itemCoordinatedOmission(ctx context.Context) error {
	const (
		rate       = 200.0
		duration   = 10 * time.Second
		stallAt    = 4 * time.Second
		stallFor   = time.Second
		heyWorkers = 10
	)
	r.logf("item %s: coordinated omission, open model %.0f/s for %s, 1s stall at +%s", itemOmission, rate, duration, stallAt)
	url := "http://" + r.srv.http + "/"
	name := "open model p99 under a 1s stall vs true p99"
	goal := bench.AtMost(10)
	rctx, cancel := context.WithCancel(ctx)
	stalled := r.stallAfter(rctx, stallAt, stallFor)
	res, err := load.Run(ctx, load.Config{Target: url, Model: load.Open, Rate: rate, Duration: duration, Timeout: 5 * time.Second})
	cancel()
	st := <-stalled
	switch {
	case err != nil:
		r.add(bench.Unmeasured(itemOmission, name, goal, err.Error()))
		return err
	case st.err != nil:
		r.add(bench.Unmeasured(itemOmission, name, goal, st.err.Error()))
		return st.err
	}
	interval := int64(float64(time.Second) / rate) // the engine's own step
	n := int(res.Requests + res.Dropped)
	truth := bench.StallLatenciesMs(res.Start.UnixNano(), interval, n, st.w.StartNs, st.w.EndNs)
	trueP99 := bench.Percentile(truth, 99)
	ours := res.Latency.P99Ms

	// hey at the same rate: heyWorkers workers, each rate-limited to its
	// share. A closed-model tool waits for the stalled answers before it
	// sends again, so its figure omits what the stall did.
	stalled = r.stallAfter(ctx, stallAt, stallFor)
	heyRes, _, herr := r.runHey(ctx, duration+30*time.Second, "-z", secs(duration), "-c", strconv.Itoa(heyWorkers),
		"-q", strconv.FormatFloat(rate/heyWorkers, 'f', -1, 64), url)
	<-stalled
	heyP99 := "not measured"
	if herr == nil {
		heyP99 = fmt.Sprintf("%.1f ms", heyRes.PercentilesMs["99"])
	} else {
		r.logf("  hey: %v", herr)
	}
	veg := r.vegetaUnderStall(ctx, rate, duration, stallAt, stallFor)
	r.details["omission"] = map[string]any{
		"rate": rate, "duration_s": duration.Seconds(), "stall_s": stallFor.Seconds(),
		"requests": res.Requests, "dropped": res.Dropped, "late": res.Late,
		"ours_p50_ms": res.Latency.P50Ms, "ours_p99_ms": ours, "ours_max_ms": res.Latency.MaxMs,
		"true_p50_ms": bench.Percentile(truth, 50), "true_p99_ms": trueP99, "true_max_ms": bench.Percentile(truth, 100),
		"hey": heyRes, "hey_error": errString(herr), "vegeta": veg,
	}
	f := bench.NewFigure(itemOmission, name+" (error %)", 100*bench.RelErr(ours, trueP99), "%", goal,
		fmt.Sprintf("ours p99 %.0f ms, true p99 %.0f ms (from the schedule), hey p99 %s at the same rate (%d workers × %.0f/s); vegeta: %s",
			ours, trueP99, heyP99, heyWorkers, rate/heyWorkers, veg))
	r.add(f)
	vname := "vegeta p99 under a 1s stall vs true p99 (error %)"
	if veg.Err != "" {
		r.add(bench.Unmeasured(itemOmission, vname, nil, veg.Err))
		return nil
	}
	r.add(bench.NewFigure(itemOmission, vname, 100*bench.RelErr(veg.P99Ms, veg.TrueP99Ms), "%", nil, veg.String()))
	return nil
}

// stalledVegeta is vegeta's run under the stall, against the true
// latencies of its own schedule.
type stalledVegeta struct {
	Report    bench.VegetaReport `json:"report"`
	P99Ms     float64            `json:"p99_ms"`
	TrueP99Ms float64            `json:"true_p99_ms"`
	Err       string             `json:"error,omitempty"`
}

func (v stalledVegeta) String() string {
	if v.Err != "" {
		return "not measured (" + v.Err + ")"
	}
	return fmt.Sprintf("vegeta p99 %.0f ms (from its actual send), true p99 of its schedule %.0f ms, %d requests", v.P99Ms, v.TrueP99Ms, v.Report.Requests)
}

// vegetaUnderStall runs vegeta at the same rate with the same stall. Its
// schedule starts at its first send (the report's earliest) and steps
// 1/rate, so the true latencies follow from it and the stall window as
// they do for ours.
func (r *runner) vegetaUnderStall(ctx context.Context, rate float64, duration, stallAt, stallFor time.Duration) stalledVegeta {
	stalled := r.stallAfter(ctx, stallAt, stallFor)
	rep, _, err := r.runVegeta(ctx, rate, duration)
	st := <-stalled
	switch {
	case err != nil:
		return stalledVegeta{Err: err.Error()}
	case st.err != nil:
		return stalledVegeta{Err: st.err.Error()}
	}
	interval := int64(float64(time.Second) / rate)
	truth := bench.StallLatenciesMs(rep.Earliest.UnixNano(), interval, int(rep.Requests), st.w.StartNs, st.w.EndNs)
	return stalledVegeta{Report: rep, P99Ms: rep.PercentilesMs["99"], TrueP99Ms: bench.Percentile(truth, 99)}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// itemAccuracy is the accuracy item: our p50 and hey's agree on a steady 2ms handler.
func (r *runner) itemAccuracy(ctx context.Context) error {
	const users = 10
	d := 4 * time.Second
	r.logf("item %s: accuracy, %d users on a 2ms handler, 2 interleaved rounds × %s", itemAccuracy, users, d)
	url := "http://" + r.srv.http + "/delay"
	var ours, hey []float64
	for i := range 2 {
		for _, t := range rotate([]string{"ours", "hey"}, i) {
			if t == "ours" {
				res, err := load.Run(ctx, load.Config{Target: url, Users: users, Duration: d, Timeout: 5 * time.Second})
				if err != nil {
					r.logf("  ours: %v", err)
					continue
				}
				ours = append(ours, res.Latency.P50Ms)
				continue
			}
			res, _, err := r.runHey(ctx, d+30*time.Second, "-z", secs(d), "-c", strconv.Itoa(users), url)
			if err != nil {
				r.logf("  hey: %v", err)
				continue
			}
			hey = append(hey, res.PercentilesMs["50"])
		}
	}
	name := "p50 ours vs hey, 2ms handler (difference %)"
	r.details["accuracy"] = map[string]any{"users": users, "round_seconds": d.Seconds(), "ours_p50_ms": ours, "hey_p50_ms": hey}
	if len(ours) == 0 || len(hey) == 0 {
		r.add(bench.Unmeasured(itemAccuracy, name, bench.AtMost(10), "a tool failed; see the log"))
		return nil
	}
	o, h := bench.Median(ours), bench.Median(hey)
	r.add(bench.NewFigure(itemAccuracy, name, 100*bench.RelErr(o, h), "%", bench.AtMost(10),
		fmt.Sprintf("ours p50 %.2f ms, hey p50 %.2f ms (median of %d rounds; hey prints 0.1 ms steps)", o, h, len(ours))))
	return nil
}

// itemFootprint is the footprint item: CPU seconds and peak RSS of the engine's
// process for 100k and 1M requests, each beside hey's for the same count.
func (r *runner) itemFootprint(ctx context.Context) error {
	url := "http://" + r.srv.http + "/"
	r.logf("item %s: footprint, engine and hey in child processes, %d connections", itemFootprint, conns)
	det := map[string]any{}
	defer func() { r.details["footprint"] = det }()
	for _, n := range []int{100_000, 1_000_000} {
		label := humanCount(n)
		var goal *bench.Goal
		if n == 1_000_000 {
			goal = bench.Below(200)
		}
		rssName := "engine peak RSS, " + label + " requests"
		s, u, err := r.engine(ctx, 4*time.Minute, "-target", url, "-users", strconv.Itoa(conns), "-requests", strconv.Itoa(n))
		det["ours_"+label] = map[string]any{"summary": s, "usage": u, "error": errString(err)}
		if err != nil {
			r.add(bench.Unmeasured(itemFootprint, rssName, goal, err.Error()))
			continue
		}
		hr, hu, herr := r.runHey(ctx, 4*time.Minute, "-n", strconv.Itoa(n), "-c", strconv.Itoa(conns), url)
		det["hey_"+label] = map[string]any{"result": hr, "usage": hu, "error": errString(herr)}
		heyRef := "hey: " + errString(herr)
		if herr == nil {
			heyRef = fmt.Sprintf("hey (keeps every result) %.1f MB, %.1f µs CPU/request", mb(hu.PeakRSSBytes), cpuPerReq(hu.CPUSeconds, hr.Requests))
		}
		r.add(bench.NewFigure(itemFootprint, rssName, mb(u.PeakRSSBytes), "MB", goal,
			fmt.Sprintf("%s; ours ran %d requests at %s and kept %d trace ids", heyRef, s.Requests, kRPS(s.RPS), s.Traces)))
		r.add(bench.NewFigure(itemFootprint, "engine CPU time, "+label+" requests", u.CPUSeconds, "s", nil,
			fmt.Sprintf("%.1f µs CPU per request, %.1f s wall", cpuPerReq(u.CPUSeconds, s.Requests), u.Wall)))
		if herr == nil {
			r.add(bench.NewFigure(itemFootprint, "peak RSS ours ÷ hey, "+label+" requests", bench.Ratio(mb(u.PeakRSSBytes), mb(hu.PeakRSSBytes)), "x", nil,
				fmt.Sprintf("ours %.1f MB, hey %.1f MB", mb(u.PeakRSSBytes), mb(hu.PeakRSSBytes))))
		}
	}
	return nil
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }
