package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/meshproof/meshproof/bench"
	"github.com/meshproof/meshproof/harness/backend/docker"
	"github.com/meshproof/meshproof/harness/backend/images"
	"github.com/meshproof/meshproof/harness/backend/local"
	"github.com/meshproof/meshproof/harness/environment"
	"github.com/meshproof/meshproof/harness/load"
	"github.com/meshproof/meshproof/harness/topology"
)

// seedTraceMs is the one figure the seed gives for its mesh: a trace of
// GET /api/greeting that took 195 ms on EKS with Istio.
const seedTraceMs = 195

// startup is what one backend's Up took.
type startup struct {
	Backend string `json:"backend"`
	// Total is from the first service's start to the last one's passing
	// probe: the environment's own start-up.
	Total float64 `json:"total_seconds"`
	// UpWall is the whole Up call, which also holds the backend's work
	// before any service starts (the local backend first reaps runs that
	// crashed harnesses left behind; on a shared host that can take long).
	UpWall   float64            `json:"up_wall_seconds"`
	Services map[string]float64 `json:"ready_seconds"`
	Error    string             `json:"error,omitempty"`
}

func runID(backend string) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("bench-%s-%s-%s", backend, time.Now().UTC().Format("20060102-150405"), hex.EncodeToString(b[:]))
}

// up starts every service of topo on b and records the time to all-ready,
// in total and per service (from its start to a passing probe).
func (r *runner) up(ctx context.Context, b environment.Backend, topo *topology.Topology) (environment.Environment, startup, error) {
	st := startup{Backend: b.Name(), Services: map[string]float64{}}
	var mu sync.Mutex
	var firstStart, lastReady time.Time
	logDir := filepath.Join(r.outDir, "out", "logs", b.Name())
	_ = os.RemoveAll(logDir) // this run's logs only; backends append
	began := time.Now()
	env, err := b.Up(ctx, topo, environment.Options{
		RunID:    runID(b.Name()),
		Services: topo.Names(),
		LogDir:   logDir,
		Progress: func(service string, ready time.Duration) {
			now := time.Now()
			mu.Lock()
			st.Services[service] = ready.Seconds()
			if start := now.Add(-ready); firstStart.IsZero() || start.Before(firstStart) {
				firstStart = start
			}
			lastReady = now
			mu.Unlock()
			r.logf("    %-12s ready after %s", service, ready.Round(time.Millisecond))
		},
	})
	st.UpWall = time.Since(began).Seconds()
	st.Total = st.UpWall
	if !firstStart.IsZero() {
		st.Total = lastReady.Sub(firstStart).Seconds()
	}
	if err != nil {
		st.Error = err.Error()
		return nil, st, err
	}
	for _, s := range env.Services() {
		st.Services[s.Name] = s.Ready.Seconds()
	}
	return env, st, nil
}

// startupFigure reports the total with the slowest services as reference.
func startupFigure(st startup, services int) bench.Figure {
	type svc struct {
		name string
		s    float64
	}
	var all []svc
	for n, s := range st.Services {
		all = append(all, svc{n, s})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].s > all[j].s })
	var slow []string
	for _, s := range all[:min(3, len(all))] {
		slow = append(slow, fmt.Sprintf("%s %.1f s", s.name, s.s))
	}
	ref := "slowest: " + strings.Join(slow, ", ") + " (per service in results.json)"
	if st.UpWall-st.Total > 2 {
		ref += fmt.Sprintf("; Up itself returned after %.1f s, %.1f s of it before the first service started", st.UpWall, st.UpWall-st.Total)
	}
	return bench.NewFigure(startupItem(st.Backend), fmt.Sprintf("%s backend: %d services all ready", st.Backend, services), st.Total, "s", nil, ref)
}

func (r *runner) down(ctx context.Context, env environment.Environment) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 90*time.Second)
	defer cancel()
	if err := env.Down(dctx); err != nil {
		r.logf("  down: %v", err)
	}
}

// itemLocalEnvironment measures the start-up of the local backend and, on
// the same environment, the mesh's own latency with 20 users (mesh-local).
func (r *runner) itemLocalEnvironment(ctx context.Context) error {
	// Issue 16's mesh goal; the mesh is not optimised in that change, so
	// the figure is listed (and counts as missed) until someone measures it.
	f := bench.Unmeasured(itemMeshLocal, "mesh throughput at 20 users ÷ before", bench.AtLeast(2), "not measured in this change")
	f.Unit = "x"
	r.add(f)
	ctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	topo, err := topology.Load(ctx, filepath.Join(r.root, "docker-compose.yml"))
	if err != nil {
		r.add(bench.Unmeasured(itemMeshLocal, "local backend: all services ready", nil, err.Error()))
		r.add(bench.Unmeasured(itemMeshLocal, "mesh GET /api/greeting p50, 20 users", nil, "no environment: "+err.Error()))
		return err
	}
	n := len(topo.Names())
	r.logf("item %s: start-up, local backend, %d services", itemMeshLocal, n)
	env, st, err := r.up(ctx, local.New(), topo)
	r.details["mesh-local_startup"] = st
	if err != nil {
		r.add(bench.Unmeasured(itemMeshLocal, fmt.Sprintf("local backend: %d services all ready", n), nil, "local backend not working: "+firstLine(err)))
		r.add(bench.Unmeasured(itemMeshLocal, "mesh GET /api/greeting p50, 20 users", nil, "no local environment"))
		return err
	}
	defer r.down(ctx, env)
	r.add(startupFigure(st, n))
	return r.meshLatency(ctx, env)
}

