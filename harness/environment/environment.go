// Package environment is the contract between the harness and its backends
// (docker, local). Everything above it — load, assertions, faults, reports —
// talks to an Environment and never to a container or a process directly, so
// a scenario runs the same on either backend.
package environment

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/meshproof/meshproof/harness/topology"
)

// Options configure one Up.
type Options struct {
	// RunID names the run; it labels containers and names the state dir.
	RunID string
	// Services to start (already closed over depends_on), in any order.
	Services []string
	// Env overrides per service (scenario environment.env), applied after
	// compose's environment and before address rewriting.
	Env map[string]map[string]string
	// LogDir receives <service>.log for every service.
	LogDir string
	// Progress, when set, is told as each service becomes ready.
	Progress func(service string, ready time.Duration)
	// Interpose lists service ports ("service-c:50051", faults.LinkKey)
	// whose consumers must reach them through a proxy, so latency and drop
	// faults act on that one link. Address and Resolve keep reaching the
	// service itself: the harness measures the service, not the proxy.
	Interpose []string
	// Proxy creates the proxy for one Interpose entry inside the harness
	// process and returns the address consumers must use instead of
	// upstream. Backends whose services can reach the harness's 127.0.0.1
	// (local) call it once per entry before any service starts; others run
	// a proxy of their own (see ToxiproxyAPI) and ignore it.
	Proxy func(ctx context.Context, service string, port int, upstream string) (string, error)
	// ProxyImage is the toxiproxy image a backend that runs its own proxy
	// uses (docker); empty means the backend's default.
	ProxyImage string
}

// Restarter is implemented by environments with a native restart (docker),
// which faults use instead of Stop then Start.
type Restarter interface {
	Restart(ctx context.Context, service string) error
}

// ToxiproxyAPI is implemented by environments that run a toxiproxy server
// of their own for Options.Interpose (docker, where in-process proxies on
// the host's loopback are out of the containers' reach): the
// 127.0.0.1:port of its HTTP API, through which faults drive the links.
type ToxiproxyAPI interface {
	ToxiproxyAPI() string
}

// Backend starts environments.
type Backend interface {
	// Name is "docker" or "local".
	Name() string
	// Up starts the services in dependency order and waits for each probe.
	// On error everything already started is stopped before returning.
	Up(ctx context.Context, topo *topology.Topology, opts Options) (Environment, error)
	// GC removes what earlier runs left behind (crashed or killed harnesses).
	GC(ctx context.Context) (removed []string, err error)
}

// Attacher is implemented by backends that can reach an environment an
// earlier process started (up --detach, run --keep), so a scenario can run
// against it without paying for another Up.
type Attacher interface {
	// Attach finds the running environment of runID. Its Down releases only
	// what Attach itself started (e.g. log followers) and leaves every
	// service running. LogDir receives <service>.log for this attachment:
	// lines written from now on must land there (or ServiceInfo.LogFile must
	// name a file that keeps growing), so log assertions see the new run.
	Attach(ctx context.Context, topo *topology.Topology, runID string, opts AttachOptions) (Environment, error)
}

// AttachOptions configure one Attach.
type AttachOptions struct {
	// LogDir receives <service>.log for the attachment (see Attacher).
	LogDir string
}

// Environment is a running set of services.
type Environment interface {
	// RunID of the run that started it.
	RunID() string
	// Address is the 127.0.0.1:port where the harness reaches the given
	// container port of a service. It may change after a restart.
	Address(service string, port int) (string, error)
	// Resolve rewrites references to services in s (URL, host:port and
	// key=value DSN forms, e.g. "http://gateway:8080/x") to Address form.
	Resolve(s string) string
	// Endpoint is the URL or DSN, credentials included, where a client
	// reaches the service now: its x-meshproof.endpoint resolved to the
	// run's addresses. The environment owns connection details, as a
	// testcontainers module owns its ConnectionString.
	Endpoint(service string) (string, error)
	// Services describes every started service.
	Services() []ServiceInfo
	// Usage samples resource use so far (peak RSS, CPU seconds) per service.
	Usage(ctx context.Context) map[string]Usage
	// Fault primitives, used by scenario faults.
	Stop(ctx context.Context, service string) error
	Start(ctx context.Context, service string) error
	Kill(ctx context.Context, service string) error
	Pause(ctx context.Context, service string) error
	Unpause(ctx context.Context, service string) error
	// Down stops everything and removes what the run created. Idempotent.
	Down(ctx context.Context) error
}

// Endpoint resolves a service's declared x-meshproof.endpoint with
// resolve (an Environment's Resolve): the one implementation both backends
// share, since both reach a service at the address Resolve gives.
func Endpoint(topo *topology.Topology, service string, resolve func(string) string) (string, error) {
	s, ok := topo.Services[service]
	if !ok {
		return "", fmt.Errorf("no service %q in %s", service, topo.File)
	}
	if s.Meshproof.Endpoint == "" {
		return "", fmt.Errorf("service %s declares no x-meshproof.endpoint in %s", service, topo.File)
	}
	return resolve(s.Meshproof.Endpoint), nil
}

// Management resolves a service's declared x-meshproof.management to the
// run's address, like Endpoint; "" when the service declares none or env
// has no address for its port (an external environment that maps only the
// client port): the caller then does without it.
func Management(env Environment, topo *topology.Topology, service string) string {
	s, ok := topo.Services[service]
	if !ok || s.Meshproof.Management == "" {
		return ""
	}
	u, err := url.Parse(s.Meshproof.Management)
	if err != nil {
		return ""
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		return ""
	}
	if _, err := env.Address(u.Hostname(), port); err != nil {
		return ""
	}
	return env.Resolve(s.Meshproof.Management)
}

// ServiceInfo is what the report shows of a service.
type ServiceInfo struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// Runs is the image (docker) or program path (local).
	Runs string `json:"runs"`
	// Version of the program or image, when known.
	Version string `json:"version,omitempty"`
	// Ready is the time from start to a passing probe.
	Ready time.Duration `json:"ready_ns"`
	// Ports maps container port to the host address.
	Ports map[int]string `json:"ports"`
	// LogFile is where its output goes.
	LogFile string `json:"log_file"`
	// LogError says why its output stopped reaching LogFile, when it did
	// (a docker log stream that failed): log rules over it prove nothing.
	LogError string `json:"log_error,omitempty"`
}

// Usage is the resource use of one service.
type Usage struct {
	PeakRSSBytes uint64  `json:"peak_rss_bytes"`
	CPUSeconds   float64 `json:"cpu_seconds"`
}
