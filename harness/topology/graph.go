package topology

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
)

var knownKinds = map[Kind]bool{
	KindProcess: true, KindRabbitMQ: true, KindPostgres: true, KindMongoDB: true,
	KindLocalStack: true, KindJaeger: true, KindPrometheus: true,
}

var knownProbes = map[ProbeType]bool{
	ProbeGRPCHealth: true, ProbeHTTP: true, ProbeTCP: true, ProbeSQL: true,
	ProbeMongo: true, ProbeAMQP: true,
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate checks the harness settings of every service, so that a backend
// can trust them: a kind, a recipe where one is needed, a known probe on a
// port the service has, and depends_on naming real services. All problems
// are reported at once.
func (t *Topology) Validate() error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(t.Services)) {
		s := t.Services[name]
		fail := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("service %s: %s: %s", name, ExtensionKey, fmt.Sprintf(format, args...)))
		}
		x := s.Meshproof
		switch {
		case x.Kind == "":
			fail("kind is missing (one of %s)", kindList())
		case !knownKinds[x.Kind]:
			fail("kind %q is unknown (one of %s)", x.Kind, kindList())
		}
		if x.Kind == KindProcess && (x.Local == nil || x.Local.Program == "") {
			fail("kind process needs local.program")
		}
		switch {
		case x.Probe.Type == "":
			fail("probe.type is missing")
		case !knownProbes[x.Probe.Type]:
			fail("probe.type %q is unknown (one of grpc-health, http, tcp, sql, mongo, amqp)", x.Probe.Type)
		}
		if !s.HasPort(x.Probe.Port) {
			fail("probe.port %d is not a declared port (ports, expose or listen: %v)", x.Probe.Port, s.Ports)
		}
		if x.Metrics != nil && !s.HasPort(x.Metrics.Port) {
			fail("metrics.port %d is not a declared port (ports, expose or listen: %v)", x.Metrics.Port, s.Ports)
		}
		for _, env := range slices.Sorted(maps.Keys(x.Listen)) {
			if !envName.MatchString(env) {
				fail("listen: %q is not an environment variable name", env)
			}
			if p := x.Listen[env]; p <= 0 || p > 65535 {
				fail("listen.%s: %d is not a port", env, p)
			}
		}
		for _, d := range s.DependsOn {
			if _, ok := t.Services[d]; !ok {
				errs = append(errs, fmt.Errorf("service %s: depends_on %q: no such service", name, d))
			}
		}
	}
	return errors.Join(errs...)
}

func kindList() string {
	ks := make([]string, 0, len(knownKinds))
	for k := range knownKinds {
		ks = append(ks, string(k))
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

// HasPort reports whether p is one of the service's declared container ports.
func (s *Service) HasPort(p int) bool {
	return slices.Contains(s.Ports, p)
}

// Names lists every service, sorted.
func (t *Topology) Names() []string { return slices.Sorted(maps.Keys(t.Services)) }

// Resolver adapts an address lookup to Rewrite: it accepts only declared
// ports of known services and asks addr for the real address.
func (t *Topology) Resolver(addr func(service string, port int) (string, bool)) func(string, int) (string, bool) {
	return func(service string, port int) (string, bool) {
		s, ok := t.Services[service]
		if !ok || !s.HasPort(port) {
			return "", false
		}
		return addr(service, port)
	}
}

// Closure returns names plus everything they depend on, transitively,
// sorted. No names means the whole topology. An unknown name is an error
// that lists the services there are, since it is usually a typo.
func (t *Topology) Closure(names []string) ([]string, error) {
	if len(names) == 0 {
		return t.Names(), nil
	}
	if err := t.known(names); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var visit func(string)
	visit = func(n string) {
		if seen[n] {
			return
		}
		seen[n] = true
		for _, d := range t.Services[n].DependsOn {
			if _, ok := t.Services[d]; ok {
				visit(d)
			}
		}
	}
	for _, n := range names {
		visit(n)
	}
	return slices.Sorted(maps.Keys(seen)), nil
}

func (t *Topology) known(names []string) error {
	var unknown []string
	for _, n := range names {
		if _, ok := t.Services[n]; !ok {
			unknown = append(unknown, fmt.Sprintf("%q", n))
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("unknown service %s (services: %s)", strings.Join(unknown, ", "), strings.Join(t.Names(), ", "))
	}
	return nil
}

// Order arranges the given services (no names: all) in start layers: every
// service comes after what it depends on, and the services of one layer may
// start in parallel. Dependencies outside names are ignored, so pass a
// Closure to start a consistent set. Stop in the reverse order.
func (t *Topology) Order(names []string) ([][]string, error) {
	if len(names) == 0 {
		names = t.Names()
	}
	if err := t.known(names); err != nil {
		return nil, err
	}
	in := map[string]bool{}
	for _, n := range names {
		in[n] = true
	}
	pending := map[string]int{} // unmet dependencies within the set
	for n := range in {
		for _, d := range t.Services[n].DependsOn {
			if in[d] && d != n {
				pending[n]++
			} else if d == n {
				return nil, fmt.Errorf("service %s depends on itself", n)
			}
		}
	}
	var layers [][]string
	done := map[string]bool{}
	for len(done) < len(in) {
		var layer []string
		for n := range in {
			if !done[n] && pending[n] == 0 {
				layer = append(layer, n)
			}
		}
		if len(layer) == 0 {
			var rest []string
			for n := range in {
				if !done[n] {
					rest = append(rest, n)
				}
			}
			sort.Strings(rest)
			return nil, fmt.Errorf("depends_on cycle among %s", strings.Join(rest, ", "))
		}
		sort.Strings(layer)
		for _, n := range layer {
			done[n] = true
		}
		for m := range in {
			for _, d := range t.Services[m].DependsOn {
				for _, n := range layer {
					if d == n {
						pending[m]--
					}
				}
			}
		}
		layers = append(layers, layer)
	}
	return layers, nil
}

// OfKind lists the services of kind k, sorted.
func (t *Topology) OfKind(k Kind) []string {
	var out []string
	for _, n := range t.Names() {
		if t.Services[n].Meshproof.Kind == k {
			out = append(out, n)
		}
	}
	return out
}

// Pick chooses the service a client of kind k talks to among started (all
// services when started is nil): the named one, or else the only one of
// that kind. Several of a kind without a name is ambiguous, not a guess.
func (t *Topology) Pick(k Kind, named string, started []string) (string, error) {
	in := func(n string) bool { return started == nil || slices.Contains(started, n) }
	if named != "" {
		s, ok := t.Services[named]
		switch {
		case !ok:
			return "", fmt.Errorf("no service %q in %s", named, t.File)
		case s.Meshproof.Kind != k:
			return "", fmt.Errorf("service %s is of kind %s, want %s", named, s.Meshproof.Kind, k)
		case !in(named):
			return "", fmt.Errorf("service %s is not started (add it to environment.services)", named)
		}
		return named, nil
	}
	var found []string
	for _, n := range t.OfKind(k) {
		if in(n) {
			found = append(found, n)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no started service of kind %s (x-meshproof.kind in %s)", k, t.File)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("several services of kind %s (%s): name one with service:", k, strings.Join(found, ", "))
}

// UnderTest lists the services marked under_test, sorted: the set a
// `service: "*"` log rule covers.
func (t *Topology) UnderTest() []string {
	var out []string
	for _, n := range t.Names() {
		if t.Services[n].Meshproof.UnderTest {
			out = append(out, n)
		}
	}
	return out
}
