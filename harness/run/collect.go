package run

import (
	"context"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"sync"
	"time"

	"github.com/meshproof/meshproof/harness/data"
	"github.com/meshproof/meshproof/harness/environment"
	"github.com/meshproof/meshproof/harness/load"
	"github.com/meshproof/meshproof/harness/logs"
	"github.com/meshproof/meshproof/harness/metrics"
	"github.com/meshproof/meshproof/harness/scenario"
	"github.com/meshproof/meshproof/harness/topology"
	"github.com/meshproof/meshproof/harness/traces"
)

// recorder gathers a run's evidence in the order DESIGN.md fixes: load, then
// the drain (data assertions poll until their within), then metrics (after
// one more scrape), then traces. Log offsets bracket the whole window.
type recorder struct {
	p      *Prepared
	env    environment.Environment
	dir    string
	out    io.Writer
	live   bool
	faults *faultRunner
}

func (r *recorder) collect(ctx context.Context) (*Evidence, error) {
	sc := r.p.Scenario
	ev := &Evidence{UnderTest: underTest(r.p)}
	var cfg load.Config
	if sc.Load != nil {
		cfg = loadConfig(sc.Load, r.env, filepath.Dir(sc.File))
		if err := load.Preflight(ctx, cfg); err != nil {
			return nil, envErr("load target %s (%s) does not answer: %w", sc.Load.Target, cfg.Target, err)
		}
	}

	var prom *metrics.Client
	var baseline metrics.Baseline
	if len(sc.Assert.Metrics) > 0 {
		addr, err := r.kindAddress(topology.KindPrometheus, 9090)
		if err != nil {
			return nil, err
		}
		prom = metrics.NewClient("http://"+addr, nil)
		// The baseline must include everything before the load: wait for a
		// scrape that started after now.
		if err := metrics.WaitScrape(ctx, prom, time.Now()); err != nil {
			return nil, envErr("prometheus: %w", err)
		}
		baseline, err = metrics.Begin(ctx, prom, sc.Assert.Metrics, time.Now())
		if err != nil {
			return nil, envErr("metrics baseline: %w", err)
		}
	}

	abs, rel := logFiles(r.env.Services(), r.dir)
	logStart, err := logs.Sizes(abs)
	if err != nil {
		return nil, envErr("%w", err)
	}
	loadStart := time.Now()
	if sc.Load != nil {
		fmt.Fprintf(r.out, "▶ load: %s %s\n", cfg.Model, sc.Load.Target)
		opts := r.faults.loadOptions()
		if r.live {
			opts = append(opts, load.WithProgress(func(s load.Snapshot) { fmt.Fprintf(r.out, "\r\033[K  %s", s) }))
		}
		r.faults.start(ctx)
		res, err := load.Run(ctx, cfg, opts...)
		ev.Timeline = r.faults.finish(ctx)
		ev.Faults = r.faults.record()
		if r.live {
			fmt.Fprintln(r.out)
		}
		if err != nil {
			return nil, envErr("load: %w", err)
		}
		ev.Load = res
		loadStart = res.Start
	}
	if ctx.Err() != nil {
		return nil, envErr("interrupted: %w", ctx.Err())
	}
	vars := ev.Vars()

	// Drain: data assertions poll concurrently until each holds or its
	// within passes; the slowest one ends the drain.
	drainStart := time.Now()
	if n := len(sc.Assert.Data); n > 0 {
		fmt.Fprintf(r.out, "▶ drain: %d data assertions\n", n)
		eps := make([]data.Endpoints, n)
		for i, spec := range sc.Assert.Data {
			ep, err := r.endpoints(spec)
			if err != nil {
				return nil, err
			}
			eps[i] = ep
		}
		ev.Data = make([]data.Reading, n)
		var wg sync.WaitGroup
		for i, spec := range sc.Assert.Data {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ev.Data[i] = data.Collect(ctx, eps[i], spec, vars)
			}()
		}
		wg.Wait()
	}
	ev.Drain = time.Since(drainStart)
	drainEnd := time.Now()

	if prom != nil {
		if err := metrics.WaitScrape(ctx, prom, drainEnd); err != nil {
			return nil, envErr("prometheus: %w", err)
		}
		m, err := metrics.Collect(ctx, prom, sc.Assert.Metrics, baseline, metrics.Window{Start: loadStart, End: drainEnd})
		if err != nil {
			return nil, envErr("metrics: %w", err)
		}
		ev.Metrics = &m
	}

	if len(sc.Assert.Traces) > 0 {
		addr, err := r.kindAddress(topology.KindJaeger, 16686)
		if err != nil {
			return nil, err
		}
		client := traces.NewJaegerClient("http://"+addr, nil)
		for i, ta := range sc.Assert.Traces {
			fmt.Fprintf(r.out, "▶ traces: fetching for %q\n", traces.Name(ta))
			ids := traceIDs(ev.Load, ta.Sample)
			var want []*traces.Shape
			if s := r.p.Shapes[i]; s != nil {
				want = append(want, s)
			}
			te, err := traces.Fetch(ctx, client, ids, want, traces.FetchOptions{Deadline: ta.Within.D()})
			if err != nil {
				return nil, envErr("traces: %w", err)
			}
			ev.Traces = append(ev.Traces, te)
		}
	}
	logEnd, err := settledSizes(ctx, abs)
	if err != nil {
		return nil, envErr("%w", err)
	}
	ev.Logs = logs.NewEvidence(rel, logStart, logEnd)
	return ev, nil
}

