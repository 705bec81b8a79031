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
}

// DownTimeout bounds teardown, which must finish even after Ctrl-C.
const DownTimeout = 90 * time.Second

// Run brings the scenario's environment up, drives its load, drains, judges
// every assertion and takes the environment down again (unless Keep). The
// report is returned whenever the run got as far as judging; err is an
// *InputError or *EnvError when it could not.
func Run(ctx context.Context, o Options) (rep *report.Report, err error) {
	started := time.Now()
	p, err := Prepare(ctx, o.Scenario, o.Sets)
	if err != nil {
		return nil, err
	}
	sc := p.Scenario
	out := syncWriter(o.Out)
	if o.OutDir == "" {
		o.OutDir = "artifacts"
	}
	backend, err := SelectBackend(ctx, o.Backend, o.Keep)
	if err != nil {
		return nil, err
	}
	runID := NewRunID(sc.Name)
	dir, err := filepath.Abs(filepath.Join(o.OutDir, sc.Name, runID))
	if err != nil {
		return nil, inputErr("artifacts dir: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return nil, inputErr("artifacts dir: %w", err)
	}
	if err := saveScenario(dir, sc); err != nil {
		return nil, err
	}
	if err := ensureImages(ctx, backend, p, out); err != nil {
		return nil, err
	}

	fr, err := newFaultRunner(p, out)
	if err != nil {
		return nil, err
	}
	defer fr.close()
	fmt.Fprintf(out, "▶ %s: starting %d services on the %s backend (run %s)\n", sc.Name, len(p.Services), backend.Name(), runID)
	upStart := time.Now()
	upOpts := environment.Options{
		RunID:    runID,
		Services: p.Services,
		Env:      sc.Environment.Env,
		LogDir:   filepath.Join(dir, "logs"),
		Progress: func(svc string, ready time.Duration) {
			fmt.Fprintf(out, "  ✓ %-12s ready in %s\n", svc, ready.Round(time.Millisecond))
		},
	}
	fr.upOptions(&upOpts)
	env, err := backend.Up(ctx, p.Topology, upOpts)
	if err != nil {
		return nil, envErr("bring up %s on %s: %w (logs in %s)", sc.Name, backend.Name(), err, filepath.Join(dir, "logs"))
	}
	ready := time.Since(upStart)
	defer func() {
		if o.Keep {
			fmt.Fprintf(out, "environment kept running (run %s); stop it with: meshproof down %s\n", runID, runID)
			return
		}
		downCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DownTimeout)
		defer cancel()
		if derr := env.Down(downCtx); derr != nil && err == nil {
			err = envErr("tear down: %w", derr)
		}
	}()

	fr.attach(env)
	rec := &recorder{p: p, env: env, dir: dir, out: out, live: o.Live, faults: fr}
	ev, err := rec.collect(ctx)
	if err != nil {
		return nil, err
	}
	rep = &report.Report{
		Scenario: sc.Name, File: sc.File, RunID: runID, Backend: backend.Name(),
		Started: started, Ready: ready, Dir: dir,
	}
	rep.Services = servicesReport(ctx, env)
	if err := ev.save(dir); err != nil {
		return nil, err
	}
	judge(p, ev, dir, rep)
	rep.Duration = time.Since(started)
	if err := rep.WriteFiles(); err != nil {
		return rep, envErr("%w", err)
	}
	if err := rep.AppendStepSummary(); err != nil {
		fmt.Fprintf(out, "warning: %v\n", err)
	}
	return rep, nil
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

func saveScenario(dir string, sc *scenario.Scenario) error {
	b, err := os.ReadFile(sc.File)
	if err != nil {
		return inputErr("read %s: %w", sc.File, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "scenario.yaml"), b, 0o644); err != nil {
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
