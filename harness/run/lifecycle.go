package run

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/meshproof/meshproof/harness/backend/docker"
	"github.com/meshproof/meshproof/harness/backend/images"
	"github.com/meshproof/meshproof/harness/backend/local"
	"github.com/meshproof/meshproof/harness/environment"
	"github.com/meshproof/meshproof/harness/faults"
	"github.com/meshproof/meshproof/harness/faults/toxi"
	"github.com/meshproof/meshproof/harness/scenario"
	"github.com/meshproof/meshproof/harness/topology"
)

// UpOptions of `meshproof up`.
type UpOptions struct {
	// Scenario, when set, picks the compose file, services and env from it.
	Scenario string
	// Compose is the compose file when no scenario is given.
	Compose  string
	Services []string
	Backend  string
	// Detach leaves the environment running after the command exits.
	Detach bool
	OutDir string
	Out    io.Writer
	// Env overrides environment variables per service, as a scenario's
	// environment.env does.
	Env map[string]map[string]string
	// Links are service ports ("service-c:50051") to put a proxy in front
	// of, so latency and drop faults can act on them later (UpEnvironment.Links).
	Links []string
}

// UpEnvironment is a started environment and where to reach it.
type UpEnvironment struct {
	environment.Environment
	RunID string
	// Endpoints lists, per service, the published addresses (as URLs where
	// the protocol is known).
	Endpoints map[string][]string
	// Topology is the compose file the environment was started from.
	Topology *topology.Topology
	// Links drives latency and drop on the ports UpOptions.Links named;
	// nil when it named none.
	Links faults.Links
	// proxy is the in-process toxiproxy behind Links on the local backend.
	proxy *toxi.Server
}

// Close takes the environment down and stops its in-process proxies.
func (u *UpEnvironment) Close(ctx context.Context) error {
	err := u.Down(ctx)
	if u.proxy != nil {
		_ = u.proxy.Close()
	}
	return err
}

// Up brings an environment up for poking around, like `docker compose up`.
func Up(ctx context.Context, o UpOptions) (*UpEnvironment, error) {
	out := syncWriter(o.Out)
	var p *Prepared
	var err error
	if o.Scenario != "" {
		if p, err = Prepare(ctx, o.Scenario, nil); err != nil {
			return nil, err
		}
	} else {
		topo, err := LoadTopology(ctx, o.Compose)
		if err != nil {
			return nil, &InputError{Err: err}
		}
		p = &Prepared{Scenario: &scenario.Scenario{Name: "up", File: o.Compose}, Topology: topo}
		if p.Services, err = topo.Closure(o.Services); err != nil {
			return nil, &InputError{Err: fmt.Errorf("--services: %w", err)}
		}
	}
	backend, err := SelectBackend(ctx, o.Backend, o.Detach)
	if err != nil {
		return nil, err
	}
	if err := ensureImages(ctx, backend, p, out); err != nil {
		return nil, err
	}
	runID := NewRunID("up")
	if o.OutDir == "" {
		o.OutDir = "artifacts"
	}
	logDir, err := filepath.Abs(filepath.Join(o.OutDir, "up", runID, "logs"))
	if err != nil {
		return nil, inputErr("logs dir: %w", err)
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, inputErr("logs dir: %w", err)
	}
	fmt.Fprintf(out, "starting %d services on the %s backend (run %s)\n", len(p.Services), backend.Name(), runID)
	envOverrides := p.Scenario.Environment.Env
	if o.Env != nil {
		envOverrides = o.Env
	}
	opts := environment.Options{
		RunID: runID, Services: p.Services, Env: envOverrides, LogDir: logDir,
		Progress: func(svc string, ready time.Duration) {
			fmt.Fprintf(out, "  ✓ %-12s ready in %s\n", svc, ready.Round(time.Millisecond))
		},
	}
	var px *toxi.Server
	if len(o.Links) > 0 {
		px = toxi.NewServer()
		opts.Interpose, opts.Proxy = o.Links, px.Proxy
		opts.ProxyImage = offlineVar(p.Topology.Dir, "TOXIPROXY_IMAGE")
	}
	env, err := backend.Up(ctx, p.Topology, opts)
	if err != nil {
		if px != nil {
			_ = px.Close()
		}
		return nil, envErr("up: %w (logs in %s)", err, logDir)
	}
	scen := o.Scenario
	if scen == "" {
		scen = "scenarios/NAME.yaml"
	}
	fmt.Fprintf(out, "run %s is up; run a scenario against it with:\n  meshproof run %s --attach %s\n", runID, scen, runID)
	up := &UpEnvironment{Environment: env, RunID: runID, Endpoints: endpoints(p, env), Topology: p.Topology, proxy: px}
	if px != nil {
		up.Links = px
	}
	if a, ok := env.(environment.ToxiproxyAPI); ok && a.ToxiproxyAPI() != "" {
		up.Links = toxi.NewClient(a.ToxiproxyAPI())
	}
	return up, nil
}