// traceIDs spreads up to sample trace ids of successful requests evenly over
// the run (failed requests have no full trace to judge).
func traceIDs(res *load.Result, sample int) []string {
	if res == nil {
		return nil
	}
	if sample <= 0 {
		sample = traces.DefaultSample
	}
	var ids []string
	for _, t := range res.Traces {
		if t.OK {
			ids = append(ids, t.TraceID)
		}
	}
	return traces.SampleIDs(ids, sample)
}

func underTest(p *Prepared) []string {
	var out []string
	for _, s := range p.Services {
		if p.Topology.Services[s].Meshproof.UnderTest {
			out = append(out, s)
		}
	}
	return out
}

// kindAddress finds the one started service of a kind and its address.
func (r *recorder) kindAddress(k topology.Kind, port int) (string, error) {
	for _, s := range r.p.Services {
		if r.p.Topology.Services[s].Meshproof.Kind == k {
			addr, err := r.env.Address(s, port)
			if err != nil {
				return "", envErr("%s: %w", s, err)
			}
			return addr, nil
		}
	}
	return "", inputErr("%s: the scenario needs a %s service but environment.services starts none", r.p.Scenario.File, k)
}

// endpoints resolves the store one data assertion reads: the service it
// names, or the one started service of the store's kind.
func (r *recorder) endpoints(spec scenario.DataAssertion) (data.Endpoints, error) {
	kind := map[string]topology.Kind{"mongo": topology.KindMongoDB, "rabbitmq": topology.KindRabbitMQ,
		"postgres": topology.KindPostgres, "s3": topology.KindLocalStack}[data.Kind(spec)]
	name := spec.Service
	if name == "" {
		for _, s := range r.p.Services {
			if r.p.Topology.Services[s].Meshproof.Kind == kind {
				name = s
				break
			}
		}
	}
	svc, ok := r.p.Topology.Services[name]
	if !ok {
		return data.Endpoints{}, inputErr("%s: %s needs a started service of kind %s", r.p.Scenario.File, data.Name(spec), kind)
	}
	probe := svc.Meshproof.Probe
	addr, err := r.env.Address(name, probe.Port)
	if err != nil {
		return data.Endpoints{}, envErr("%s: %w", name, err)
	}
	var ep data.Endpoints
	switch kind {
	case topology.KindMongoDB:
		ep.MongoURI = "mongodb://" + addr
	case topology.KindRabbitMQ:
		ep.AMQPURL = "amqp://guest:guest@" + addr + "/"
		if probe.DSN != "" {
			ep.AMQPURL = r.env.Resolve(probe.DSN)
		}
	case topology.KindPostgres:
		ep.PostgresDSN = r.env.Resolve(probe.DSN)
	case topology.KindLocalStack:
		ep.S3Endpoint = "http://" + addr
	}
	return ep, nil
}

// logFiles maps each service to its log file, absolute and relative to the
// artifacts dir (evidence stores the relative form so a copied artifacts
// directory can still be judged).
func logFiles(services []environment.ServiceInfo, dir string) (abs, rel map[string]string) {
	abs, rel = map[string]string{}, map[string]string{}
	for _, s := range services {
		if s.LogFile == "" {
			continue
		}
		abs[s.Name] = s.LogFile
		r, err := filepath.Rel(dir, s.LogFile)
		if err != nil {
			r = s.LogFile
		}
		rel[s.Name] = r
	}
	return abs, rel
}

// settledSizes reads the log sizes once they stop growing (two reads 200 ms
// apart agree, at most 2 s): container logs reach their files through a
// follower, so lines written before the drain ended may land a moment later
// and must still fall inside the window.
func settledSizes(ctx context.Context, files map[string]string) (map[string]int64, error) {
	prev, err := logs.Sizes(files)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return prev, nil
		case <-time.After(200 * time.Millisecond):
		}
		cur, err := logs.Sizes(files)
		if err != nil {
			return nil, err
		}
		if maps.Equal(prev, cur) {
			return cur, nil
		}
		prev = cur
	}
	return prev, nil
}
