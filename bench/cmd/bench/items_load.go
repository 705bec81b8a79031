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

// greetingMethod is the unary call of item 2, as our engine and ghz name it.
const (
	greetingMethod    = "greeting.v3.GreetingService/Greeting"
	greetingMethodGhz = "greeting.v3.GreetingService.Greeting"
)

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
func cpuFigure(item int, name, peer string, rounds []roundResult) bench.Figure {
	var cpu, req = map[string]float64{}, map[string]int64{}
	for _, rr := range rounds {
		if rr.Err == "" {
			cpu[rr.Tool] += rr.CPUSeconds
			req[rr.Tool] += rr.Requests
		}
	}
	o, p := cpuPerReq(cpu["ours"], req["ours"]), cpuPerReq(cpu[peer], req[peer])
	if o == 0 || p == 0 {
		return bench.Unmeasured(item, name, nil, "no successful round")
	}
	return bench.NewFigure(item, name, bench.Ratio(o, p), "x", nil,
		fmt.Sprintf("ours %.1f µs, %s %.1f µs of its own CPU per request (lower is better)", o, peer, p))
}

// ratioFigure is ours ÷ peer over the best round of each.
func ratioFigure(item int, name, peer string, rps map[string][]float64, goal *bench.Goal, n int) bench.Figure {
	ours, theirs := rps["ours"], rps[peer]
	if len(ours) == 0 || len(theirs) == 0 {
		return bench.Unmeasured(item, name, goal, fmt.Sprintf("no successful round (ours %d, %s %d)", len(ours), peer, len(theirs)))
	}
	o, p := bench.Best(ours), bench.Best(theirs)
	return bench.NewFigure(item, name, bench.Ratio(o, p), "x", goal,
		fmt.Sprintf("ours %s, %s %s (best of %d; medians %s / %s)", kRPS(o), peer, kRPS(p), n,
			kRPS(bench.Median(ours)), kRPS(bench.Median(theirs))))
}

// itemThroughputHTTP is item 1: ours vs hey vs wrk on the trivial server.
func (r *runner) itemThroughputHTTP(ctx context.Context) error {
	r.logf("item 1: HTTP throughput, %d connections, %d rounds × %s per tool", conns, r.rounds, r.round)
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
	r.details["1_throughput_http"] = map[string]any{"connections": conns, "round_seconds": r.round.Seconds(), "rounds": rounds}
	r.add(ratioFigure(1, "HTTP throughput ours ÷ hey", "hey", rps, bench.AtLeast(1.2), r.rounds))
	r.add(ratioFigure(1, "HTTP throughput ours ÷ wrk", "wrk", rps, bench.AtLeast(0.6), r.rounds))
	r.add(cpuFigure(1, "CPU per HTTP request ours ÷ hey", "hey", rounds))
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
	r.details["1_profile_groups"] = groups
}

