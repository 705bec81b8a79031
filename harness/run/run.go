package run

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/meshproof/meshproof/harness/environment"
	"github.com/meshproof/meshproof/harness/load"
	"github.com/meshproof/meshproof/harness/report"
	"github.com/meshproof/meshproof/harness/scenario"
)

// Options of one run.
type Options struct {
	// Scenario is the scenario file.
	Scenario string
	// Backend is auto, docker or local.
	Backend string
	// Keep leaves the environment running after the run.
	Keep bool
	// OutDir is the artifacts root (default "artifacts").
	OutDir string
	// Sets are --set path=value overrides.
	Sets []string
	// Out receives progress lines (may be nil).
	Out io.Writer
	// Live redraws a one-line load progress on Out (a terminal).
	Live bool
	// Attach runs against the environment an earlier `up --detach` or
	// `run --keep` left running, by run id, and leaves it running.
	Attach string
	// Endpoints runs against a deployment meshproof did not start, as
	// described by this endpoints file.
	Endpoints string
	// Environment runs against an environment the caller started and
	// owns (package meshtest shares one across tests); it stays running.
	Environment environment.Environment
}

// DownTimeout bounds teardown, which must finish even after Ctrl-C.
const DownTimeout = 90 * time.Second

// Run is one scenario from start to verdict, in this order:
//
//	validate → up → begin → load and faults → collect (drain, metrics,
//	traces, logs) → judge → report → down
//
// Validation comes first so a typo costs nothing; baselines are taken
// before the first request so deltas count only the load; evidence is
// collected in the registry's order (harness/assert/kinds) so the stores
// have drained before metrics and traces are read. The environment is
// taken down on every path, Ctrl-C included, unless Keep.
func Run(ctx context.Context, o Options) (rep *report.Report, err error) {
	started := time.Now()
	p, err := Prepare(ctx, o.Scenario, o.Sets)
	if err != nil {
		return nil, err
	}
	out := syncWriter(o.Out)
	runID := NewRunID(p.Scenario.Name)
	dir, err := artifactsDir(o.OutDir, p.Scenario, runID)
	if err != nil {
		return nil, err
	}
	// partial is rep before a verdict: a failed return sets rep to nil.
	partial := &report.Report{Scenario: p.Scenario.Name, File: p.Scenario.File, RunID: runID, Started: started, Dir: dir}
	rep = partial
	// A CI gate needs report.json and junit.xml even when the run never
	// reached a verdict; they then hold the failure as a result.
	defer func() {
		if err != nil && rep == nil {
			writeFailure(partial, err, started)
		}
	}()
	fr, err := newFaultRunner(p, out)
	if err != nil {
		return nil, err
	}
	defer fr.close()

	w, err := acquire(ctx, o, p, fr, rep, out)
	if err != nil {
		return nil, err
	}
	defer func() {
		downCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DownTimeout)
		defer cancel()
		if derr := w.release(downCtx); derr != nil && err == nil {
			err = envErr("tear down: %w", derr)
		}
	}()

	facts, err := exercise(ctx, p, w, fr, dir, out, o.Live)
	if err != nil {
		return nil, err
	}
	rep.Services = servicesReport(ctx, w.env)
	judge(p, facts, rep)
	rep.Duration = time.Since(started)
	if err := rep.WriteFiles(); err != nil {
		return rep, envErr("%w", err)
	}
	if err := rep.AppendStepSummary(); err != nil {
		fmt.Fprintf(out, "warning: %v\n", err)
	}
	return rep, nil
}

// up starts the environment and records how long it took to be ready.
func up(ctx context.Context, backend environment.Backend, p *Prepared, fr *faultRunner, rep *report.Report, out io.Writer) (environment.Environment, error) {
	fmt.Fprintf(out, "▶ %s: starting %d services on the %s backend (run %s)\n", p.Scenario.Name, len(p.Services), backend.Name(), rep.RunID)
	began := time.Now()
	opts := environment.Options{
		RunID:    rep.RunID,
		Services: p.Services,
		Env:      p.Scenario.Environment.Env,
		LogDir:   filepath.Join(rep.Dir, "logs"),
		Progress: func(svc string, ready time.Duration) {
			fmt.Fprintf(out, "  ✓ %-12s ready in %s\n", svc, ready.Round(time.Millisecond))
		},
	}
	fr.upOptions(&opts)
	env, err := backend.Up(ctx, p.Topology, opts)
	if err != nil {
		return nil, envErr("bring up %s on %s: %w (logs in %s)", p.Scenario.Name, backend.Name(), err, opts.LogDir)
	}
	rep.Ready = time.Since(began)
	fr.attach(env)
	return env, nil
}

// exercise drives the scenario against a running environment and collects
// every kind's evidence into dir; the facts it returns are what judging
// needs besides that evidence.
func exercise(ctx context.Context, p *Prepared, w *where, fr *faultRunner, dir string, out io.Writer, live bool) (*Facts, error) {
	env := w.env
	aenv := &assertEnv{env: env, p: p, fresh: w.fresh}
	for _, k := range p.Kinds {
		if err := k.Begin(ctx, aenv); err != nil {
			return nil, envErr("%s: begin: %w", k.Name(), err)
		}
	}
	facts := &Facts{}
	res, err := drive(ctx, p, env, fr, facts, out, live)
	if err != nil {
		return nil, err
	}
	win := assertWindow(dir, res, out)
	began := time.Now()
	for _, k := range p.Kinds {
		if err := k.Collect(ctx, aenv, win); err != nil {
			return nil, envErr("%s: collect: %w", k.Name(), err)
		}
		if ctx.Err() != nil {
			return nil, envErr("interrupted: %w", ctx.Err())
		}
	}
	facts.Collected = time.Since(began)
	if res != nil {
		facts.Vars = res.Vars()
	}
	return facts, facts.save(dir)
}

