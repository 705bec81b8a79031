package meshtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/environment"
	"github.com/meshproof/meshproof/harness/faults"
	"github.com/meshproof/meshproof/harness/run"
	"github.com/meshproof/meshproof/harness/topology"
)

// T is what the helpers need of a test. *testing.T, *testing.B and every
// testing.TB satisfy it; so does a stand-in where there is no test (an
// example), since TestMain and examples get no *testing.T.
type T interface {
	Helper()
	Errorf(format string, args ...any)
	FailNow()
}

// Timeouts of the calls an Env makes, so a hung service fails a test
// instead of stalling it until go test's own timeout.
const (
	// UpTimeout bounds New and Start: building stand-in images on a first
	// docker run takes minutes; a local start takes seconds.
	UpTimeout = 10 * time.Minute
	// ControlTimeout bounds one fault (Kill, Stop, Start, ...): Start waits
	// for the service's probe, 60 s at most by default.
	ControlTimeout = 2 * time.Minute
)

// Env is a running environment: started by New or Start, or attached to
// with WithAttach. Its methods are safe for concurrent use.
type Env struct {
	up      *run.UpEnvironment
	started time.Time
	// owned is false for an attached environment, which Close leaves
	// running.
	owned bool
	// links are the ports WithLinks put a proxy in front of.
	links     []string
	closeOnce sync.Once
	closeErr  error
}

// New starts (or, WithAttach, attaches to) the environment compose
// describes and returns once every service is ready. Call Close when done;
// it is meant for TestMain, which has no T — a single test uses Start.
func New(ctx context.Context, compose string, opts ...Option) (*Env, error) {
	c := config{outDir: filepath.Join(os.TempDir(), "meshtest")}
	for _, o := range opts {
		o(&c)
	}
	ctx, cancel := context.WithTimeout(ctx, UpTimeout)
	defer cancel()
	if c.attach != "" {
		if len(c.services) > 0 || c.env != nil || len(c.links) > 0 {
			return nil, errors.New("meshtest: WithAttach reuses a running environment; WithServices, WithEnv and WithLinks cannot change it")
		}
		up, err := run.Attach(ctx, run.AttachOptions{
			Compose: compose, RunID: c.attach, Backend: c.backend, Out: c.out,
			LogDir: filepath.Join(c.outDir, "attach", c.attach+"-"+time.Now().UTC().Format("20060102-150405.000"), "logs"),
		})
		if err != nil {
			return nil, fmt.Errorf("meshtest: %w", err)
		}
		return &Env{up: up, started: time.Now()}, nil
	}
	up, err := run.Up(ctx, run.UpOptions{
		Compose: compose, Services: c.services, Backend: c.backend, Env: c.env, Links: c.links,
		OutDir: c.outDir, Out: c.out, Detach: false,
	})
	if err != nil {
		return nil, fmt.Errorf("meshtest: %w", err)
	}
	return &Env{up: up, started: time.Now(), owned: true, links: c.links}, nil
}

// Start is New for one test: it fails t when the environment does not come
// up, sends progress to the test log, and closes the environment when t and
// its subtests have finished (t.Cleanup), naming the logs when t failed.
func Start(t testing.TB, compose string, opts ...Option) *Env {
	t.Helper()
	opts = append([]Option{WithOutput(logWriter{t})}, opts...)
	env, err := New(t.Context(), compose, opts...)
	require.NoError(t, err, "start the environment of %s", compose)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("meshtest: service logs of run %s are in %s", env.RunID(), env.LogDir())
		}
		if err := env.Close(); err != nil {
			t.Errorf("meshtest: %v", err)
		}
	})
	return env
}

// Close takes a started environment down, or releases an attached one
// (leaving its services running). It is idempotent.
func (e *Env) Close() error {
	e.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), run.DownTimeout)
		defer cancel()
		if err := e.up.Close(ctx); err != nil {
			e.closeErr = fmt.Errorf("meshtest: close run %s: %w", e.RunID(), err)
		}
	})
	return e.closeErr
}

// RunID names the run (what `meshproof list --running` shows).
func (e *Env) RunID() string { return e.up.RunID }

// Services describes every started service: ports, log file, readiness.
func (e *Env) Services() []environment.ServiceInfo { return e.up.Services() }

// Environment is the environment under the Env, for the harness packages
// (run.Options.Environment, assert kinds) and for what meshtest does not wrap.
func (e *Env) Environment() environment.Environment { return e.up.Environment }

// Topology is the compose file the environment was started from.
func (e *Env) Topology() *topology.Topology { return e.up.Topology }

// LogDir is the directory of the services' log files.
func (e *Env) LogDir() string {
	for _, s := range e.Services() {
		if s.LogFile != "" {
			return filepath.Dir(s.LogFile)
		}
	}
	return ""
}

