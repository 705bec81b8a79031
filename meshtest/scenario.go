package meshtest

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/assert/verdict"
	"github.com/meshproof/meshproof/harness/report"
	"github.com/meshproof/meshproof/harness/run"
)

// ScenarioOption configures RunScenario.
type ScenarioOption func(*run.Options)

// On runs the scenario against env instead of an environment of its own:
// no start-up is paid, and env stays running. Counts are then judged as
// changes from load start; faults that need a proxy (latency, drop) are
// refused, since the proxy must be there from the start.
func On(env *Env) ScenarioOption {
	return func(o *run.Options) { o.Environment = env.Environment() }
}

// Backend picks the backend of the scenario's own environment: auto (the
// default), docker or local.
func Backend(name string) ScenarioOption { return func(o *run.Options) { o.Backend = name } }

// Sets applies --set path=value overrides to the scenario, e.g.
// "load.requests=20".
func Sets(sets ...string) ScenarioOption {
	return func(o *run.Options) { o.Sets = append(o.Sets, sets...) }
}

// OutDir is the artifacts root (report.json, junit.xml, evidence, logs);
// the default is meshtest/artifacts under the system temporary directory.
func OutDir(dir string) ScenarioOption { return func(o *run.Options) { o.OutDir = dir } }

// Output receives the run's progress lines; the default is the test log.
func Output(w io.Writer) ScenarioOption { return func(o *run.Options) { o.Out = w } }

// RunScenario runs the scenario file and makes each of its assertions a
// subtest named "KIND/NAME" that fails with the expected and measured
// values and the detail, as `go test -run` can then select one assertion.
// A scenario that cannot reach a verdict (invalid, environment down) fails
// t. The report is returned so a test can look further (re-judge it with
// run.Eval, read its artifacts in rep.Dir).
func RunScenario(t *testing.T, file string, opts ...ScenarioOption) *report.Report {
	t.Helper()
	o := run.Options{Scenario: file, OutDir: filepath.Join(os.TempDir(), "meshtest", "artifacts"), Out: logWriter{t}}
	for _, opt := range opts {
		opt(&o)
	}
	rep, err := run.Run(t.Context(), o)
	require.NoError(t, err, "scenario %s did not reach a verdict", file)
	require.NotEmpty(t, rep.Results, "scenario %s judged nothing", file)
	for _, r := range rep.Results {
		t.Run(r.Kind+"/"+r.Name, func(t *testing.T) {
			assert.Equal(t, verdict.Pass, r.Status, "expected %s, measured %s\n%s", r.Expected, r.Measured, r.Detail)
		})
	}
	t.Logf("artifacts: %s", rep.Dir)
	return rep
}
