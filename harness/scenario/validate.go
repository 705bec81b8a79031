package scenario

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/meshproof/meshproof/harness/expect"
	"github.com/meshproof/meshproof/harness/topology"
)

// faultActions are the actions a fault may take (see Fault.Action).
var faultActions = []string{"kill", "stop", "start", "restart", "pause", "unpause", "latency", "drop"}

// Validate checks a loaded scenario against its topology: every service it
// names exists (and is started by the selection), the load target is a
// declared port, the load model is complete, and every expectation parses.
// All problems come back together as an ErrorList, each at its line.
// Trace shapes and load thresholds are checked by their own packages
// (with Scenario.Errorf).
func Validate(sc *Scenario, topo *topology.Topology) error {
	v := &validator{sc: sc, topo: topo}
	v.environment()
	v.load()
	v.faults()
	v.metrics()
	v.logs()
	v.data()
	v.traces()
	v.judgesSomething()
	sortErrors(v.errs)
	return v.errs.Err()
}

type validator struct {
	sc      *Scenario
	topo    *topology.Topology
	errs    ErrorList
	started map[string]bool // the selection closed over depends_on
}

func (v *validator) fail(field, format string, args ...any) {
	v.errs = append(v.errs, v.sc.Errorf(field, format, args...))
}

func (v *validator) known() string { return strings.Join(v.topo.Names(), ", ") }

// service checks a service reference: it must exist and be started.
func (v *validator) service(field, name string) bool {
	if _, ok := v.topo.Services[name]; !ok {
		v.fail(field, "unknown service %q (services: %s)", name, v.known())
		return false
	}
	if v.started != nil && !v.started[name] {
		v.fail(field, "service %q is not started by environment.services", name)
		return false
	}
	return true
}

