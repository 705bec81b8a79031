// Package e2e runs every scenario in scenarios/ end to end, each assertion a
// subtest: the CI gate on pull requests. MESHPROOF_BACKEND picks the backends:
// local, docker, both, or auto (both where a Docker daemon answers, else local).
package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/run"
	"github.com/meshproof/meshproof/harness/verdict"
)

func backends(t *testing.T) []string {
	switch b := os.Getenv("MESHPROOF_BACKEND"); b {
	case "", "auto":
		if run.DockerAvailable(context.Background()) {
			return []string{"docker", "local"}
		}
		return []string{"local"}
	case "both":
		return []string{"docker", "local"}
	case "docker", "local":
		return []string{b}
	default:
		t.Fatalf("MESHPROOF_BACKEND=%q: want local, docker, both or auto", b)
		return nil
	}
}

func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("../scenarios/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files, "no scenarios found")
	out := t.TempDir()
	if dir := os.Getenv("MESHPROOF_ARTIFACTS"); dir != "" {
		out = dir
	}
	for _, backend := range backends(t) {
		t.Run(backend, func(t *testing.T) {
			for _, f := range files {
				name := strings.TrimSuffix(filepath.Base(f), ".yaml")
				t.Run(name, func(t *testing.T) {
					rep, err := run.Run(t.Context(), run.Options{Scenario: f, Backend: backend, OutDir: out, Out: testWriter{t}})
					require.NoError(t, err, "scenario %s did not reach a verdict", name)
					require.NotEmpty(t, rep.Results, "scenario %s judged nothing", name)
					for _, r := range rep.Results {
						t.Run(r.Kind+"/"+r.Name, func(t *testing.T) {
							assert.Equal(t, verdict.Pass, r.Status, "expected %s, measured %s\n%s", r.Expected, r.Measured, r.Detail)
						})
					}
					t.Logf("artifacts: %s", rep.Dir)
					if check, ok := afterRun[name]; ok {
						t.Run("re-evaluated", func(t *testing.T) { check(t, rep) })
					}
				})
			}
		})
	}
}

// testWriter sends the run's progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
