package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/compare"
	"github.com/meshproof/meshproof/harness/report"
	"github.com/meshproof/meshproof/harness/run"
)

// TestCompare runs a short open-model load twice and once more with 50 ms
// on the link to service-b, then compares them with the CLI: two normal
// runs are no regression (exit 0); the slow one is (exit 1), on p(50) and
// on service-a, whose spans now wait for service-b, while service-b's own
// spans stay within their limit.
func TestCompare(t *testing.T) {
	bin := meshproofBinary(t)
	out := t.TempDir()
	if dir := os.Getenv("MESHPROOF_ARTIFACTS"); dir != "" {
		out = dir
	}
	backend := backends(t)[0]
	runDir := func(file string) string {
		rep, err := run.Run(t.Context(), run.Options{Scenario: file, Backend: backend, OutDir: out, Out: testWriter{t}})
		require.NoError(t, err, "%s did not reach a verdict", file)
		require.True(t, rep.Passed(), "%s must pass on its own", file)
		return rep.Dir
	}
	base := runDir("testdata/compare-base.yaml")
	again := runDir("testdata/compare-base.yaml")
	slow := runDir("testdata/compare-slow.yaml")
	// A latency step that silently did nothing would make the regression
	// subtest fail for the wrong reason; make sure the delay was in place.
	slowRun, err := report.ReadArtifacts(slow)
	require.NoError(t, err)
	require.Len(t, slowRun.Faults, 1, "the slow run must record its latency window")
	require.Equal(t, "latency", slowRun.Faults[0].Action)

	t.Run("same code is no regression", func(t *testing.T) {
		res, code, text := compareCLI(t, bin, base, again)
		assert.Equal(t, 0, code, "%s", text)
		assert.False(t, res.Regression, "%s", text)
	})
	t.Run("50ms on a link is a regression naming the service", func(t *testing.T) {
		res, code, text := compareCLI(t, bin, base, slow)
		assert.Equal(t, 1, code, "%s", text)
		require.True(t, res.Regression, "%s", text)
		failed := map[string]bool{}
		for _, c := range res.Checks {
			failed[c.Threshold] = c.Regression
		}
		require.Contains(t, failed, "service-b p(50) regression <= 30ms", "the check that must stay green was judged")
		assert.True(t, failed["p(50) regression <= 30ms"], "%s", text)
		assert.True(t, failed["service-a p(50) regression <= 30ms"], "service-a waits for service-b: %s", text)
		assert.False(t, failed["service-b p(50) regression <= 30ms"], "the delay is on the link, not in service-b's own span: %s", text)
	})
	t.Run("bad input is exit 2", func(t *testing.T) {
		_, code, _ := compareCLI(t, bin, base, t.TempDir())
		assert.Equal(t, 2, code)
	})
}

// compareCLI runs `meshproof compare` twice, for the table (logged, and
// returned for messages) and the JSON result.
func compareCLI(t *testing.T, bin, base, newDir string) (*compare.Result, int, string) {
	t.Helper()
	table, code := runCLI(t, bin, "compare", base, newDir)
	t.Logf("meshproof compare %s %s → exit %d\n%s", base, newDir, code, table)
	js, jcode := runCLI(t, bin, "compare", "--format", "json", base, newDir)
	require.Equal(t, code, jcode, "the format must not change the verdict")
	var res compare.Result
	if code != 2 {
		require.NoError(t, json.Unmarshal([]byte(js), &res), js)
	}
	return &res, code, table
}

func runCLI(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		return out.String(), ee.ExitCode()
	}
	require.NoError(t, err)
	return out.String(), 0
}
