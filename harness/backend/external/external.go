// Package external describes a deployment meshproof did not start — a
// staging mesh, a colleague's cluster — from an endpoints file that maps
// each compose service a scenario touches to where it runs:
//
//	# endpoints for staging; secrets come from the environment, never this file
//	services:
//	  gateway:  { ports: { 8080: "staging-gw.internal:443" } }   # container port -> host:port
//	  postgres: { endpoint: "postgres://${PGUSER}:${PGPASSWORD}@db.internal:5432/greetings" }
//	  jaeger:   { endpoint: "http://jaeger.internal:16686" }
//	toxiproxy: "http://127.0.0.1:8474"   # optional: latency/drop faults through this API
//
// The scenario's load, assertions and compose references then resolve to
// those places as they would to a run's ports. meshproof has no control of
// such services: Stop, Start, Kill, Pause and Unpause fail with a reason,
// and Down leaves everything as it was.
//
// The file is decoded strictly, every error naming file:line:column and
// the field; credentials must be ${VAR} references, never literals, and
// every referenced variable must be set when the file is loaded.
package external

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/meshproof/meshproof/harness/environment"
	"github.com/meshproof/meshproof/harness/topology"
)

// fileSpec is a decoded endpoints file.
type fileSpec struct {
	services  map[string]*serviceSpec
	toxiproxy string // as written, ${VAR}s expanded
}

// serviceSpec is one mapped service.
type serviceSpec struct {
	ports    map[int]string // container port -> host:port
	endpoint string         // URL or DSN with ${VAR}s unexpanded
}

// Option configures Load.
type Option func(*config)

type config struct {
	lookup func(string) (string, bool)
}

// WithLookupEnv replaces os.LookupEnv as the source of ${VAR} values
// (tests, or a caller that keeps secrets elsewhere).
func WithLookupEnv(f func(string) (string, bool)) Option {
	return func(c *config) { c.lookup = f }
}

// Load reads the endpoints file and returns the environment it describes.
// The topology is the scenario's compose file: it names the services and
// ports a mapping may use and the x-meshproof endpoints a service without
// an endpoint of its own falls back to.
func Load(file string, topo *topology.Topology, opts ...Option) (environment.Environment, error) {
	if topo == nil {
		return nil, fmt.Errorf("%s: no topology to map the services of", file)
	}
	c := config{lookup: os.LookupEnv}
	for _, o := range opts {
		o(&c)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("endpoints file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	f := &fileSpec{services: map[string]*serviceSpec{}}
	d := &decoder{file: file, topo: topo, lookup: c.lookup}
	if err := d.decode(&doc, f); err != nil {
		return nil, err
	}
	e := &env{file: file, topo: topo, spec: f, lookup: c.lookup}
	e.runID = "external-" + strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	if f.toxiproxy != "" {
		return &withProxy{e}, nil
	}
	return e, nil
}

// env is an external deployment.
type env struct {
	file   string
	runID  string
	topo   *topology.Topology
	spec   *fileSpec
	lookup func(string) (string, bool)
}

var _ environment.Environment = (*env)(nil)

// withProxy is an external deployment whose file names a toxiproxy API, so
// latency and drop faults drive links through it.
type withProxy struct{ *env }

var _ environment.ToxiproxyAPI = (*withProxy)(nil)

// ToxiproxyAPI is the API address the file names.
func (w *withProxy) ToxiproxyAPI() string { return w.spec.toxiproxy }

// RunID names the deployment after its endpoints file.
func (e *env) RunID() string { return e.runID }

// Address answers from the service's ports mapping, else from the
// host:port of its endpoint when port is the service's probe port or the
// port its compose x-meshproof.endpoint names.
func (e *env) Address(service string, port int) (string, error) {
	s, ok := e.spec.services[service]
	if !ok {
		return "", fmt.Errorf("service %s is not mapped in %s", service, e.file)
	}
	if a, ok := s.ports[port]; ok {
		return a, nil
	}
	if a, ok := e.endpointAddr(service, s); ok && e.endpointPort(service, port) {
		return a, nil
	}
	return "", fmt.Errorf("%s maps no port %d of %s", e.file, port, service)
}

// endpointAddr is the host:port of the service's endpoint in the file.
func (e *env) endpointAddr(service string, s *serviceSpec) (string, bool) {
	if s.endpoint == "" {
		return "", false
	}
	v, err := expand(s.endpoint, e.lookup)
	if err != nil {
		return "", false
	}
	return hostPortOf(v)
}

// endpointPort reports whether port is the one a client of the service
// uses: its probe port or the port of its compose x-meshproof.endpoint.
func (e *env) endpointPort(service string, port int) bool {
	svc := e.topo.Services[service]
	if svc == nil {
		return false
	}
	if svc.Meshproof.Probe.Port == port {
		return true
	}
	if hp, ok := hostPortOf(svc.Meshproof.Endpoint); ok {
		_, p, _ := strings.Cut(hp, ":")
		return p == strconv.Itoa(port)
	}
	return false
}

// hostPortOf finds host:port in a URL (after any userinfo) or a key=value
// DSN (host= and port=).
func hostPortOf(s string) (string, bool) {
	if _, rest, ok := strings.Cut(s, "://"); ok {
		if j := strings.IndexAny(rest, "/?#"); j >= 0 {
			rest = rest[:j]
		}
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			rest = rest[at+1:]
		}
		return rest, checkHostPort(rest) == nil
	}
	var host, port string
	for kv := range strings.FieldsSeq(s) {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "host":
			host = strings.Trim(v, "'")
		case "port":
			port = strings.Trim(v, "'")
		}
	}
	hp := host + ":" + port
	return hp, host != "" && checkHostPort(hp) == nil
}