// itemThroughputGRPC is item 2: ours vs ghz, unary calls to a greeting
// service with reflection (the bench's own, in the target server process).
func (r *runner) itemThroughputGRPC(ctx context.Context) error {
	// ghz spreads its workers over --connections; give it as many HTTP/2
	// connections as our engine opens for 50 users, so both multiplex alike.
	nconn := max(1, min(4, conns/16))
	r.logf("item 2: gRPC throughput, %d workers over %d connections, %d rounds × %s", conns, nconn, r.rounds, r.round)
	timeout := r.round + 30*time.Second
	rps, rounds := r.interleave(ctx, []string{"ours", "ghz"}, func(ctx context.Context, tool string) (roundOut, error) {
		if tool == "ours" {
			s, u, err := r.engine(ctx, timeout, "-target", "grpc://"+r.srv.grpc, "-grpc-method", greetingMethod,
				"-users", strconv.Itoa(conns), "-duration", secs(r.round))
			return roundOut{s.RPS, s.Requests, s.Errors, u}, err
		}
		res, u, err := r.runGhz(ctx, timeout, "--insecure", "--call", greetingMethodGhz, "-d", "{}",
			"-c", strconv.Itoa(conns), "--connections", strconv.Itoa(nconn), "-z", secs(r.round), "--format", "json", r.srv.grpc)
		return roundOut{res.RPS, res.Requests, res.Errors, u}, err
	})
	r.details["2_throughput_grpc"] = map[string]any{"workers": conns, "connections": nconn, "round_seconds": r.round.Seconds(), "rounds": rounds}
	f := ratioFigure(2, "gRPC throughput ours ÷ ghz", "ghz", rps, bench.AtLeast(1.5), r.rounds)
	f.Note = "ghz counts the calls it cancels at the end as Unavailable"
	r.add(f)
	r.add(cpuFigure(2, "CPU per gRPC call ours ÷ ghz", "ghz", rounds))
	return nil
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

// itemCoordinatedOmission is item 3: a fixed arrival rate against a target
// that stalls for one second. The true latencies follow from the schedule
// and the stall window alone; our p99 must be within 10% of their p99.
func (r *runner) itemCoordinatedOmission(ctx context.Context) error {
	const (
		rate       = 200.0
		duration   = 10 * time.Second
		stallAt    = 4 * time.Second
		stallFor   = time.Second
		heyWorkers = 10
	)
	r.logf("item 3: coordinated omission, open model %.0f/s for %s, 1s stall at +%s", rate, duration, stallAt)
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
		r.add(bench.Unmeasured(3, name, goal, err.Error()))
		return err
	case st.err != nil:
		r.add(bench.Unmeasured(3, name, goal, st.err.Error()))
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
	r.details["3_coordinated_omission"] = map[string]any{
		"rate": rate, "duration_s": duration.Seconds(), "stall_s": stallFor.Seconds(),
		"requests": res.Requests, "dropped": res.Dropped, "late": res.Late,
		"ours_p50_ms": res.Latency.P50Ms, "ours_p99_ms": ours, "ours_max_ms": res.Latency.MaxMs,
		"true_p50_ms": bench.Percentile(truth, 50), "true_p99_ms": trueP99, "true_max_ms": bench.Percentile(truth, 100),
		"hey": heyRes, "hey_error": errString(herr),
	}
	f := bench.NewFigure(3, name+" (error %)", 100*bench.RelErr(ours, trueP99), "%", goal,
		fmt.Sprintf("ours p99 %.0f ms, true p99 %.0f ms (from the schedule), hey p99 %s at the same rate (%d workers × %.0f/s)",
			ours, trueP99, heyP99, heyWorkers, rate/heyWorkers))
	r.add(f)
	return nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// itemAccuracy is item 4: our p50 and hey's agree on a steady 2ms handler.
func (r *runner) itemAccuracy(ctx context.Context) error {
	const users = 10
	d := 4 * time.Second
	r.logf("item 4: accuracy, %d users on a 2ms handler, 2 interleaved rounds × %s", users, d)
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
	r.details["4_accuracy"] = map[string]any{"users": users, "round_seconds": d.Seconds(), "ours_p50_ms": ours, "hey_p50_ms": hey}
	if len(ours) == 0 || len(hey) == 0 {
		r.add(bench.Unmeasured(4, name, bench.AtMost(10), "a tool failed; see the log"))
		return nil
	}
	o, h := bench.Median(ours), bench.Median(hey)
	r.add(bench.NewFigure(4, name, 100*bench.RelErr(o, h), "%", bench.AtMost(10),
		fmt.Sprintf("ours p50 %.2f ms, hey p50 %.2f ms (median of %d rounds; hey prints 0.1 ms steps)", o, h, len(ours))))
	return nil
}

// itemFootprint is item 5: CPU seconds and peak RSS of the engine's
// process for 100k and 1M requests, each beside hey's for the same count.
func (r *runner) itemFootprint(ctx context.Context) error {
	url := "http://" + r.srv.http + "/"
	r.logf("item 5: footprint, engine and hey in child processes, %d connections", conns)
	det := map[string]any{}
	defer func() { r.details["5_footprint"] = det }()
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
			r.add(bench.Unmeasured(5, rssName, goal, err.Error()))
			continue
		}
		hr, hu, herr := r.runHey(ctx, 4*time.Minute, "-n", strconv.Itoa(n), "-c", strconv.Itoa(conns), url)
		det["hey_"+label] = map[string]any{"result": hr, "usage": hu, "error": errString(herr)}
		heyRef := "hey: " + errString(herr)
		if herr == nil {
			heyRef = fmt.Sprintf("hey (keeps every result) %.1f MB, %.1f µs CPU/request", mb(hu.PeakRSSBytes), cpuPerReq(hu.CPUSeconds, hr.Requests))
		}
		r.add(bench.NewFigure(5, rssName, mb(u.PeakRSSBytes), "MB", goal,
			fmt.Sprintf("%s; ours ran %d requests at %s and kept %d trace ids", heyRef, s.Requests, kRPS(s.RPS), s.Traces)))
		r.add(bench.NewFigure(5, "engine CPU time, "+label+" requests", u.CPUSeconds, "s", nil,
			fmt.Sprintf("%.1f µs CPU per request, %.1f s wall", cpuPerReq(u.CPUSeconds, s.Requests), u.Wall)))
		if herr == nil {
			r.add(bench.NewFigure(5, "peak RSS ours ÷ hey, "+label+" requests", bench.Ratio(mb(u.PeakRSSBytes), mb(hu.PeakRSSBytes)), "x", nil,
				fmt.Sprintf("ours %.1f MB, hey %.1f MB", mb(u.PeakRSSBytes), mb(hu.PeakRSSBytes))))
		}
	}
	return nil
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }
