// Package docker is the container backend: every compose service of a run
// becomes a container started through testcontainers-go core (not its compose
// module, which would drag in docker/compose and buildx), on one network per
// run where the compose service names are the network aliases.
//
// The harness reaches containers only through ports published on 127.0.0.1
// with random host ports — never by container IP, which is unreachable from a
// macOS/Windows host or a remote daemon. Readiness is the x-meshproof probe
// against the published port, not a log line, because the stand-in images log
// differently from the upstream ones.
//
// Every container and network carries meshproof.managed=true and
// meshproof.run=<run-id> plus the harness's host and pid, so a crashed or
// killed harness's leftovers can be found and removed (GC) without Ryuk,
// which is off: TESTCONTAINERS_RYUK_DISABLED=true.
package docker

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/moby/moby/client"
	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/meshproof/meshproof/harness/backend/scrape"
	"github.com/meshproof/meshproof/harness/environment"
	"github.com/meshproof/meshproof/harness/topology"
)

// Labels on every container and network the backend creates.
const (
	LabelManaged = "meshproof.managed" // always "true"
	LabelRun     = "meshproof.run"     // the run id
	LabelPID     = "meshproof.pid"     // pid of the harness that owns the run
	LabelHost    = "meshproof.host"    // hostname of that harness
	LabelService = "meshproof.service" // compose service name (containers)
)

// ProbeFunc waits until the readiness probe p passes against addr (the
// published 127.0.0.1:port of p.Port) or ctx ends.
type ProbeFunc func(ctx context.Context, p topology.Probe, addr string) error

// PrometheusConfigFunc renders a Prometheus v2 configuration for targets,
// whose addresses are service DNS names on the run network.
type PrometheusConfigFunc func(targets []scrape.Target) ([]byte, error)

type config struct {
	probe        ProbeFunc
	promConfig   PrometheusConfigFunc
	log          io.Writer
	pullTimeout  time.Duration
	stopTimeout  time.Duration
	sampleEvery  time.Duration
	defaultReady time.Duration
	gcOnUp       bool
	detached     bool
}

// Option configures the backend.
type Option func(*config)

// WithPrometheusConfig replaces the generator of Prometheus's config
// (default: scrape.Config).
func WithPrometheusConfig(f PrometheusConfigFunc) Option {
	return func(c *config) { c.promConfig = f }
}

// WithLog receives the backend's progress and testcontainers' own messages
// (default: discarded).
func WithLog(w io.Writer) Option { return func(c *config) { c.log = w } }

// WithPullTimeout bounds the pull of a missing image (default 2m).
func WithPullTimeout(d time.Duration) Option { return func(c *config) { c.pullTimeout = d } }

// WithStopTimeout is the grace period before SIGKILL on Stop and Down
// (default 5s).
func WithStopTimeout(d time.Duration) Option { return func(c *config) { c.stopTimeout = d } }

// WithSampleInterval sets how often resource use is sampled for peaks
// (default 2s).
func WithSampleInterval(d time.Duration) Option { return func(c *config) { c.sampleEvery = d } }

// WithDetached marks the run's containers as deliberately left running
// (`up --detach`, `run --keep`): GC leaves them alone even after the harness
// exits; only `meshproof down` removes them.
func WithDetached() Option { return func(c *config) { c.detached = true } }

// DetachedPID is the pid label of a detached run.
const DetachedPID = "detached"

// WithoutGCOnUp keeps Up from reaping dead runs first (tests of GC itself).
func WithoutGCOnUp() Option { return func(c *config) { c.gcOnUp = false } }

// Backend starts environments as containers. The zero value is not usable;
// call New.
type Backend struct {
	cfg config

	mu     sync.Mutex
	cli    *client.Client
	active map[string]bool // run ids of environments this process holds
}

var _ environment.Backend = (*Backend)(nil)

// New returns the docker backend. It turns Ryuk off for the whole process
// (TESTCONTAINERS_RYUK_DISABLED=true) before anything calls testcontainers:
// teardown and GC by label replace it, and Ryuk's image cannot be pulled
// where there is no registry.
func New(opts ...Option) *Backend {
	disableRyuk()
	c := config{
		log:          io.Discard,
		pullTimeout:  2 * time.Minute,
		stopTimeout:  5 * time.Second,
		sampleEvery:  2 * time.Second,
		defaultReady: topology.DefaultReadyTimeout,
		gcOnUp:       true,
	}
	for _, o := range opts {
		o(&c)
	}
	if c.probe == nil {
		c.probe = defaultProbe
	}
	if c.promConfig == nil {
		c.promConfig = scrape.Config
	}
	// testcontainers prints its banner through the process-wide logger;
	// route it with the rest of the backend's messages.
	tclog.SetDefault(tcLogger{c.log})
	if c.defaultReady <= 0 {
		c.defaultReady = 60 * time.Second
	}
	return &Backend{cfg: c, active: map[string]bool{}}
}

func disableRyuk() {
	// Literally "true": testcontainers parses the value and other spellings
	// have been read differently across versions.
	_ = os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
}

// Name is "docker".
func (b *Backend) Name() string { return "docker" }

// client returns the shared moby client, created on first use. It negotiates
// the API version, so a 20.10 daemon (API 1.41) works.
func (b *Backend) client() (*client.Client, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cli != nil {
		return b.cli, nil
	}
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	b.cli = cli
	return cli, nil
}

// Ping checks that a daemon answers, within ctx.
func (b *Backend) Ping(ctx context.Context) error {
	cli, err := b.client()
	if err != nil {
		return err
	}
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		return fmt.Errorf("docker daemon: %w", err)
	}
	return nil
}

func (b *Backend) setActive(runID string, on bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if on {
		b.active[runID] = true
	} else {
		delete(b.active, runID)
	}
}

func (b *Backend) isActive(runID string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.active[runID]
}

func (b *Backend) logf(format string, args ...any) {
	fmt.Fprintf(b.cfg.log, "docker: "+format+"\n", args...)
}

// tcLogger routes testcontainers' messages to the backend log.
type tcLogger struct{ w io.Writer }

func (l tcLogger) Printf(format string, v ...any) {
	fmt.Fprintf(l.w, "testcontainers: "+format+"\n", v...)
}

var _ tclog.Logger = tcLogger{}
