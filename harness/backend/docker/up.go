package docker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"
	"golang.org/x/sync/errgroup"

	"github.com/meshproof/meshproof/harness/backend/scrape"
	"github.com/meshproof/meshproof/harness/environment"
	"github.com/meshproof/meshproof/harness/topology"
)

// teardownTimeout bounds cleanup that runs after ctx was cancelled.
const teardownTimeout = 60 * time.Second

// Up starts the services layer by layer (dependencies first, one layer in
// parallel), waiting for each probe before the next layer, like compose's
// condition: service_healthy. Dead runs are reaped first and every image is
// inspected before anything starts. On error, or when ctx ends, whatever was
// started is removed before Up returns.
func (b *Backend) Up(ctx context.Context, topo *topology.Topology, opts environment.Options) (environment.Environment, error) {
	disableRyuk()
	if opts.RunID == "" {
		return nil, errors.New("docker up: empty run id")
	}
	if topo == nil {
		return nil, errors.New("docker up: nil topology")
	}
	services := opts.Services
	if len(services) == 0 {
		services = topo.Names()
	}
	layers, err := topo.Order(services)
	if err != nil {
		return nil, fmt.Errorf("docker up: %w", err)
	}
	if err := b.Ping(ctx); err != nil {
		return nil, err
	}
	if b.cfg.gcOnUp {
		if removed, err := b.GC(ctx); err != nil {
			b.logf("gc before up: %v", err)
		} else if len(removed) > 0 {
			b.logf("gc before up removed %s", strings.Join(removed, ", "))
		}
	}
	if err := b.Preflight(ctx, topo, services); err != nil {
		return nil, err
	}
	if opts.LogDir != "" {
		if err := os.MkdirAll(opts.LogDir, 0o755); err != nil {
			return nil, fmt.Errorf("log dir: %w", err)
		}
	}
	cli, err := b.client()
	if err != nil {
		return nil, err
	}

	e := newEnv(b, cli, topo, opts)
	b.setActive(opts.RunID, true)
	fail := func(err error) (environment.Environment, error) {
		// ctx may be the cancelled one (SIGINT); teardown must still run.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), teardownTimeout)
		defer cancel()
		if derr := e.Down(dctx); derr != nil {
			err = errors.Join(err, fmt.Errorf("teardown after failed up: %w", derr))
		}
		return nil, err
	}

	nw, err := tcnetwork.New(ctx, tcnetwork.WithLabels(e.labels()))
	if err != nil {
		return fail(fmt.Errorf("create network: %w", err))
	}
	e.setNetwork(nw)
	if len(opts.Interpose) > 0 {
		if err := e.startProxy(ctx); err != nil {
			return fail(err)
		}
	}

	for _, layer := range layers {
		g, gctx := errgroup.WithContext(ctx)
		for _, name := range layer {
			g.Go(func() error { return e.startService(gctx, name) })
		}
		if err := g.Wait(); err != nil {
			return fail(err)
		}
	}
	e.startSampler()
	return e, nil
}

// startService creates and starts one container and waits for its probe,
// all within the service's deadline.
func (e *env) startService(ctx context.Context, name string) error {
	svc := e.topo.Services[name]
	ready := svc.Meshproof.ReadyTimeout
	if ready <= 0 {
		ready = e.b.cfg.defaultReady
	}
	ctx, cancel := context.WithTimeout(ctx, ready)
	defer cancel()
	start := time.Now()

	req, err := e.request(svc)
	if err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: req,
		Started:          true,
		Logger:           tcLogger{e.b.cfg.log},
	})
	if c != nil {
		// Registered even on error: a created container must be removed.
		e.addContainer(name, svc, c.GetContainerID())
	}
	if err != nil {
		return fmt.Errorf("start %s (%s): %w", name, svc.Image, err)
	}
	if err := e.refreshPorts(ctx, name); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	e.followLogs(name)
	if err := e.waitReady(ctx, name); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	took := time.Since(start)
	e.setReady(name, took)
	e.b.logf("%s ready in %s", name, took.Round(time.Millisecond))
	if e.opts.Progress != nil {
		e.opts.Progress(name, took)
	}
	return nil
}