func (v *validator) environment() {
	env := v.sc.Environment
	if env.Compose == "" {
		v.fail("environment.compose", "required field is missing")
	}
	ok := true
	for i, s := range env.Services {
		if _, found := v.topo.Services[s]; !found {
			v.fail(fmt.Sprintf("environment.services[%d]", i), "unknown service %q (services: %s)", s, v.known())
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
	for _, s := range sortedKeys(env.Env) {
		v.service("environment.env."+s, s)
	}
}

func (v *validator) load() {
	l := v.sc.Load
	if l == nil {
		return
	}
	v.target(l)
	switch l.Model {
	case "closed":
		if l.Users <= 0 && len(l.Stages) == 0 {
			v.fail("load.users", "the closed model needs users > 0 (or stages)")
		}
		if l.Rate != 0 {
			v.fail("load.rate", "rate applies to the open model; the closed model uses users")
		}
	case "open":
		if l.Rate <= 0 && len(l.Stages) == 0 {
			v.fail("load.rate", "the open model needs rate > 0 (requests per second, or stages)")
		}
		if l.Users != 0 {
			v.fail("load.users", "users applies to the closed model; the open model uses rate (and max_inflight)")
		}
	case "":
		v.fail("load.model", "required field is missing (closed or open)")
	default:
		v.fail("load.model", "%q is not a load model (closed or open)", l.Model)
	}
	if l.Duration == 0 && l.Requests == 0 && len(l.Stages) == 0 {
		v.fail("load", "say how long the load runs: duration, requests or stages")
	}
	if l.Requests < 0 {
		v.fail("load.requests", "must not be negative")
	}
	for i, st := range l.Stages {
		if st.Duration <= 0 {
			v.fail(fmt.Sprintf("load.stages[%d].duration", i), "must be > 0")
		}
		if st.Target < 0 {
			v.fail(fmt.Sprintf("load.stages[%d].target", i), "must not be negative")
		}
	}
}

func (v *validator) target(l *LoadSpec) {
	const field = "load.target"
	if l.Target == "" {
		v.fail(field, "required field is missing")
		return
	}
	u, err := url.Parse(l.Target)
	if err != nil || u.Host == "" {
		v.fail(field, "%q is not a URL like http://gateway:8080/path or grpc://service-a:50051", l.Target)
		return
	}
	defaults := map[string]int{"http": 80, "https": 443}
	switch u.Scheme {
	case "http", "https":
	case "grpc":
		if l.GRPC == nil || l.GRPC.Method == "" {
			v.fail("load.grpc.method", "a grpc:// target needs the method to call (package.Service/Method)")
		}
	default:
		v.fail(field, "scheme %q is not supported (http, https or grpc)", u.Scheme)
		return
	}
	host, portStr, err := net.SplitHostPort(u.Host)
	port := defaults[u.Scheme]
	if err != nil {
		host = u.Host
	} else if port, err = strconv.Atoi(portStr); err != nil {
		v.fail(field, "port %q is not a number", portStr)
		return
	}
	if port == 0 {
		v.fail(field, "%q needs a port", l.Target)
		return
	}
	if !v.service(field, host) {
		return
	}
	if s := v.topo.Services[host]; !s.HasPort(port) {
		v.fail(field, "port %d is not a declared port of %s (declared: %v)", port, host, s.Ports)
	}
}

func (v *validator) faults() {
	for i, f := range v.sc.Faults {
		p := fmt.Sprintf("faults[%d]", i)
		if f.Service != "" {
			v.service(p+".service", f.Service)
		}
		if !contains(faultActions, f.Action) && f.Action != "" {
			v.fail(p+".action", "%q is not a fault action (%s)", f.Action, strings.Join(faultActions, ", "))
		}
		if f.At != 0 && f.After != 0 {
			v.fail(p, "give at (a time) or after (a request count), not both")
		}
		if f.Action == "latency" && f.Latency == 0 {
			v.fail(p+".latency", "action latency needs latency > 0")
		}
	}
}

func (v *validator) expectation(field, s string) {
	if _, err := expect.Parse(s); err != nil {
		v.fail(field, "%v", err)
	}
}

func (v *validator) metrics() {
	for i, m := range v.sc.Assert.Metrics {
		p := fmt.Sprintf("assert.metrics[%d]", i)
		switch {
		case m.Delta == "" && m.PromQL == "":
			v.fail(p, "give delta or promql")
		case m.Delta != "" && m.PromQL != "":
			v.fail(p, "give delta or promql, not both")
		}
		if m.Expect != "" {
			v.expectation(p+".expect", m.Expect)
		}
	}
	if len(v.sc.Assert.Metrics) > 0 {
		v.startedKind("assert.metrics", topology.KindPrometheus, "metric assertions")
	}
}

func (v *validator) logs() {
	for i, r := range v.sc.Assert.Logs {
		p := fmt.Sprintf("assert.logs[%d]", i)
		switch {
		case r.Service == "*":
			if len(v.topo.UnderTest()) == 0 {
				v.fail(p+".service", `"*" means the services under test, but none is marked under_test in x-meshproof`)
			}
		case r.Service != "":
			v.glob(p+".service", r.Service)
		}
		if r.Contains == "" && r.NotContains == "" && len(r.None) == 0 && r.Every == nil && r.Count == "" {
			v.fail(p, "the rule checks nothing: give contains, not_contains, none, every or count")
		}
		if r.Count != "" {
			v.expectation(p+".count", r.Count)
		}
		if r.Every != nil && r.Every.Has == "" {
			v.fail(p+".every.has", "required field is missing")
		}
	}
}

// glob checks a service name or pattern; a pattern that selects nothing is
// almost certainly a typo, and would make the rule pass vacuously.
func (v *validator) glob(field, pattern string) {
	if !strings.ContainsAny(pattern, "*?[") {
		v.service(field, pattern)
		return
	}
	if _, err := path.Match(pattern, ""); err != nil {
		v.fail(field, "%q is not a valid glob: %v", pattern, err)
		return
	}
	for _, n := range v.topo.Names() {
		if ok, _ := path.Match(pattern, n); ok && (v.started == nil || v.started[n]) {
			return
		}
	}
	v.fail(field, "%q matches no started service (services: %s)", pattern, v.known())
}

func (v *validator) data() {
	for i, d := range v.sc.Assert.Data {
		p := fmt.Sprintf("assert.data[%d]", i)
		var kinds []string
		var kind topology.Kind
		var want, wantField string
		if d.Mongo != nil {
			kinds, kind, want, wantField = append(kinds, "mongo"), topology.KindMongoDB, d.Count, "count"
		}
		if d.RabbitMQ != nil {
			kinds, kind, want, wantField = append(kinds, "rabbitmq"), topology.KindRabbitMQ, d.Depth, "depth"
		}
		if d.Postgres != "" {
			kinds, kind, want, wantField = append(kinds, "postgres"), topology.KindPostgres, d.Expect, "expect"
		}
		if d.S3 != nil {
			kinds, kind, want, wantField = append(kinds, "s3"), topology.KindLocalStack, d.Count, "count"
		}
		if len(kinds) != 1 {
			if len(kinds) == 0 {
				v.fail(p, "name the store to read: mongo, rabbitmq, postgres or s3")
			} else {
				v.fail(p, "one store per assertion, got %s", strings.Join(kinds, " and "))
			}
			continue
		}
		if want == "" {
			v.fail(p+"."+wantField, "%s assertions need %s (e.g. \"== load.ok\")", kinds[0], wantField)
		}
		for _, f := range []struct{ name, val string }{{"count", d.Count}, {"depth", d.Depth}, {"expect", d.Expect}} {
			if f.val == "" {
				continue
			}
			if f.name != wantField {
				v.fail(p+"."+f.name, "%s does not apply to %s assertions (use %s)", f.name, kinds[0], wantField)
				continue
			}
			v.expectation(p+"."+f.name, f.val)
		}
		v.store(p, d.Service, kind)
	}
}

// store checks that the store an assertion reads exists: the named service
// of the right kind, or exactly one service of that kind.
func (v *validator) store(p, svc string, kind topology.Kind) {
	if svc != "" {
		if v.service(p+".service", svc) && v.topo.Services[svc].Meshproof.Kind != kind {
			v.fail(p+".service", "service %q is of kind %s, not %s", svc, v.topo.Services[svc].Meshproof.Kind, kind)
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
		v.fail(p, "no started service of kind %s to read", kind)
	case 1:
	default:
		v.fail(p+".service", "several services of kind %s (%s): name one", kind, strings.Join(started, ", "))
	}
}

func (v *validator) traces() {
	for i, t := range v.sc.Assert.Traces {
		p := fmt.Sprintf("assert.traces[%d]", i)
		if t.Require != "" {
			val, unit, err := expect.ParseValue(t.Require)
			if err != nil || unit != expect.Fraction || val < 0 || val > 1 {
				v.fail(p+".require", "%q is not a share between 0%% and 100%%", t.Require)
			}
		}
		if t.Match != "" && t.Match != "exact" && t.Match != "subset" {
			v.fail(p+".match", "%q: want exact or subset", t.Match)
		}
		for j, a := range t.Attributes {
			if a.Service != "" {
				v.service(fmt.Sprintf("%s.attributes[%d].service", p, j), a.Service)
			}
		}
	}
	if len(v.sc.Assert.Traces) > 0 {
		v.startedKind("assert.traces", topology.KindJaeger, "trace assertions")
	}
}

// startedKind requires a started service of kind k, since the assertions at
// field read from it after the load.
func (v *validator) startedKind(field string, k topology.Kind, what string) {
	for _, name := range v.topo.OfKind(k) {
		if v.started == nil || v.started[name] {
			return
		}
	}
	if len(v.topo.OfKind(k)) == 0 {
		v.fail(field, "%s need a service of kind %s in the topology", what, k)
		return
	}
	v.fail(field, "%s need a service of kind %s, but environment.services starts none (add %s)", what, k, strings.Join(v.topo.OfKind(k), " or "))
}

// judgesSomething rejects a scenario with nothing to judge: it would pass
// without having proven anything.
func (v *validator) judgesSomething() {
	a := v.sc.Assert
	if len(a.Load)+len(a.Traces)+len(a.Metrics)+len(a.Logs)+len(a.Data) == 0 {
		v.fail("assert", "the scenario asserts nothing; add at least one assertion (load, traces, metrics, logs or data)")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
