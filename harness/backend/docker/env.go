package docker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"

	"github.com/meshproof/meshproof/harness/environment"
	"github.com/meshproof/meshproof/harness/topology"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// env is one run's containers and network.
type env struct {
	b    *Backend
	cli  *client.Client
	topo *topology.Topology
	opts environment.Options

	mu      sync.Mutex
	network *testcontainers.DockerNetwork
	svcs    map[string]*svcState
	order   []string // start order, for reverse teardown
	down    bool
	downErr error // what the first Down returned
	// proxyID and proxyAPI are the toxiproxy container of a run with
	// Options.Interpose (see proxy.go).
	proxyID  string
	proxyAPI string
	stopSamp context.CancelFunc
	sampDone chan struct{}
}

type svcState struct {
	svc   *topology.Service
	id    string
	ports map[int]string // container port -> 127.0.0.1:hostport
	ready time.Duration
	usage environment.Usage
	logs  *logFollower
}

var _ environment.Environment = (*env)(nil)

func newEnv(b *Backend, cli *client.Client, topo *topology.Topology, opts environment.Options) *env {
	return &env{b: b, cli: cli, topo: topo, opts: opts, svcs: map[string]*svcState{}}
}

// labels are the run's labels; a fresh map each call.
func (e *env) labels() map[string]string {
	host, _ := os.Hostname()
	pid := strconv.Itoa(os.Getpid())
	if e.b.cfg.detached {
		pid = DetachedPID
	}
	return map[string]string{
		LabelManaged: "true",
		LabelRun:     e.opts.RunID,
		LabelPID:     pid,
		LabelHost:    host,
	}
}

func (e *env) setNetwork(n *testcontainers.DockerNetwork) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.network = n
}

func (e *env) addContainer(name string, svc *topology.Service, id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.svcs[name] = &svcState{svc: svc, id: id, ports: map[int]string{}}
	e.order = append(e.order, name)
}

func (e *env) state(name string) (*svcState, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.svcs[name]
	if !ok {
		return nil, fmt.Errorf("service %q is not part of run %s", name, e.opts.RunID)
	}
	return s, nil
}

func (e *env) setReady(name string, d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.svcs[name].ready = d
}

func (e *env) serviceNames() []string {
	if len(e.opts.Services) > 0 {
		out := append([]string(nil), e.opts.Services...)
		sort.Strings(out)
		return out
	}
	return e.topo.Names()
}

// RunID of the run.
func (e *env) RunID() string { return e.opts.RunID }

