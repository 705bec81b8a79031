package run

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/meshproof/meshproof/harness/load/threshold"
	"github.com/meshproof/meshproof/harness/scenario"
	"github.com/meshproof/meshproof/harness/topology"
	"github.com/meshproof/meshproof/harness/traces"
)

// OfflineEnvFile is written by `meshproof images` next to the compose file;
// it names the stand-in images so interpolation picks them up.
const OfflineEnvFile = ".env.offline"

// Prepared is a scenario checked against its topology, ready to run.
type Prepared struct {
	Scenario *scenario.Scenario
	Topology *topology.Topology
	// Services is the selection closed over depends_on.
	Services []string
	// Shapes are the parsed trace shapes, by assertion index.
	Shapes []*traces.Shape
	// Thresholds are the parsed load thresholds, by index.
	Thresholds []threshold.Threshold
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
	if err := scenario.Validate(sc, topo); err != nil {
		return nil, &InputError{Err: err}
	}
	p, err := parseAssertions(sc)
	if err != nil {
		return nil, err
	}
	p.Topology = topo
	p.Services, err = topo.Closure(sc.Environment.Services)
	if err != nil {
		return nil, &InputError{Err: fmt.Errorf("%s: environment.services: %w", sc.File, err)}
	}
	return p, nil
}

// prepareOffline is Prepare for `meshproof eval`: the scenario is checked
// against its topology when the compose file can still be found (artifacts
// copied elsewhere may have lost it), but judging saved evidence needs no
// topology.
func prepareOffline(ctx context.Context, sc *scenario.Scenario) (*Prepared, error) {
	if _, err := sc.ComposePath(); err != nil {
		return parseAssertions(sc)
	}
	return prepareLoaded(ctx, sc)
}

// parseAssertions parses what other packages own inside the scenario (load
// thresholds, trace shapes), pointing errors at the scenario's line.
func parseAssertions(sc *scenario.Scenario) (*Prepared, error) {
	p := &Prepared{Scenario: sc}
	var errs []error
	for i, expr := range sc.Assert.Load {
		th, err := threshold.Parse(expr)
		if err != nil {
			errs = append(errs, sc.Errorf(fmt.Sprintf("assert.load[%d]", i), "%v", err))
			continue
		}
		p.Thresholds = append(p.Thresholds, th)
	}
	for i, ta := range sc.Assert.Traces {
		var shape *traces.Shape
		if ta.Shape != "" {
			var err error
			if shape, err = traces.ParseShape(ta.Shape); err != nil {
				errs = append(errs, sc.Errorf(fmt.Sprintf("assert.traces[%d].shape", i), "%v", err))
			}
		}
		p.Shapes = append(p.Shapes, shape)
		for j, d := range ta.Durations {
			if _, err := traces.ParseDuration(d); err != nil {
				errs = append(errs, sc.Errorf(fmt.Sprintf("assert.traces[%d].durations[%d]", i, j), "%v", err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, &InputError{Err: err}
	}
	return p, nil
}

// LoadTopology reads a compose file, with the offline image names when
// `meshproof images` has written them beside it.
func LoadTopology(ctx context.Context, composePath string) (*topology.Topology, error) {
	var opts []topology.Option
	if env := filepath.Join(filepath.Dir(composePath), OfflineEnvFile); fileExists(env) {
		opts = append(opts, topology.WithEnvFile(env))
	}
	return topology.Load(ctx, composePath, opts...)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
