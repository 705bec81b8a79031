package scenario

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/meshproof/meshproof/harness/assert/expect"
	"github.com/meshproof/meshproof/harness/topology"
)

// Validate checks a loaded scenario against its topology: every service it
// names exists (and is started by the selection), the load target is a
// declared port, the load model is complete, and every expectation parses.
// All problems come back together as an ErrorList, each at its line.
// Trace shapes and load thresholds are checked by their own packages
// (with Scenario.Errorf).
func Validate(sc *Scenario, topo *topology.Topology) error {
	c := NewCheck(sc, topo)
	c.Scenario()
	return c.Err()
}

// NewCheck starts checking sc against topo. Each assertion kind adds its
// own checks through the exported methods, so all problems of a file come
// back together, sorted by line.
func NewCheck(sc *Scenario, topo *topology.Topology) *Check {
	c := &Check{sc: sc, topo: topo}
	c.environment()
	return c
}

// Scenario checks what belongs to no assertion kind: the environment, the
// load, the faults, and that the file asserts something at all.
func (c *Check) Scenario() {
	c.load()
	if c.topo != nil {
		c.faults()
	}
	c.judgesSomething()
}

// Err is every problem found, sorted by position, or nil.
func (c *Check) Err() error {
	sortErrors(c.errs)
	return c.errs.Err()
}

// File is the scenario being checked.
func (c *Check) File() *Scenario { return c.sc }

// Topology is the topology checked against.
func (c *Check) Topology() *topology.Topology { return c.topo }

// Check validates one scenario against its topology.
type Check struct {
	sc      *Scenario
	topo    *topology.Topology
	errs    ErrorList
	started map[string]bool // the selection closed over depends_on
}

// Fail records a problem at field.
func (v *Check) Fail(field, format string, args ...any) {
	v.errs = append(v.errs, v.sc.Errorf(field, format, args...))
}

// FailAt records a problem at line, column (from 1) of field's text, such
// as a service on line 3 of a trace shape (see Scenario.ErrorfAt).
func (v *Check) FailAt(field string, line, col int, format string, args ...any) {
	v.errs = append(v.errs, v.sc.ErrorfAt(field, line, col, format, args...))
}

func (v *Check) known() string { return strings.Join(v.topo.Names(), ", ") }

// Service checks a service reference: it must exist and be started.
func (v *Check) Service(field, name string) bool {
	return v.ServiceAt(field, 0, 0, name)
}

// ServiceAt is Service for a name at line, column of field's text.
func (v *Check) ServiceAt(field string, line, col int, name string) bool {
	if v.topo == nil {
		return true
	}
	if _, ok := v.topo.Services[name]; !ok {
		v.FailAt(field, line, col, "unknown service %q (services: %s)", name, v.known())
		return false
	}
	if v.started != nil && !v.started[name] {
		v.FailAt(field, line, col, "service %q is not started by environment.services", name)
		return false
	}
	return true
}

func (v *Check) environment() {
	env := v.sc.Environment
	if v.topo == nil {
		return
	}
	if env.Compose == "" {
		v.Fail("environment.compose", "required field is missing")
	}
	ok := true
	for i, s := range env.Services {
		if _, found := v.topo.Services[s]; !found {
			v.Fail(fmt.Sprintf("environment.services[%d]", i), "unknown service %q (services: %s)", s, v.known())
			ok = false
		}
	}
	if ok {
		if names, err := v.topo.Closure(env.Services); err == nil {
			v.started = map[string]bool{}
			for _, n := range names {
				v.started[n] = true
			}
		}
	}
	for _, s := range slices.Sorted(maps.Keys(env.Env)) {
		v.Service("environment.env."+s, s)
	}
}

func (v *Check) load() {
	l := v.sc.Load
	if l == nil {
		return
	}
	v.target(l)
	switch l.Model {
	case "closed":
		if l.Users <= 0 && len(l.Stages) == 0 {
			v.Fail("load.users", "the closed model needs users > 0 (or stages)")
		}
		if l.Rate != 0 {
			v.Fail("load.rate", "rate applies to the open model; the closed model uses users")
		}
	case "open":
		if l.Rate <= 0 && len(l.Stages) == 0 {
			v.Fail("load.rate", "the open model needs rate > 0 (requests per second, or stages)")
		}
		if l.Users != 0 {
			v.Fail("load.users", "users applies to the closed model; the open model uses rate (and max_inflight)")
		}
	case "":
		v.Fail("load.model", "required field is missing (closed or open)")
	default:
		v.Fail("load.model", "%q is not a load model (closed or open)", l.Model)
	}
	if l.Duration == 0 && l.Requests == 0 && len(l.Stages) == 0 {
		v.Fail("load", "say how long the load runs: duration, requests or stages")
	}
	if l.Requests < 0 {
		v.Fail("load.requests", "must not be negative")
	}
	for i, st := range l.Stages {
		if st.Duration <= 0 {
			v.Fail(fmt.Sprintf("load.stages[%d].duration", i), "must be > 0")
		}
		if st.Target < 0 {
			v.Fail(fmt.Sprintf("load.stages[%d].target", i), "must not be negative")
		}
	}
}