// Resolve rewrites compose references in s — "http://gateway:8080/x",
// "service-a:50051", a key=value DSN — to the addresses this run
// published, so tests are written with compose names whatever the backend.
func (e *Env) Resolve(s string) string { return e.up.Resolve(s) }

// Address is the 127.0.0.1:port where the given container port of a service
// is reached now (it may change after Stop and Start).
func (e *Env) Address(t T, service string, port int) string {
	t.Helper()
	addr, err := e.up.Address(service, port)
	require.NoError(t, err, "address of %s:%d", service, port)
	return addr
}

// Endpoint is the URL or DSN, credentials included, where a client reaches
// a service (its x-meshproof.endpoint), e.g. mongodb://127.0.0.1:PORT.
func (e *Env) Endpoint(t T, service string) string {
	t.Helper()
	ep, err := e.up.Endpoint(service)
	require.NoError(t, err, "endpoint of %s", service)
	return ep
}

// endpointOf is the endpoint of the started service of a topology kind
// (the one named, when service is not empty): how assertions find Jaeger,
// Prometheus and the stores without the test naming them.
func (e *Env) endpointOf(kind topology.Kind, service string) (string, error) {
	name, err := e.pick(kind, service)
	if err != nil {
		return "", err
	}
	ep, err := e.up.Endpoint(name)
	if err != nil {
		return "", fmt.Errorf("meshtest: %w", err)
	}
	return ep, nil
}

// pick names the started service of a topology kind (or checks service).
func (e *Env) pick(kind topology.Kind, service string) (string, error) {
	var started []string
	for _, s := range e.Services() {
		started = append(started, s.Name)
	}
	name, err := e.up.Topology.Pick(kind, service, started)
	if err != nil {
		return "", fmt.Errorf("meshtest: %w", err)
	}
	return name, nil
}

// Kill sends SIGKILL to a service (a crash: no drain).
func (e *Env) Kill(t T, service string) { t.Helper(); e.control(t, "kill", service, e.up.Kill) }

// Stop stops a service gracefully (SIGTERM, then SIGKILL after a grace).
func (e *Env) Stop(t T, service string) { t.Helper(); e.control(t, "stop", service, e.up.Stop) }

// Start starts a stopped or killed service and waits for its probe.
func (e *Env) Start(t T, service string) { t.Helper(); e.control(t, "start", service, e.up.Start) }

// Pause freezes a service (SIGSTOP / docker pause): it holds connections
// but answers nothing, as a hung process does.
func (e *Env) Pause(t T, service string) { t.Helper(); e.control(t, "pause", service, e.up.Pause) }

// Unpause resumes a paused service.
func (e *Env) Unpause(t T, service string) {
	t.Helper()
	e.control(t, "unpause", service, e.up.Unpause)
}

func (e *Env) control(t T, action, service string, fn func(context.Context, string) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(contextOf(t), ControlTimeout)
	defer cancel()
	require.NoError(t, fn(ctx, service), "%s %s", action, service)
}

// Latency delays every response on a link ("service-c:50051") by d, until
// Heal; the link must have been named WithLinks when the environment
// started.
func (e *Env) Latency(t T, link string, d time.Duration) {
	t.Helper()
	e.link(t, "latency on", link, func(ctx context.Context, l faults.Links) error { return l.Latency(ctx, link, d) })
}

// Drop stops all data on a link without closing connections (a partition),
// until Heal.
func (e *Env) Drop(t T, link string) {
	t.Helper()
	e.link(t, "drop", link, func(ctx context.Context, l faults.Links) error { return l.Drop(ctx, link) })
}

// Heal removes what Latency and Drop added to a link.
func (e *Env) Heal(t T, link string) {
	t.Helper()
	e.link(t, "heal", link, func(ctx context.Context, l faults.Links) error { return l.Heal(ctx, link) })
}

func (e *Env) link(t T, action, link string, fn func(context.Context, faults.Links) error) {
	t.Helper()
	// An attached environment's proxies are its own: only it knows them.
	if e.up.Links == nil || e.owned && !slices.Contains(e.links, link) {
		require.Failf(t, "no proxy on "+link, "%s %s: start the environment WithLinks(%q)", action, link, link)
	}
	ctx, cancel := context.WithTimeout(contextOf(t), ControlTimeout)
	defer cancel()
	require.NoError(t, fn(ctx, e.up.Links), "%s %s", action, link)
}

// contextOf is the test's context (ended when the test ends) where t has
// one, so a helper stops with its test.
func contextOf(t T) context.Context {
	if c, ok := t.(interface{ Context() context.Context }); ok {
		return c.Context()
	}
	return context.Background()
}

// logWriter sends progress lines to the test log.
type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
