package local

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/meshproof/meshproof/harness/backend/probe"
	"github.com/meshproof/meshproof/harness/environment"
	"github.com/meshproof/meshproof/harness/topology"
)

// runDirPrefix names every run's temp dir; GC removes only such dirs.
const runDirPrefix = "meshproof-local-"

// env is one running set of local processes.
type env struct {
	b      *Backend
	topo   *topology.Topology
	runID  string
	runDir string
	logDir string
	over   map[string]map[string]string
	// ports maps service -> container port -> host port, fixed for the run
	// so addresses survive a Stop/Start.
	ports map[string]map[int]int
	// proxied maps "service:port" to the proxy address its consumers use
	// (Options.Interpose); the service itself and the harness keep the
	// real address.
	proxied map[string]string
	// private holds the ports handed to internal listeners (freePort), so
	// that no two of them, and none of them and a service, coincide.
	portMu  sync.Mutex
	private map[int]bool

	mu     sync.Mutex
	closed bool
	svcs   map[string]*service
	state  runState
}

var _ environment.Environment = (*env)(nil)

// service is one started service.
type service struct {
	spec    *topology.Service
	plan    *plan // prepared once; Start reuses it
	procs   []*proc
	log     *os.File
	info    environment.ServiceInfo
	peakRSS uint64
	cpu     float64
}

func newEnv(ctx context.Context, b *Backend, topo *topology.Topology, opts environment.Options, names []string) (*env, error) {
	runID := opts.RunID
	if runID == "" {
		runID = newRunID()
	}
	runDir, err := os.MkdirTemp("", runDirPrefix+runID+"-")
	if err != nil {
		return nil, fmt.Errorf("run dir: %w", err)
	}
	// Services run as other users (postgres, rabbitmq) must reach their own
	// subdirs (0700 each), but nobody else may list the run's state: search
	// permission only.
	if err := os.Chmod(runDir, 0o711); err != nil {
		return nil, fmt.Errorf("run dir: %w", err)
	}
	logDir := opts.LogDir
	if logDir == "" {
		logDir = filepath.Join(runDir, "logs")
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, fmt.Errorf("log dir: %w", err)
	}
	e := &env{
		b: b, topo: topo, runID: runID, runDir: runDir, logDir: logDir,
		over: opts.Env, ports: map[string]map[int]int{}, proxied: map[string]string{}, svcs: map[string]*service{},
	}
	self := os.Getpid()
	start, _ := procStart(self)
	e.state = runState{RunID: runID, HarnessPID: self, HarnessStart: start, Detached: b.detached, Dirs: []string{runDir}}
	if err := b.writeState(&e.state); err != nil {
		_ = os.RemoveAll(runDir)
		return nil, err
	}
	if err := e.allocatePorts(names); err != nil {
		_ = e.Down(context.Background())
		return nil, err
	}
	if err := e.interpose(ctx, opts); err != nil {
		_ = e.Down(context.Background())
		return nil, err
	}
	return e, nil
}

// interpose puts a proxy (opts.Proxy, run by the harness) in front of each
// opts.Interpose port. Ports are fixed for the run, so the proxy's upstream
// stays valid across a Stop/Start of the service behind it.
func (e *env) interpose(ctx context.Context, opts environment.Options) error {
	if len(opts.Interpose) == 0 {
		return nil
	}
	if opts.Proxy == nil {
		return fmt.Errorf("interpose %v: no Proxy function in the options", opts.Interpose)
	}
	for _, key := range opts.Interpose {
		svc, port, err := splitKey(key)
		if err != nil {
			return fmt.Errorf("interpose %s: %w", key, err)
		}
		upstream, err := e.Address(svc, port)
		if err != nil {
			return fmt.Errorf("interpose %s: %w", key, err)
		}
		listen, err := opts.Proxy(ctx, svc, port, upstream)
		if err != nil {
			return fmt.Errorf("interpose %s: %w", key, err)
		}
		e.proxied[key] = listen
	}
	return nil
}

// splitKey parses "service:port".
func splitKey(key string) (string, int, error) {
	i := strings.LastIndexByte(key, ':')
	if i <= 0 {
		return "", 0, fmt.Errorf("want service:port")
	}
	port, err := strconv.Atoi(key[i+1:])
	if err != nil || port <= 0 {
		return "", 0, fmt.Errorf("want service:port, got port %q", key[i+1:])
	}
	return key[:i], port, nil
}