// request turns a compose service into a testcontainers request.
func (e *env) request(svc *topology.Service) (testcontainers.ContainerRequest, error) {
	ports := containerPorts(svc)
	exposed := make([]string, 0, len(ports))
	for _, p := range ports {
		exposed = append(exposed, strconv.Itoa(p)+"/tcp")
	}
	envs := map[string]string{}
	maps.Copy(envs, svc.Environment)
	// Services talk by DNS alias on the run network, so values are not
	// rewritten; scenario overrides win.
	maps.Copy(envs, e.opts.Env[svc.Name])
	// Links under latency/drop faults go through the run's toxiproxy.
	for k, v := range envs {
		envs[k] = e.consumerRewrite(svc.Name, v)
	}
	var cmd []string // nil keeps the image's CMD
	if svc.Command != nil {
		cmd = make([]string, len(svc.Command))
	}
	for i, a := range svc.Command {
		cmd[i] = e.consumerRewrite(svc.Name, a)
	}
	labels := e.labels()
	labels[LabelService] = svc.Name

	mounts := svc.Volumes
	var files []testcontainers.ContainerFile
	if svc.Meshproof.Kind == topology.KindPrometheus {
		cfgPath := prometheusConfigPath(svc.Command)
		data, err := e.prometheusConfig()
		if err != nil {
			return testcontainers.ContainerRequest{}, fmt.Errorf("prometheus config: %w", err)
		}
		files = append(files, testcontainers.ContainerFile{
			Reader: strings.NewReader(string(data)), ContainerFilePath: cfgPath, FileMode: 0o644,
		})
		// The generated config replaces the compose file's bind mount.
		var kept []topology.Mount
		for _, m := range mounts {
			if m.Target != cfgPath {
				kept = append(kept, m)
			}
		}
		mounts = kept
	}
	for _, m := range mounts {
		if _, err := os.Stat(m.Source); err != nil {
			return testcontainers.ContainerRequest{}, fmt.Errorf("volume %s: %w", m.Source, err)
		}
	}

	netName := e.network.Name
	return testcontainers.ContainerRequest{
		Image:          svc.Image,
		Name:           containerName(e.opts.RunID, svc.Name),
		Entrypoint:     svc.Entrypoint,
		Cmd:            cmd,
		Env:            envs,
		ExposedPorts:   exposed,
		Labels:         labels,
		Networks:       []string{netName},
		NetworkAliases: map[string][]string{netName: {svc.Name}},
		Files:          files,
		HostConfigModifier: func(hc *container.HostConfig) {
			hc.PortBindings = loopbackBindings(ports)
			for _, m := range mounts {
				bind := m.Source + ":" + m.Target
				if m.ReadOnly {
					bind += ":ro"
				}
				hc.Binds = append(hc.Binds, bind)
			}
			for _, path := range svc.Tmpfs {
				if hc.Tmpfs == nil {
					hc.Tmpfs = map[string]string{}
				}
				hc.Tmpfs[path] = ""
			}
		},
	}, nil
}

// containerPorts is every container port the harness may need: compose
// ports and expose, listen ports, the probe port and the metrics port.
func containerPorts(svc *topology.Service) []int {
	set := map[int]bool{}
	for _, p := range svc.Ports {
		set[p] = true
	}
	for _, p := range svc.Meshproof.Listen {
		set[p] = true
	}
	if svc.Meshproof.Probe.Port > 0 {
		set[svc.Meshproof.Probe.Port] = true
	}
	if m := svc.Meshproof.Metrics; m != nil && m.Port > 0 {
		set[m.Port] = true
	}
	out := make([]int, 0, len(set))
	for p := range set {
		if p > 0 {
			out = append(out, p)
		}
	}
	sort.Ints(out)
	return out
}

// loopbackBindings publishes each port on 127.0.0.1 with a host port the
// daemon picks, so parallel runs never collide and nothing listens on
// external interfaces.
func loopbackBindings(ports []int) network.PortMap {
	pm := network.PortMap{}
	for _, p := range ports {
		port, ok := network.PortFrom(uint16(p), network.TCP)
		if !ok {
			continue
		}
		pm[port] = []network.PortBinding{{HostIP: loopback, HostPort: ""}}
	}
	return pm
}

var nameUnsafe = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// containerName makes `docker ps` readable: meshproof-<run>-<service>.
func containerName(runID, service string) string {
	return "meshproof-" + nameUnsafe.ReplaceAllString(runID, "-") + "-" + service
}

// prometheusConfigPath finds --config.file in the command; the default is
// where both the upstream and the stand-in images look.
func prometheusConfigPath(cmd []string) string {
	for i, a := range cmd {
		if v, ok := strings.CutPrefix(a, "--config.file="); ok {
			return v
		}
		if a == "--config.file" && i+1 < len(cmd) {
			return cmd[i+1]
		}
	}
	return "/etc/prometheus/prometheus.yml"
}

// prometheusConfig renders the scrape config for every service of the run
// that declares a metrics endpoint, by DNS alias and container port.
func (e *env) prometheusConfig() ([]byte, error) {
	var targets []scrape.Target
	for _, name := range e.serviceNames() {
		svc := e.topo.Services[name]
		if m := svc.Meshproof.Metrics; m != nil && m.Port > 0 {
			targets = append(targets, scrape.Target{Service: name, Address: net.JoinHostPort(name, strconv.Itoa(m.Port)), Path: m.Path})
		}
	}
	return e.b.cfg.promConfig(targets)
}

// logPath is where a service's container output goes ("" = nowhere).
func (e *env) logPath(service string) string {
	if e.opts.LogDir == "" {
		return ""
	}
	return filepath.Join(e.opts.LogDir, service+".log")
}