// endpoints formats each service's published ports for people: http:// for
// HTTP probes and metrics, plain host:port otherwise.
func endpoints(p *Prepared, env environment.Environment) map[string][]string {
	out := map[string][]string{}
	for _, s := range env.Services() {
		svc := p.Topology.Services[s.Name]
		ports := make([]int, 0, len(s.Ports))
		for port := range s.Ports {
			ports = append(ports, port)
		}
		sort.Ints(ports)
		for _, port := range ports {
			addr := s.Ports[port]
			label := fmt.Sprintf("%d→%s", port, addr)
			if svc != nil && (svc.Meshproof.Probe.Type == "http" && svc.Meshproof.Probe.Port == port ||
				svc.Meshproof.Metrics != nil && svc.Meshproof.Metrics.Port == port) {
				label = fmt.Sprintf("%d→http://%s", port, addr)
			}
			out[s.Name] = append(out[s.Name], label)
		}
	}
	return out
}

// Down removes environments left running by `up --detach` or `run --keep`:
// the named runs, or all of them, on every backend.
func Down(ctx context.Context, runIDs []string, all bool) ([]string, error) {
	removed, err := local.New().DownRuns(ctx, runIDs, all)
	errs := []error{err}
	if DockerAvailable(ctx) {
		d := docker.New()
		if all {
			got, err := d.SweepAll(ctx)
			removed, errs = append(removed, got...), append(errs, err)
		}
		for _, id := range runIDs {
			got, err := d.RemoveRun(ctx, id)
			removed, errs = append(removed, got...), append(errs, err)
		}
	}
	return removed, errors.Join(errs...)
}

// GC removes what crashed or killed runs left behind, on every backend.
func GC(ctx context.Context) ([]string, error) {
	var removed []string
	var errs []error
	for _, b := range allBackends(ctx) {
		got, err := b.GC(ctx)
		removed = append(removed, got...)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", b.Name(), err))
		}
	}
	return removed, errors.Join(errs...)
}

// BuildImages builds the offline stand-in images and writes the env file
// the compose file interpolates.
func BuildImages(ctx context.Context, out io.Writer) error {
	res, err := images.Build(ctx, images.WithLog(out))
	if err != nil {
		return fmt.Errorf("build images: %w", err)
	}
	if res.EnvFile != "" {
		fmt.Fprintf(out, "wrote %s (docker-compose.yml picks the images from it; `docker compose --env-file %s up` by hand)\n", res.EnvFile, filepath.Base(res.EnvFile))
	}
	return nil
}

// ensureImages makes sure the docker backend has every image. Where
// `meshproof images` was used before (.env.offline exists) the stand-ins are
// refreshed — cheap when their inputs have not changed, and never stale.
// Otherwise the upstream images are inspected and pulled; when that fails
// (no registry) the stand-ins are built once and the topology reloaded.
func ensureImages(ctx context.Context, b environment.Backend, p *Prepared, out io.Writer) error {
	d, ok := b.(*docker.Backend)
	if !ok {
		return nil
	}
	envFile := filepath.Join(p.Topology.Dir, images.OfflineEnvFile)
	if !fileExists(envFile) {
		err := d.Preflight(ctx, p.Topology, p.Services)
		if err == nil {
			return nil
		}
		fmt.Fprintf(out, "images: %v\nimages: building the offline stand-ins instead (once per input change)\n", err)
	}
	if _, err := images.Build(ctx, images.WithRoot(p.Topology.Dir), images.WithEnvFile(envFile), images.WithLog(out)); err != nil {
		return envErr("build offline images: %w", err)
	}
	topo, err := LoadTopology(ctx, p.Topology.File)
	if err != nil {
		return &InputError{Err: err}
	}
	p.Topology = topo
	if err := d.Preflight(ctx, p.Topology, p.Services); err != nil {
		return envErr("%w", err)
	}
	return nil
}