// allocatePorts picks a free loopback port for every declared container
// port of every service, holding all listeners until the end so no two
// ports coincide.
func (e *env) allocatePorts(names []string) error {
	var held []net.Listener
	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()
	for _, n := range names {
		s, ok := e.topo.Services[n]
		if !ok {
			return fmt.Errorf("unknown service %q", n)
		}
		want := map[int]bool{}
		for _, p := range s.Ports {
			want[p] = true
		}
		for _, p := range s.Meshproof.Listen {
			want[p] = true
		}
		if p := s.Meshproof.Probe.Port; p > 0 {
			want[p] = true
		}
		if m := s.Meshproof.Metrics; m != nil && m.Port > 0 {
			want[m.Port] = true
		}
		e.ports[n] = map[int]int{}
		for p := range want {
			l, err := listenOutsideEphemeral()
			if err != nil {
				return fmt.Errorf("pick a port for %s:%d: %w", n, p, err)
			}
			held = append(held, l)
			e.ports[n][p] = l.Addr().(*net.TCPAddr).Port
		}
	}
	return nil
}

// Ports are picked below the kernel's ephemeral range (32768 and up on
// Linux). A port taken from the ephemeral range is free only until the
// service binds it: meanwhile any outgoing connection (Prometheus scraping a
// target not up yet, a client dialling) may be given that very port as its
// local end, and the service then fails with "address already in use".
const (
	portRangeLow  = 20000
	portRangeHigh = 32000
)

// listenOutsideEphemeral binds a random free loopback port in
// [portRangeLow, portRangeHigh); the caller closes it just before the
// service starts.
func listenOutsideEphemeral() (net.Listener, error) {
	var lastErr error
	for range 200 {
		port := portRangeLow + rand.IntN(portRangeHigh-portRangeLow)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			return l, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("no free port in %d-%d: %w", portRangeLow, portRangeHigh, lastErr)
}

// freePort picks a port for a listener nobody else addresses (epmd, a
// dist port, Jaeger's own metrics port). Being free now is not enough: the ports
// promised to services are closed until each service binds its own, and a
// Jaeger metrics port that landed on service-c's port made service-c exit
// with "address already in use" (seen in CI). So it also skips every port
// of this run's services and every port it handed out before.
func (e *env) freePort() (int, error) {
	e.portMu.Lock()
	defer e.portMu.Unlock()
	for range 100 {
		l, err := listenOutsideEphemeral()
		if err != nil {
			return 0, fmt.Errorf("pick a free port: %w", err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if !e.private[p] && !e.promised(p) {
			if e.private == nil {
				e.private = map[int]bool{}
			}
			e.private[p] = true
			return p, nil
		}
	}
	return 0, fmt.Errorf("pick a free port: every pick was promised to a service")
}

// promised reports whether p is the host port of a service of the run.
func (e *env) promised(p int) bool {
	for _, m := range e.ports {
		for _, hp := range m {
			if hp == p {
				return true
			}
		}
	}
	return false
}

func (e *env) RunID() string { return e.runID }

func (e *env) hostPort(service string, port int) (int, bool) {
	p, ok := e.ports[service][port]
	return p, ok
}

func (e *env) Address(service string, port int) (string, error) {
	if _, ok := e.ports[service]; !ok {
		return "", fmt.Errorf("service %q is not part of run %s", service, e.runID)
	}
	p, ok := e.hostPort(service, port)
	if !ok {
		return "", fmt.Errorf("service %s declares no port %d", service, port)
	}
	return "127.0.0.1:" + strconv.Itoa(p), nil
}

// resolver answers Rewrite for services of this run only: a reference to a
// service that was not started is left as written.
func (e *env) resolver() func(string, int) (string, bool) {
	return e.topo.Resolver(func(svc string, port int) (string, bool) {
		p, ok := e.hostPort(svc, port)
		if !ok {
			return "", false
		}
		return "127.0.0.1:" + strconv.Itoa(p), true
	})
}

func (e *env) Resolve(s string) string { return topology.Rewrite(s, e.resolver()) }

// consumerResolver is resolver as seen by the service self: a reference to
// an interposed port of another service goes to its proxy.
func (e *env) consumerResolver(self string) func(string, int) (string, bool) {
	direct := e.resolver()
	return func(svc string, port int) (string, bool) {
		if svc != self {
			if addr, ok := e.proxied[svc+":"+strconv.Itoa(port)]; ok {
				return addr, true
			}
		}
		return direct(svc, port)
	}
}

// Endpoint implements environment.Environment.
func (e *env) Endpoint(service string) (string, error) {
	return environment.Endpoint(e.topo, service, e.Resolve)
}

func (e *env) Services() []environment.ServiceInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]environment.ServiceInfo, 0, len(e.svcs))
	for _, n := range sortedKeys(e.svcs) {
		out = append(out, e.svcs[n].info)
	}
	return out
}

func (e *env) readyTime(name string) time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s := e.svcs[name]; s != nil {
		return s.info.Ready
	}
	return 0
}