// drive runs the load with the faults on their schedule; a scenario without
// a load only runs its faults' bookkeeping.
func drive(ctx context.Context, p *Prepared, env environment.Environment, fr *faultRunner, facts *Facts, out io.Writer, live bool) (*load.Result, error) {
	sl := p.Scenario.Load
	if sl == nil {
		return nil, nil
	}
	cfg := loadConfig(sl, env, filepath.Dir(p.Scenario.File))
	if err := load.Preflight(ctx, cfg); err != nil {
		return nil, envErr("load target %s (%s) does not answer: %w", sl.Target, cfg.Target, err)
	}
	fmt.Fprintf(out, "▶ load: %s %s\n", cfg.Model, sl.Target)
	opts := fr.loadOptions()
	if live {
		opts = append(opts, load.WithProgress(func(s load.Snapshot) { fmt.Fprintf(out, "\r\033[K  %s", s) }))
	}
	fr.start(ctx)
	res, err := load.Run(ctx, cfg, opts...)
	facts.Timeline = fr.finish(ctx)
	facts.Faults = fr.record()
	if live {
		fmt.Fprintln(out)
	}
	if err != nil {
		return nil, envErr("load: %w", err)
	}
	if ctx.Err() != nil {
		return nil, envErr("interrupted: %w", ctx.Err())
	}
	return res, nil
}

// lockedWriter serialises writes: progress lines come from service start-up
// callbacks, the load's ticker and fault steps at once.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func syncWriter(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return &lockedWriter{w: w}
}

// NewRunID names a run: scenario, UTC time and a random suffix, so runs sort
// by time and two runs started in the same second never collide.
func NewRunID(name string) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%s-%s", strings.ReplaceAll(name, "/", "-"), time.Now().UTC().Format("20060102-150405"), hex.EncodeToString(b[:]))
}

// artifactsDir creates the run's artifacts directory and saves the
// effective scenario in it.
func artifactsDir(root string, sc *scenario.Scenario, runID string) (string, error) {
	if root == "" {
		root = "artifacts"
	}
	dir, err := filepath.Abs(filepath.Join(root, sc.Name, runID))
	if err != nil {
		return "", inputErr("artifacts dir: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return "", inputErr("artifacts dir: %w", err)
	}
	return dir, saveScenario(dir, sc)
}

// saveScenario writes the scenario as it ran — --set overrides applied, the
// compose file made absolute — so `meshproof eval` judges exactly what ran.
func saveScenario(dir string, sc *scenario.Scenario) error {
	eff := *sc
	if compose, err := sc.ComposePath(); err == nil {
		if abs, err := filepath.Abs(compose); err == nil {
			eff.Environment.Compose = abs
		}
	}
	b, err := yaml.Marshal(&eff)
	if err != nil {
		return envErr("save scenario: %w", err)
	}
	head := fmt.Sprintf("# The scenario as it ran: %s with its --set overrides applied.\n", sc.File)
	if err := os.WriteFile(filepath.Join(dir, "scenario.yaml"), append([]byte(head), b...), 0o644); err != nil {
		return envErr("save scenario: %w", err)
	}
	return nil
}

func servicesReport(ctx context.Context, env environment.Environment) []report.Service {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	usage := env.Usage(ctx)
	var out []report.Service
	for _, s := range env.Services() {
		out = append(out, report.Service{ServiceInfo: s, Usage: usage[s.Name]})
	}
	return out
}

// loadConfig turns the scenario's load into the engine's config, with the
// target rewritten to the address the environment published.
func loadConfig(sl *scenario.LoadSpec, env environment.Environment, scenarioDir string) load.Config {
	cfg := load.Config{
		Target: env.Resolve(sl.Target), Method: sl.Method, Headers: sl.Headers, Body: []byte(sl.Body),
		Model: load.Model(sl.Model), Users: sl.Users, Rate: sl.Rate, MaxInflight: sl.MaxInflight,
		Duration: sl.Duration.D(), Warmup: sl.Warmup.D(), ThinkTime: sl.ThinkTime.D(), Timeout: sl.Timeout.D(),
		Requests: sl.Requests,
	}
	for _, st := range sl.Stages {
		cfg.Stages = append(cfg.Stages, load.Stage{Duration: st.Duration.D(), Target: st.Target})
	}
	if g := sl.GRPC; g != nil {
		cfg.GRPC = &load.GRPCCall{Method: g.Method, Data: g.Data, Metadata: g.Metadata}
		if g.Proto != "" {
			cfg.GRPC.ProtoFile = filepath.Join(scenarioDir, g.Proto)
			for _, ip := range g.ImportPaths {
				cfg.GRPC.ImportPaths = append(cfg.GRPC.ImportPaths, filepath.Join(scenarioDir, ip))
			}
		}
	}
	return cfg
}