// Address is the published 127.0.0.1:port of a container port.
func (e *env) Address(service string, port int) (string, error) {
	s, err := e.state(service)
	if err != nil {
		return "", err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	addr, ok := s.ports[port]
	if !ok {
		return "", fmt.Errorf("service %s: container port %d is not published (declare it in ports, expose or x-meshproof)", service, port)
	}
	return addr, nil
}

// Resolve rewrites service:port references to published addresses.
func (e *env) Resolve(s string) string {
	return topology.Rewrite(s, e.topo.Resolver(func(service string, port int) (string, bool) {
		addr, err := e.Address(service, port)
		return addr, err == nil
	}))
}

// refreshPorts reads the host ports the daemon bound; they change when a
// container restarts, so every fault that starts a container calls it.
func (e *env) refreshPorts(ctx context.Context, name string) error {
	s, err := e.state(name)
	if err != nil {
		return err
	}
	want := containerPorts(s.svc)
	// The daemon fills the bindings in as the container starts; a few reads
	// may be needed right after start.
	for {
		res, err := e.cli.ContainerInspect(ctx, s.id, client.ContainerInspectOptions{})
		if err != nil {
			return fmt.Errorf("inspect %s: %w", name, err)
		}
		got := map[int]string{}
		if ns := res.Container.NetworkSettings; ns != nil {
			for _, p := range want {
				port, _ := network.PortFrom(uint16(p), network.TCP)
				for _, bnd := range ns.Ports[port] {
					if bnd.HostPort != "" && (!bnd.HostIP.IsValid() || bnd.HostIP == loopback) {
						got[p] = net.JoinHostPort(loopback.String(), bnd.HostPort)
						break
					}
				}
			}
		}
		if len(got) == len(want) {
			e.mu.Lock()
			s.ports = got
			e.mu.Unlock()
			return nil
		}
		if st := res.Container.State; st != nil && !st.Running {
			return fmt.Errorf("%s is %s (exit code %d)%s", name, st.Status, st.ExitCode, e.logTail(name))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("published ports of %s: %w", name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitReady runs the service's probe against its published port, and gives
// up early when the container exits instead of waiting out the deadline.
func (e *env) waitReady(ctx context.Context, name string) error {
	s, err := e.state(name)
	if err != nil {
		return err
	}
	p := s.svc.Meshproof.Probe
	if p.Type == "" {
		return nil
	}
	addr, err := e.Address(name, p.Port)
	if err != nil {
		return err
	}
	p.DSN = e.Resolve(p.DSN)

	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-pctx.Done():
				return
			case <-t.C:
			}
			res, err := e.cli.ContainerInspect(pctx, s.id, client.ContainerInspectOptions{})
			if err != nil {
				continue
			}
			if st := res.Container.State; st != nil && !st.Running && !st.Paused && !st.Restarting {
				cancel(fmt.Errorf("container exited (%s, exit code %d)", st.Status, st.ExitCode))
				return
			}
		}
	}()
	if err := e.b.cfg.probe(pctx, p, addr); err != nil {
		if cause := context.Cause(pctx); cause != nil && !errors.Is(cause, context.Canceled) && !errors.Is(cause, context.DeadlineExceeded) {
			err = cause
		}
		return fmt.Errorf("%s probe on %s: %w%s", p.Type, addr, err, e.logTail(name))
	}
	return nil
}

// Services describes every started service.
// Endpoint implements environment.Environment.
func (e *env) Endpoint(service string) (string, error) {
	return environment.Endpoint(e.topo, service, e.Resolve)
}

func (e *env) Services() []environment.ServiceInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]environment.ServiceInfo, 0, len(e.svcs))
	for _, name := range e.order {
		s := e.svcs[name]
		ports := make(map[int]string, len(s.ports))
		maps.Copy(ports, s.ports)
		out = append(out, environment.ServiceInfo{
			Name:     name,
			Kind:     string(s.svc.Meshproof.Kind),
			Runs:     s.svc.Image,
			Ready:    s.ready,
			Ports:    ports,
			LogFile:  e.logPath(name),
			LogError: s.logs.failure(),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Down stops and removes every container, then the network. Idempotent and
// safe to call concurrently with a fault or after a failed Up. Use a context
// that is not already cancelled (the CLI's signal path must derive one).
func (e *env) Down(ctx context.Context) error {
	e.mu.Lock()
	if e.down {
		// Already torn down (or tearing down): report how that went, so a
		// failed teardown is not hidden by a second call; `meshproof gc`
		// sweeps what it left by label.
		err := e.downErr
		e.mu.Unlock()
		return err
	}
	e.down = true
	order := append([]string(nil), e.order...)
	nw := e.network
	stop := e.stopSamp
	done := e.sampDone
	e.mu.Unlock()

	if stop != nil {
		stop()
		<-done
	}
	// A last sample, so Usage after Down still reports the whole run.
	e.sample(ctx)

	// Stop every container at once with a grace period (a graceful stop
	// flushes logs; one at a time would add the grace periods up), then
	// remove them. Removal forces what would not stop, paused ones included.
	var wg sync.WaitGroup
	timeout := int(e.b.cfg.stopTimeout / time.Second)
	states := make([]*svcState, 0, len(order))
	for _, name := range order {
		if s, _ := e.state(name); s != nil && s.id != "" {
			states = append(states, s)
		}
	}
	for _, s := range states {
		wg.Go(func() {
			_, _ = e.cli.ContainerStop(ctx, s.id, client.ContainerStopOptions{Timeout: &timeout})
		})
	}
	wg.Wait()
	var errs []error
	for _, s := range states {
		_, err := e.cli.ContainerRemove(ctx, s.id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		if err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove %s: %w", s.svc.Name, err))
		}
	}
	if err := e.removeProxy(ctx); err != nil {
		errs = append(errs, err)
	}
	for _, s := range states {
		e.mu.Lock()
		lf := s.logs
		e.mu.Unlock()
		lf.close()
	}
	if nw != nil {
		_, err := e.cli.NetworkRemove(ctx, nw.ID, client.NetworkRemoveOptions{})
		if err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove network %s: %w", nw.Name, err))
		}
	}
	// Anything else with the run label (a container created but not
	// registered when Up was interrupted) goes too.
	if _, err := e.b.RemoveRun(ctx, e.opts.RunID); err != nil {
		errs = append(errs, err)
	}
	e.b.setActive(e.opts.RunID, false)
	var err error
	if joined := errors.Join(errs...); joined != nil {
		err = fmt.Errorf("docker down %s: %w", e.opts.RunID, joined)
	}
	e.mu.Lock()
	e.downErr = err
	e.mu.Unlock()
	return err
}