// Resolve rewrites references to mapped services' declared ports.
func (e *env) Resolve(s string) string {
	return topology.Rewrite(s, e.topo.Resolver(func(service string, port int) (string, bool) {
		a, err := e.Address(service, port)
		return a, err == nil
	}))
}

// Endpoint is the file's endpoint for the service with ${VAR}s expanded
// now, else its compose x-meshproof.endpoint resolved through the ports.
func (e *env) Endpoint(service string) (string, error) {
	s, ok := e.spec.services[service]
	if !ok {
		return "", fmt.Errorf("service %s is not mapped in %s", service, e.file)
	}
	if s.endpoint == "" {
		return environment.Endpoint(e.topo, service, e.Resolve)
	}
	v, err := expand(s.endpoint, e.lookup)
	if err != nil {
		return "", fmt.Errorf("endpoint of %s in %s: %w", service, e.file, err)
	}
	return v, nil
}

// Services lists the mapped services; their logs are not meshproof's to
// read, so LogFile is empty.
func (e *env) Services() []environment.ServiceInfo {
	names := make([]string, 0, len(e.spec.services))
	for n := range e.spec.services {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]environment.ServiceInfo, 0, len(names))
	for _, n := range names {
		s := e.spec.services[n]
		info := environment.ServiceInfo{Name: n, Runs: "external (" + e.file + ")", Ports: map[int]string{}}
		if svc := e.topo.Services[n]; svc != nil {
			info.Kind = string(svc.Meshproof.Kind)
		}
		maps.Copy(info.Ports, s.ports)
		if a, ok := e.endpointAddr(n, s); ok {
			if svc := e.topo.Services[n]; svc != nil && svc.Meshproof.Probe.Port > 0 {
				if _, set := info.Ports[svc.Meshproof.Probe.Port]; !set {
					info.Ports[svc.Meshproof.Probe.Port] = a
				}
			}
		}
		out = append(out, info)
	}
	return out
}

// Usage is empty: the processes are out of reach.
func (e *env) Usage(context.Context) map[string]environment.Usage {
	return map[string]environment.Usage{}
}

func (e *env) noControl(service string) error {
	return fmt.Errorf("the external environment gives meshproof no control of %s: faults need a backend it started, or --attach", service)
}

// Stop fails: meshproof did not start the service.
func (e *env) Stop(_ context.Context, service string) error { return e.noControl(service) }

// Start fails: meshproof did not start the service.
func (e *env) Start(_ context.Context, service string) error { return e.noControl(service) }

// Kill fails: meshproof did not start the service.
func (e *env) Kill(_ context.Context, service string) error { return e.noControl(service) }

// Pause fails: meshproof did not start the service.
func (e *env) Pause(_ context.Context, service string) error { return e.noControl(service) }

// Unpause fails: meshproof did not start the service.
func (e *env) Unpause(_ context.Context, service string) error { return e.noControl(service) }

// Down does nothing: the deployment is not meshproof's to stop.
func (e *env) Down(context.Context) error { return nil }
