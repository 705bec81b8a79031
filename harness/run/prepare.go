package run

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/meshproof/meshproof/harness/assert"
	"github.com/meshproof/meshproof/harness/assert/kinds"
	"github.com/meshproof/meshproof/harness/backend/images"
	"github.com/meshproof/meshproof/harness/compare"
	"github.com/meshproof/meshproof/harness/faults"
	"github.com/meshproof/meshproof/harness/scenario"
	"github.com/meshproof/meshproof/harness/topology"
)

// Prepared is a scenario checked against its topology, ready to run.
type Prepared struct {
	Scenario *scenario.Scenario
	Topology *topology.Topology
	// Services is the selection closed over depends_on.
	Services []string
	// Kinds are the assertion kinds the scenario uses, validated, in
	// collection order.
	Kinds []assert.Kind
}

// Prepare reads, overrides and validates a scenario and its compose file.
// Every problem is an input error naming file, line and field.
func Prepare(ctx context.Context, file string, sets []string) (*Prepared, error) {
	sc, err := loadWithSets(file, sets)
	if err != nil {
		return nil, err
	}
	return prepareLoaded(ctx, sc)
}

// loadWithSets reads a scenario file and applies --set overrides to it.
func loadWithSets(file string, sets []string) (*scenario.Scenario, error) {
	sc, err := scenario.Load(file)
	if err != nil {
		return nil, &InputError{Err: err}
	}
	for _, s := range sets {
		if err := ApplySet(sc, s); err != nil {
			return nil, inputErr("%s: %w", file, err)
		}
	}
	return sc, nil
}

func prepareLoaded(ctx context.Context, sc *scenario.Scenario) (*Prepared, error) {
	composePath, err := sc.ComposePath()
	if err != nil {
		return nil, &InputError{Err: err}
	}
	topo, err := LoadTopology(ctx, composePath)
	if err != nil {
		return nil, &InputError{Err: err}
	}
	p, err := validate(sc, topo)
	if err != nil {
		return nil, err
	}
	p.Services, err = topo.Closure(sc.Environment.Services)
	if err != nil {
		return nil, &InputError{Err: fmt.Errorf("%s: environment.services: %w", sc.File, err)}
	}
	return p, nil
}

// validate checks the scenario and every assertion kind it uses against
// topo (nil: the checks that need it are skipped), all problems at once.
func validate(sc *scenario.Scenario, topo *topology.Topology) (*Prepared, error) {
	p := &Prepared{Scenario: sc, Topology: topo, Kinds: kinds.For(sc)}
	check := scenario.NewCheck(sc, topo)
	check.Scenario()
	for _, k := range p.Kinds {
		k.Validate(check)
	}
	validateFaults(check, sc, topo)
	for i, raw := range sc.Compare {
		if _, err := compare.ParseThreshold(raw); err != nil {
			check.Fail(fmt.Sprintf("compare[%d]", i), "%v", err)
		}
	}
	if err := check.Err(); err != nil {
		return nil, &InputError{Err: err}
	}
	return p, nil
}

// validateFaults records the fault plan's problems on check: the faults
// package owns what a fault may say, this only places its findings.
func validateFaults(check *scenario.Check, sc *scenario.Scenario, topo *topology.Topology) {
	plan, err := faults.NewPlan(sc.Faults)
	if err == nil && topo != nil {
		err = plan.Bind(topo)
	}
	var fes faults.FieldErrors
	switch {
	case errors.As(err, &fes):
		for _, fe := range fes {
			check.Fail(fe.Field, "%s", fe.Msg)
		}
	case err != nil:
		check.Fail("faults", "%v", err)
	}
}

// prepareOffline is Prepare for `meshproof eval`: the scenario is checked
// against its topology when the compose file can still be found (artifacts
// copied elsewhere may have lost it), but judging saved evidence needs no
// topology.
func prepareOffline(ctx context.Context, sc *scenario.Scenario) (*Prepared, error) {
	if _, err := sc.ComposePath(); err != nil {
		return validate(sc, nil)
	}
	return prepareLoaded(ctx, sc)
}

// LoadTopology reads a compose file, with the offline image names when
// `meshproof images` has written them beside it.
func LoadTopology(ctx context.Context, composePath string) (*topology.Topology, error) {
	var opts []topology.Option
	if env := filepath.Join(filepath.Dir(composePath), images.OfflineEnvFile); fileExists(env) {
		opts = append(opts, topology.WithEnvFile(env))
	}
	return topology.Load(ctx, composePath, opts...)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