func (v *Check) target(l *LoadSpec) {
	const field = "load.target"
	if l.Target == "" {
		v.Fail(field, "required field is missing")
		return
	}
	u, err := url.Parse(l.Target)
	if err != nil || u.Host == "" {
		v.Fail(field, "%q is not a URL like http://gateway:8080/path or grpc://service-a:50051", l.Target)
		return
	}
	defaults := map[string]int{"http": 80, "https": 443}
	switch u.Scheme {
	case "http", "https":
	case "grpc":
		if l.GRPC == nil || l.GRPC.Method == "" {
			v.Fail("load.grpc.method", "a grpc:// target needs the method to call (package.Service/Method)")
		}
	default:
		v.Fail(field, "scheme %q is not supported (http, https or grpc)", u.Scheme)
		return
	}
	host, portStr, err := net.SplitHostPort(u.Host)
	port := defaults[u.Scheme]
	if err != nil {
		host = u.Host
	} else if port, err = strconv.Atoi(portStr); err != nil {
		v.Fail(field, "port %q is not a number", portStr)
		return
	}
	if port == 0 {
		v.Fail(field, "%q needs a port", l.Target)
		return
	}
	if !v.Service(field, host) {
		return
	}
	if s := v.topo.Services[host]; !s.HasPort(port) {
		v.Fail(field, "port %d is not a declared port of %s (declared: %v)", port, host, s.Ports)
	}
}

// faults checks only that a fault's service is started; what a fault may
// say is the faults package's to judge (harness/faults Plan).
func (v *Check) faults() {
	for i, f := range v.sc.Faults {
		if _, known := v.topo.Services[f.Service]; known && v.started != nil && !v.started[f.Service] {
			v.Fail(fmt.Sprintf("faults[%d].service", i), "service %q is not started by environment.services", f.Service)
		}
	}
}

// Expectation checks an "OP VALUE" expectation and its run variable; an
// unknown variable is reported at its column.
func (v *Check) Expectation(field, s string) {
	e, err := expect.Parse(s)
	if err != nil {
		v.Fail(field, "%v", err)
		return
	}
	if err := expect.CheckVar(e.Var); err != nil {
		v.FailAt(field, 1, strings.LastIndex(s, e.Var)+1, "%v", err)
	}
}

// Glob checks a service name or pattern; a pattern that selects nothing is
// almost certainly a typo, and would make the rule pass vacuously.
func (v *Check) Glob(field, pattern string) {
	if v.topo == nil {
		return
	}
	if !strings.ContainsAny(pattern, "*?[") {
		v.Service(field, pattern)
		return
	}
	if _, err := path.Match(pattern, ""); err != nil {
		v.Fail(field, "%q is not a valid glob: %v", pattern, err)
		return
	}
	for _, n := range v.topo.Names() {
		if ok, _ := path.Match(pattern, n); ok && (v.started == nil || v.started[n]) {
			return
		}
	}
	v.Fail(field, "%q matches no started service (services: %s)", pattern, v.known())
}

// Store checks that the store an assertion reads exists: the named service
// of the right kind, or exactly one service of that kind.
func (v *Check) Store(p, svc string, kind topology.Kind) {
	if v.topo == nil {
		return
	}
	if svc != "" {
		if v.Service(p+".service", svc) && v.topo.Services[svc].Meshproof.Kind != kind {
			v.Fail(p+".service", "service %q is of kind %s, not %s", svc, v.topo.Services[svc].Meshproof.Kind, kind)
		}
		return
	}
	var started []string
	for _, n := range v.topo.OfKind(kind) {
		if v.started == nil || v.started[n] {
			started = append(started, n)
		}
	}
	switch len(started) {
	case 0:
		v.Fail(p, "no started service of kind %s to read", kind)
	case 1:
	default:
		v.Fail(p+".service", "several services of kind %s (%s): name one", kind, strings.Join(started, ", "))
	}
}

// StartedKind requires a started service of kind k, since the assertions at
// field read from it after the load.
func (v *Check) StartedKind(field string, k topology.Kind, what string) {
	if v.topo == nil {
		return
	}
	for _, name := range v.topo.OfKind(k) {
		if v.started == nil || v.started[name] {
			return
		}
	}
	if len(v.topo.OfKind(k)) == 0 {
		v.Fail(field, "%s need a service of kind %s in the topology", what, k)
		return
	}
	v.Fail(field, "%s need a service of kind %s, but environment.services starts none (add %s)", what, k, strings.Join(v.topo.OfKind(k), " or "))
}

// judgesSomething rejects a scenario with nothing to judge: it would pass
// without having proven anything.
func (v *Check) judgesSomething() {
	a := v.sc.Assert
	if len(a.Load)+len(a.Traces)+len(a.Metrics)+len(a.Logs)+len(a.Data) == 0 {
		v.Fail("assert", "the scenario asserts nothing; add at least one assertion (load, traces, metrics, logs or data)")
	}
}