// startService prepares (first time) and starts a service, then waits for
// its probe. first says this is the run's initial start, when one-time
// initialisation (database creation, fixtures) happens.
func (e *env) startService(ctx context.Context, name string, first bool) error {
	spec := e.topo.Services[name]
	timeout := spec.Meshproof.ReadyTimeout
	if timeout <= 0 {
		timeout = defaultReadyTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	begin := time.Now()

	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return fmt.Errorf("start %s: environment is down", name)
	}
	s := e.svcs[name]
	if s == nil {
		logPath := filepath.Join(e.logDir, name+".log")
		f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			e.mu.Unlock()
			return fmt.Errorf("start %s: log: %w", name, err)
		}
		s = &service{spec: spec, log: f}
		s.info = environment.ServiceInfo{Name: name, Kind: string(spec.Meshproof.Kind), Ports: map[int]string{}, LogFile: logPath}
		for cp, hp := range e.ports[name] {
			s.info.Ports[cp] = "127.0.0.1:" + strconv.Itoa(hp)
		}
		e.svcs[name] = s
	}
	e.mu.Unlock()

	if s.plan == nil {
		p, err := e.prepare(ctx, s)
		if err != nil {
			return fmt.Errorf("start %s: %w", name, err)
		}
		e.mu.Lock() // Services reads info concurrently
		s.plan = p
		s.info.Runs, s.info.Version = p.main.path, p.version
		e.mu.Unlock()
	}
	var started []*proc
	for _, l := range append(append([]launch(nil), s.plan.helpers...), s.plan.main) {
		p, err := e.spawnRecorded(name, l, s.log)
		if err != nil {
			return fmt.Errorf("start %s: %w", name, err)
		}
		started = append(started, p)
		if l.listens != "" {
			if err := waitListening(ctx, l.listens, p); err != nil {
				return fmt.Errorf("start %s: %s: %w", name, filepath.Base(l.path), err)
			}
		}
	}
	main := started[len(started)-1]
	// A process that exits before it is ready will never be: stop waiting.
	waitCtx, stopWait := context.WithCancelCause(ctx)
	defer stopWait(nil)
	go func() {
		select {
		case <-main.done:
			stopWait(fmt.Errorf("%w: %v", errExited, main.err))
		case <-waitCtx.Done():
		}
	}()
	if first && s.plan.init != nil {
		if err := s.plan.init(waitCtx); err != nil {
			return fmt.Errorf("start %s: init: %w%s", name, causeOr(waitCtx, err), exitTail(waitCtx, s.info.LogFile))
		}
	}
	pr := spec.Meshproof.Probe
	addr, err := e.Address(name, pr.Port)
	if err != nil {
		return fmt.Errorf("start %s: probe: %w", name, err)
	}
	if err := probe.Wait(waitCtx, probe.Spec{Type: pr.Type, Addr: addr, Path: pr.Path, DSN: e.Resolve(pr.DSN)}, 200*time.Millisecond); err != nil {
		return fmt.Errorf("start %s: %w%s", name, causeOr(waitCtx, err), exitTail(waitCtx, s.info.LogFile))
	}
	e.mu.Lock()
	s.info.Ready = time.Since(begin)
	e.mu.Unlock()
	return nil
}

// errExited cuts a readiness wait short: the process is gone.
var errExited = errors.New("process exited")

// exitTail is the end of the service's log when its process exited while
// starting, so the error carries the reason (a CI run's temp dir is gone by
// the time anyone reads it).
func exitTail(ctx context.Context, logFile string) string {
	if errors.Is(context.Cause(ctx), errExited) {
		return environment.LogTail(logFile)
	}
	return ""
}

// causeOr prefers the reason the wait was cut short (the process exited)
// over the probe's last error.
func causeOr(ctx context.Context, err error) error {
	if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) && !errors.Is(c, context.DeadlineExceeded) {
		return fmt.Errorf("%w; last probe: %v", c, err)
	}
	return err
}

// spawnRecorded starts a process and records its group in the state file
// before anything else can fail, so a crash right after still gets reaped.
func (e *env) spawnRecorded(name string, l launch, log *os.File) (*proc, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, errors.New("environment is down")
	}
	p, err := spawn(l, log, e.b.detached)
	if err != nil {
		return nil, err
	}
	s := e.svcs[name]
	s.procs = append(s.procs, p)
	e.state.Groups = append(e.state.Groups, groupState{Service: name, PGID: p.pid, Start: p.start})
	if err := e.b.writeState(&e.state); err != nil {
		return p, err
	}
	return p, nil
}

// stopService kills the service's process groups and forgets them.
func (e *env) stopService(ctx context.Context, name string, grace time.Duration) error {
	e.mu.Lock()
	s := e.svcs[name]
	if s == nil {
		e.mu.Unlock()
		return fmt.Errorf("service %q is not part of run %s", name, e.runID)
	}
	procs := s.procs
	s.procs = nil
	e.mu.Unlock()
	var errs []error
	// Main process first (it is last), helpers such as epmd after.
	for _, proc := range slices.Backward(procs) {
		if err := killGroup(ctx, proc.pid, grace); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", name, err))
		}
	}
	e.mu.Lock()
	e.state.Groups = dropGroups(e.state.Groups, procs)
	_ = e.b.writeState(&e.state)
	e.mu.Unlock()
	return errors.Join(errs...)
}

