// Package faults breaks a running environment on purpose, on a schedule
// written in the scenario (the "faults:" section), and records when each
// break was in effect. The record matters as much as the break: assertions
// such as "error_rate < 1% outside faults" judge the run by those windows,
// and the report draws them on its timeline.
//
// The package talks only to an environment.Environment (kill, stop, start,
// pause, unpause) and, for latency and drop, to a Links implementation — a
// toxiproxy in front of one service port (see package faults/toxi). It never
// knows whether the services are containers or processes.
//
// Latency and drop act on one link — the consumers of one service port —
// never on the service itself, so the harness keeps measuring the service
// directly. The environment is told which ports to interpose
// (environment.Options.Interpose, from Plan.Links) before anything starts:
//
//   - the local backend calls Options.Proxy once per link, which starts an
//     in-process toxiproxy on 127.0.0.1 (package toxi), and points every
//     consumer's reference to that port at the proxy; the probes, Address
//     and Resolve stay on the real address;
//   - the docker backend cannot let containers reach the host's loopback, so
//     it runs a toxiproxy container on the run network (its API published on
//     127.0.0.1, environment.ToxiproxyAPI), with one proxy per link on a port
//     that is stable across restarts of the service behind it.
//
// The runner (harness/run) binds the plan to the topology at validation,
// starts Run beside the load with a Trigger (the load's start instant and
// its live request count, so after: steps fire on the exact request), and
// calls Restore after the load so the drain sees a whole environment. The
// Timeline it returns gives the fault windows that "outside faults"
// thresholds leave out.
package faults

import (
	"fmt"
	"strings"
	"time"

	"github.com/meshproof/meshproof/harness/scenario"
	"github.com/meshproof/meshproof/harness/topology"
)

// Actions a fault step may take (scenario.Fault.Action).
const (
	ActKill    = "kill"
	ActStop    = "stop"
	ActStart   = "start"
	ActRestart = "restart"
	ActPause   = "pause"
	ActUnpause = "unpause"
	ActLatency = "latency"
	ActDrop    = "drop"
)

// effect groups the actions whose consequences last after the step returns,
// so a later step (or the end of `for:`) knows what it ends.
type effect int

const (
	noEffect  effect = iota
	effDown          // kill, stop: ended by start or restart
	effPaused        // pause: ended by unpause
	effLink          // latency, drop: ended by healing the link
)

func effectOf(action string) effect {
	switch action {
	case ActKill, ActStop:
		return effDown
	case ActPause:
		return effPaused
	case ActLatency, ActDrop:
		return effLink
	}
	return noEffect
}

// undoOf names the action that ends an effect, as shown in the timeline.
func undoOf(e effect) string {
	switch e {
	case effDown:
		return ActStart
	case effPaused:
		return ActUnpause
	case effLink:
		return "heal"
	}
	return ""
}

// Step is one validated fault.
type Step struct {
	// Index is the position in the scenario's faults list, so messages and
	// the timeline can say faults[Index].
	Index   int
	Name    string
	Action  string
	Service string
	// Port is the service's container port whose link latency/drop act on;
	// set by Plan.Bind.
	Port int
	// At is the offset from load start; After a request count instead. Both
	// zero means at load start.
	At    time.Duration
	After int64
	// For, when set, undoes the effect that long after the step completed.
	For time.Duration
	// Latency added to the link (action latency).
	Latency time.Duration
}

// Label is how logs and the report name the step.
func (s Step) Label() string {
	l := fmt.Sprintf("faults[%d] %s %s", s.Index, s.Action, s.Service)
	if s.Name != "" {
		l += " (" + s.Name + ")"
	}
	return l
}

// Link is the "service:port" key of the link a latency/drop step acts on;
// empty for other actions.
func (s Step) Link() string {
	if effectOf(s.Action) != effLink {
		return ""
	}
	return LinkKey(s.Service, s.Port)
}

// LinkKey names the proxy in front of a service port: "service-c:50051".
// Backends, the toxiproxy wrapper and the timeline all use this one form.
func LinkKey(service string, port int) string { return fmt.Sprintf("%s:%d", service, port) }

