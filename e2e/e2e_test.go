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

	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/run"
	"github.com/meshproof/meshproof/meshtest"
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
					// One subtest per assertion, as any Go test of a
					// scenario gets them (package meshtest).
					rep := meshtest.RunScenario(t, f, meshtest.Backend(backend), meshtest.OutDir(out), meshtest.Output(testWriter{t}))
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