// meshLatency is the mesh-local item's latency at 20 users.
func (r *runner) meshLatency(ctx context.Context, env environment.Environment) error {
	const users = 20
	target := env.Resolve("http://gateway:8080/api/greeting")
	r.logf("item %s: the mesh, GET %s, %d users, 15s after a 3s warm-up", itemMeshLocal, target, users)
	cfg := load.Config{Target: target, Users: users, Duration: 15 * time.Second, Warmup: 3 * time.Second, Timeout: 10 * time.Second}
	name50, name99 := "mesh GET /api/greeting p50, 20 users", "mesh GET /api/greeting p99, 20 users"
	if err := load.Preflight(ctx, cfg); err != nil {
		r.add(bench.Unmeasured(itemMeshLocal, name50, nil, err.Error()))
		return err
	}
	res, err := load.Run(ctx, cfg)
	if err != nil {
		r.add(bench.Unmeasured(itemMeshLocal, name50, nil, err.Error()))
		return err
	}
	m := res.Measured()
	r.details["mesh-local_latency"] = map[string]any{
		"users": users, "requests": m.Requests, "errors": m.Errors, "rps": res.Throughput(),
		"latency": res.Latency, "error_reasons": res.ErrorReasons,
	}
	ref := fmt.Sprintf("%d requests, %d errors, %.0f req/s, local backend on this machine; the seed's one trace took %d ms on EKS with Istio",
		m.Requests, m.Errors, res.Throughput(), seedTraceMs)
	r.add(bench.NewFigure(itemMeshLocal, name50, res.Latency.P50Ms, "ms", nil, ref))
	r.add(bench.NewFigure(itemMeshLocal, name99, res.Latency.P99Ms, "ms", nil, fmt.Sprintf("p50 ÷ seed's 195 ms = %.2f×", res.Latency.P50Ms/seedTraceMs)))
	return nil
}

// itemDockerStartup is the startup-docker item: start-up on the docker backend, with the offline
// stand-in images (built first if missing; the build is not timed).
func (r *runner) itemDockerStartup(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	name := "docker backend: all services ready"
	d := docker.New(docker.WithLog(io.Discard))
	if err := d.Ping(ctx); err != nil {
		r.add(bench.Unmeasured(itemStartupDocker, name, nil, "no Docker daemon: "+firstLine(err)))
		return err
	}
	// The env file goes under bench/out so that the shared .env.offline
	// beside docker-compose.yml is never rewritten by a benchmark.
	envFile := filepath.Join(r.outDir, "out", "env.offline")
	r.logf("item %s: start-up, docker backend (checking the stand-in images first)", itemStartupDocker)
	if _, err := images.Build(ctx, images.WithRoot(r.root), images.WithEnvFile(envFile)); err != nil {
		r.add(bench.Unmeasured(itemStartupDocker, name, nil, "stand-in images: "+firstLine(err)))
		return err
	}
	topo, err := topology.Load(ctx, filepath.Join(r.root, "docker-compose.yml"), topology.WithEnvFile(envFile))
	if err != nil {
		r.add(bench.Unmeasured(itemStartupDocker, name, nil, err.Error()))
		return err
	}
	n := len(topo.Names())
	if err := d.Preflight(ctx, topo, topo.Names()); err != nil {
		r.add(bench.Unmeasured(itemStartupDocker, fmt.Sprintf("docker backend: %d services all ready", n), nil, firstLine(err)))
		return err
	}
	env, st, err := r.up(ctx, d, topo)
	r.details["startup-docker"] = st
	if err != nil {
		r.add(bench.Unmeasured(itemStartupDocker, fmt.Sprintf("docker backend: %d services all ready", n), nil, "docker backend not working: "+firstLine(err)))
		return err
	}
	defer r.down(ctx, env)
	f := startupFigure(st, n)
	if l, ok := r.details["mesh-local_startup"].(startup); ok && l.Error == "" && l.Total > 0 {
		f.Ref = fmt.Sprintf("%.1f× the local backend's %.1f s; %s", st.Total/l.Total, l.Total, f.Ref)
	}
	r.add(f)
	return nil
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// startupItem is the item a backend's start-up figure belongs to.
func startupItem(backend string) string {
	if backend == "docker" {
		return itemStartupDocker
	}
	return itemMeshLocal
}
