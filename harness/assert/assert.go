// Package assert is the contract every assertion kind keeps. A kind (load,
// traces, metrics, logs, data) lives in one package under harness/assert and
// owns all of itself: what its part of the scenario may say, the baselines it
// needs at load start, the evidence it collects and saves, and the verdicts
// it draws from that evidence. The runner knows only this contract and the
// registry (harness/assert/kinds), so adding a kind touches no other package.
//
// The phases are split so that a run and `meshproof eval` reach the same
// verdict: Validate and Judge touch no network; Begin and Collect are the only
// places a kind talks to the environment, and Collect writes everything Judge
// reads to the kind's own file in the run's artifacts directory.
package assert

import (
	"context"
	"io"
	"time"

	"github.com/meshproof/meshproof/harness/assert/expect"
	"github.com/meshproof/meshproof/harness/assert/verdict"
	"github.com/meshproof/meshproof/harness/environment"
	engine "github.com/meshproof/meshproof/harness/load"
	"github.com/meshproof/meshproof/harness/scenario"
	"github.com/meshproof/meshproof/harness/topology"
)

// Kind is one sort of assertion for one run. A registry constructor builds
// it from the scenario and returns nil when the scenario asserts nothing of
// that kind, so an unused kind costs nothing (no baselines, no scrape waits).
type Kind interface {
	// Name is the key under `assert:` in a scenario ("data"); it also names
	// the kind's evidence file (<name>.json) and its verdicts' Kind.
	Name() string
	// Validate records on c everything that can be known wrong before a
	// service starts: expressions that do not parse, services the topology
	// lacks or does not start. c's topology is nil when the compose file is
	// not at hand (eval of copied artifacts); its topology checks then pass.
	Validate(c *scenario.Check)
	// Begin takes what must be read before the load starts (counter values
	// for deltas, log offsets, store counts for attached runs).
	Begin(ctx context.Context, env Env) error
	// Collect gathers the kind's evidence after the load, in registry order
	// (so data has drained before metrics are read), and saves it under
	// w.Dir. An error means the evidence could not be gathered at all — an
	// environment failure, not a failed assertion.
	Collect(ctx context.Context, env Env, w Window) error
	// Load reads back what Collect saved in dir, for `meshproof eval`.
	Load(dir string) error
	// Judge draws one or more verdicts per assertion from the evidence. It
	// is pure: the same evidence and facts give the same verdicts.
	Judge(f Facts) []verdict.Result
}

// Env is what a kind may ask of the environment under test. Connection
// details come from here and never from the kind's own code, so the same
// kind works against a started, an attached or an external environment.
type Env interface {
	// Endpoint is the URL or DSN, credentials included, where the harness
	// reaches a service: the one started service of the given topology kind,
	// or the named one when service is not empty.
	Endpoint(kind topology.Kind, service string) (string, error)
	// Management is the same service's management API (its
	// x-meshproof.management, resolved), "" when it declares none.
	Management(kind topology.Kind, service string) (string, error)
	// Services describes every started service (its log file among them).
	Services() []environment.ServiceInfo
	// UnderTest are the services `service: "*"` log rules stand for.
	UnderTest() []string
	// Fresh is true when this run started the environment, so its stores
	// began empty. An attached or external environment holds earlier runs'
	// data: counts are then judged as changes from load start.
	Fresh() bool
}

// Window is what the run hands every kind's Collect.
type Window struct {
	// Dir is the run's artifacts directory, where evidence is saved.
	Dir string
	// Load is the load's result; nil when the scenario drives no load.
	Load *engine.Result
	// Start is when the load started; a kind's readings describe Start to
	// the moment its Collect runs.
	Start time.Time
	// Out receives progress lines (never nil).
	Out io.Writer
}

// Facts are the run-level values every Judge may use, saved once per run
// (run.json) rather than by each kind.
type Facts struct {
	// Dir is the artifacts directory evidence files are read from.
	Dir string
	// Vars are the run variables expectations name ("load.ok").
	Vars expect.Vars
	// Faults are the effect windows of the faults applied during the load,
	// which "outside faults" load thresholds leave out.
	Faults []FaultWindow
}

// FaultWindow is one fault's effect, from when it was applied until the
// environment was whole again.
type FaultWindow struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to,omitzero"`
}

// Missing is the verdict for an assertion whose evidence never arrived:
// never a pass, since a rule with no evidence proves nothing.
func Missing(kind, name, why string) verdict.Result {
	return verdict.Result{Kind: kind, Name: name, Status: verdict.Error, Detail: "no evidence: " + why}
}