// Plan is the validated faults of one scenario.
type Plan struct {
	Steps []Step
}

// FieldError is one problem with a fault, located by its field path
// ("faults[1].for") so the runner can turn it into a scenario error at the
// right line with Scenario.Errorf(e.Field, "%s", e.Msg).
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// FieldErrors is every problem found, so a user fixes them in one pass.
type FieldErrors []*FieldError

func (l FieldErrors) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap lets errors.As find each *FieldError.
func (l FieldErrors) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

func (l FieldErrors) err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// NewPlan validates the scenario's faults on their own (without the
// topology; see Bind for what needs it). Every problem is returned at once
// as FieldErrors.
func NewPlan(fs []scenario.Fault) (*Plan, error) {
	var errs FieldErrors
	fail := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	p := &Plan{}
	for i, f := range fs {
		path := fmt.Sprintf("faults[%d]", i)
		switch f.Action {
		case "":
			fail(path+".action", "required field is missing")
		case ActKill, ActStop, ActStart, ActRestart, ActPause, ActUnpause, ActLatency, ActDrop:
		default:
			fail(path+".action", "%q is not a fault action (kill, stop, start, restart, pause, unpause, latency, drop)", f.Action)
		}
		if f.Service == "" {
			fail(path+".service", "required field is missing")
		}
		if f.At < 0 {
			fail(path+".at", "must not be negative")
		}
		if f.After < 0 {
			fail(path+".after", "must not be negative")
		}
		if f.At != 0 && f.After != 0 {
			fail(path, "give at (a time) or after (a request count), not both")
		}
		switch {
		case f.For < 0:
			fail(path+".for", "must not be negative")
		case f.For > 0 && f.Action != "" && effectOf(f.Action) == noEffect:
			fail(path+".for", "action %s has nothing to undo; for: applies to kill, stop, pause, latency and drop", f.Action)
		}
		switch {
		case f.Action == ActLatency && f.Latency <= 0:
			fail(path+".latency", "action latency needs latency > 0")
		case f.Action != ActLatency && f.Latency != 0:
			fail(path+".latency", "only action latency takes a latency")
		}
		p.Steps = append(p.Steps, Step{
			Index: i, Name: f.Name, Action: f.Action, Service: f.Service,
			At: f.At.D(), After: int64(f.After), For: f.For.D(), Latency: f.Latency.D(),
		})
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return p, nil
}

// Bind checks the plan against the topology and picks, for each latency or
// drop step, the port whose link it degrades: the service's probe port when
// it is a declared port (the port the service is "for"), else its only
// declared port. A service with several ports and no usable probe port is
// an error at faults[i].service until the schema lets a step name its port.
func (p *Plan) Bind(topo *topology.Topology) error {
	var errs FieldErrors
	for i := range p.Steps {
		st := &p.Steps[i]
		path := fmt.Sprintf("faults[%d]", st.Index)
		svc, ok := topo.Services[st.Service]
		if !ok {
			errs = append(errs, &FieldError{Field: path + ".service", Msg: fmt.Sprintf("unknown service %q", st.Service)})
			continue
		}
		if effectOf(st.Action) != effLink || st.Port != 0 {
			continue
		}
		switch pp := svc.Meshproof.Probe.Port; {
		case pp > 0 && svc.HasPort(pp):
			st.Port = pp
		case len(svc.Ports) == 1:
			st.Port = svc.Ports[0]
		case len(svc.Ports) == 0:
			errs = append(errs, &FieldError{Field: path + ".service", Msg: fmt.Sprintf("service %s declares no port to put a proxy in front of", st.Service)})
		default:
			errs = append(errs, &FieldError{Field: path + ".service", Msg: fmt.Sprintf("service %s has several ports %v and no probe port among them: cannot tell which link to degrade", st.Service, svc.Ports)})
		}
	}
	return errs.err()
}

// Links lists the "service:port" links the plan degrades, in plan order
// without repeats. The backend must put a proxy in front of each before
// the services start (environment Options, see the package README).
func (p *Plan) Links() []string {
	seen := map[string]bool{}
	var out []string
	for _, st := range p.Steps {
		if k := st.Link(); k != "" && !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}
