package run

import (
	"fmt"
	"io"
	"time"

	"github.com/meshproof/meshproof/harness/assert"
	"github.com/meshproof/meshproof/harness/assert/expect"
	"github.com/meshproof/meshproof/harness/environment"
	"github.com/meshproof/meshproof/harness/faults"
	"github.com/meshproof/meshproof/harness/load"
	"github.com/meshproof/meshproof/harness/report"
	"github.com/meshproof/meshproof/harness/topology"
)

// factsFile holds the run-level facts; each kind saves its own evidence.
const factsFile = "run.json"

// Facts are what a run learnt that belongs to no one assertion kind, saved
// so that `meshproof eval` judges with the same variables and fault windows.
type Facts struct {
	// Vars are the run variables (load.ok, ...) measured by the load.
	Vars expect.Vars `json:"vars"`
	// Timeline holds the faults applied during the load, relative to its start.
	Timeline []report.Event `json:"timeline,omitempty"`
	// Faults is the faults' own record, whose effect windows "outside
	// faults" thresholds leave out.
	Faults faults.Timeline `json:"faults,omitempty"`
	// Collected is how long collecting every kind's evidence took after
	// the load: the drain and every read after it.
	Collected time.Duration `json:"collected_ns"`
}

func (f *Facts) save(dir string) error {
	if err := assert.SaveJSON(dir, factsFile, f); err != nil {
		return envErr("save evidence: %w", err)
	}
	return nil
}

func loadFacts(dir string) (*Facts, error) {
	f := &Facts{}
	ok, err := assert.LoadJSON(dir, factsFile, f)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%s is not a meshproof run directory (no %s)", dir, factsFile)
	}
	return f, nil
}

// assertFacts is what every kind's Judge gets.
func (f *Facts) assertFacts(dir string) assert.Facts {
	af := assert.Facts{Dir: dir, Vars: f.Vars}
	for _, w := range f.Faults.Windows() {
		af.Faults = append(af.Faults, assert.FaultWindow{From: w.From, To: w.To})
	}
	return af
}

// assertEnv is the environment as the assertion kinds see it: endpoints by
// topology kind, among the services this run started.
type assertEnv struct {
	env   environment.Environment
	p     *Prepared
	fresh bool
}

func (a *assertEnv) Fresh() bool { return a.fresh }

func (a *assertEnv) Endpoint(kind topology.Kind, service string) (string, error) {
	name, err := a.p.Topology.Pick(kind, service, a.p.Services)
	if err != nil {
		return "", err
	}
	return a.env.Endpoint(name)
}

func (a *assertEnv) Management(kind topology.Kind, service string) (string, error) {
	name, err := a.p.Topology.Pick(kind, service, a.p.Services)
	if err != nil {
		return "", err
	}
	return environment.Management(a.env, a.p.Topology, name), nil
}

func (a *assertEnv) Services() []environment.ServiceInfo { return a.env.Services() }

func (a *assertEnv) UnderTest() []string {
	var out []string
	for _, s := range a.p.Services {
		if svc, ok := a.p.Topology.Services[s]; ok && svc.Meshproof.UnderTest {
			out = append(out, s)
		}
	}
	return out
}

func assertWindow(dir string, res *load.Result, out io.Writer) assert.Window {
	w := assert.Window{Dir: dir, Load: res, Out: out, Start: time.Now()}
	if res != nil {
		w.Start = res.Start
	}
	return w
}
