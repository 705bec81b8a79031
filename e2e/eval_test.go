package e2e

import (
	"context"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/assert/verdict"
	"github.com/meshproof/meshproof/harness/report"
	"github.com/meshproof/meshproof/harness/run"
)

// afterRun holds checks that reuse a scenario's real artifacts, so proving
// that assertions can fail costs no second environment.
var afterRun = map[string]func(*testing.T, *report.Report){
	"fanout-load": wrongExpectationsFail,
}

// wrongExpectationsFail re-judges one real fanout-load run with deliberately
// wrong expectations, one assertion kind at a time: each must come out ✗
// with its measured value, and the CLI must exit 1.
func wrongExpectationsFail(t *testing.T, rep *report.Report) {
	cases := []struct {
		name   string
		set    string
		kind   string
		result string
	}{
		{"service-c under service-b", "assert.traces[0].shape=|\n  gateway\n    service-a\n      service-b\n        service-d\n          ~> service-f\n        service-e\n          service-g\n          service-h\n        service-c\n",
			"traces", "every request crosses the whole mesh"},
		{"metric off by one", `assert.metrics[0].expect="== load.ok + 1"`, "metrics", "F consumed one message per request"},
		{"log rule that matches", "assert.logs[0].none={level: info}", "logs", "no service logs an error"},
		{"data count off by one", `assert.data[0].count="== load.ok - 1"`, "data", "F stored every greeting in MongoDB"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := run.Eval(context.Background(), rep.Dir, "", []string{c.set})
			require.NoError(t, err)
			assert.False(t, got.Passed(), "a wrong expectation must fail the run")
			var found bool
			for _, r := range got.Results {
				if r.Kind != c.kind || r.Name != c.result {
					continue
				}
				found = true
				assert.Equal(t, verdict.Fail, r.Status, "%s: %s", r.Name, r.Detail)
				assert.NotEmpty(t, r.Measured, "a failure shows what was measured")
			}
			require.True(t, found, "no %s result named %q", c.kind, c.result)

			// The CLI says the same with its exit code.
			cmd := exec.Command(meshproofBinary(t), "eval", rep.Dir, "--set", c.set)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, "meshproof eval must fail:\n%s", out)
			assert.Equal(t, 1, exit.ExitCode(), "%s", out)
		})
	}
	// A variant that reads something the run never read is refused, not
	// judged on another reading: evidence is keyed by what it measured.
	t.Run("variant reading another collection", func(t *testing.T) {
		got, err := run.Eval(context.Background(), rep.Dir, "", []string{"assert.data[0].mongo.collection=archive"})
		require.NoError(t, err)
		assert.False(t, got.Passed())
		for _, r := range got.Results {
			if r.Kind == "data" && r.Name == "F stored every greeting in MongoDB" {
				assert.Equal(t, verdict.Error, r.Status)
				assert.Contains(t, r.Detail, "never read mongo service-f.archive")
			}
		}
	})
	// And the unchanged scenario still passes on the same evidence.
	again, err := run.Eval(context.Background(), rep.Dir, "", nil)
	require.NoError(t, err)
	assert.True(t, again.Passed(), "re-judging the saved run unchanged must pass")
}