func dropGroups(gs []groupState, procs []*proc) []groupState {
	gone := map[int]bool{}
	for _, p := range procs {
		gone[p.pid] = true
	}
	out := gs[:0]
	for _, g := range gs {
		if !gone[g.PGID] {
			out = append(out, g)
		}
	}
	return out
}

func (e *env) signal(name string, sig syscall.Signal) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.svcs[name]
	if s == nil {
		return fmt.Errorf("service %q is not part of run %s", name, e.runID)
	}
	if len(s.procs) == 0 {
		return fmt.Errorf("service %s is not running", name)
	}
	for _, p := range s.procs {
		if err := syscall.Kill(-p.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("signal %s %s: %w", name, sig, err)
		}
	}
	return nil
}

// Stop ends the service gracefully (SIGTERM, then SIGKILL after the grace).
func (e *env) Stop(ctx context.Context, name string) error {
	return e.stopService(ctx, name, e.b.grace)
}

// Kill ends the service at once (SIGKILL), like a crash.
func (e *env) Kill(ctx context.Context, name string) error {
	e.mu.Lock()
	if s := e.svcs[name]; s != nil {
		for _, p := range s.procs {
			_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		}
	}
	e.mu.Unlock()
	return e.stopService(ctx, name, 0)
}

// Start restarts a stopped or killed service on the same ports and with the
// same data, and waits for its probe.
func (e *env) Start(ctx context.Context, name string) error {
	e.mu.Lock()
	s := e.svcs[name]
	running := s != nil && len(s.procs) > 0
	e.mu.Unlock()
	if s == nil {
		return fmt.Errorf("service %q is not part of run %s", name, e.runID)
	}
	if running {
		return fmt.Errorf("service %s is already running", name)
	}
	return e.startService(ctx, name, false)
}

// Pause freezes every process of the service (SIGSTOP to its groups).
func (e *env) Pause(_ context.Context, name string) error { return e.signal(name, syscall.SIGSTOP) }

// Unpause resumes a paused service.
func (e *env) Unpause(_ context.Context, name string) error { return e.signal(name, syscall.SIGCONT) }

// Usage reports, per service, the summed peak RSS and CPU seconds of its
// process groups; the largest values seen so far are kept, so a service
// that was restarted still shows what it used.
func (e *env) Usage(_ context.Context) map[string]environment.Usage {
	e.mu.Lock()
	defer e.mu.Unlock()
	pgids := map[int]bool{}
	for _, s := range e.svcs {
		for _, p := range s.procs {
			pgids[p.pid] = true
		}
	}
	got := groupUsage(pgids)
	out := map[string]environment.Usage{}
	for n, s := range e.svcs {
		var rss, cpu float64
		for _, p := range s.procs {
			rss += got[p.pid][0]
			cpu += got[p.pid][1]
		}
		s.peakRSS = max(s.peakRSS, uint64(rss))
		s.cpu = max(s.cpu, cpu)
		out[n] = environment.Usage{PeakRSSBytes: s.peakRSS, CPUSeconds: s.cpu}
	}
	return out
}

// Down stops every service (all at once: nothing needs an orderly
// shutdown once the run is over), removes the run's temp dir and its state
// file. It is idempotent and safe while Up is still starting services:
// nothing new is spawned after it begins.
func (e *env) Down(ctx context.Context) error {
	e.mu.Lock()
	e.closed = true
	names := sortedKeys(e.svcs)
	e.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, len(names))
	for i, n := range names {
		wg.Go(func() { errs[i] = e.stopService(ctx, n, e.b.grace) })
	}
	wg.Wait()
	killEscaped(e.runDir)
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.svcs {
		if s.log != nil {
			_ = s.log.Close()
			s.log = nil
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("local down %s: %w", e.runID, err)
	}
	if err := os.RemoveAll(e.runDir); err != nil {
		return fmt.Errorf("local down %s: %w", e.runID, err)
	}
	if err := os.Remove(e.b.statePath(e.runID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("local down %s: %w", e.runID, err)
	}
	return nil
}

// waitListening polls addr until it accepts a connection, p exits, or ctx
// ends.
func waitListening(ctx context.Context, addr string, p *proc) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var d net.Dialer
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		c, err := d.DialContext(dctx, "tcp", addr)
		cancel()
		if err == nil {
			_ = c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not listening on %s: %w", addr, ctx.Err())
		case <-p.done:
			return fmt.Errorf("exited before listening on %s: %v", addr, p.err)
		case <-tick.C:
		}
	}
}
