package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/assert/verdict"
	"github.com/meshproof/meshproof/harness/run"
)

// TestAttachAndEndpoints runs scenarios against one environment that the
// local backend started and left running, as `make up` does: twice with
// --attach (repeated runs must pass, counts judged from load start), then
// through an endpoints file as if it were a deployment meshproof did not
// start. Attached runs skip the start-up a fresh run pays.
func TestAttachAndEndpoints(t *testing.T) {
	ctx := t.Context()
	out := t.TempDir()
	up, err := run.Up(ctx, run.UpOptions{Compose: "../docker-compose.yml", Backend: "local", Detach: true, OutDir: out, Out: testWriter{t}})
	require.NoError(t, err)
	t.Cleanup(func() {
		dctx, cancel := context.WithTimeout(context.Background(), run.DownTimeout)
		defer cancel()
		assert.NoError(t, up.Close(dctx))
	})

	for i := range 2 {
		t.Run(fmt.Sprintf("attach/%d", i+1), func(t *testing.T) {
			began := time.Now()
			rep, err := run.Run(t.Context(), run.Options{Scenario: "../scenarios/smoke.yaml", Attach: up.RunID, OutDir: out, Out: testWriter{t}})
			require.NoError(t, err)
			requireAllPassed(t, rep.Results)
			assert.Contains(t, rep.Backend, "attached to "+up.RunID, "the report says the run was attached")
			t.Logf("attached smoke run %d: %s", i+1, time.Since(began).Round(time.Millisecond))
		})
	}

	t.Run("endpoints", func(t *testing.T) {
		file := writeEndpoints(t, up)
		rep, err := run.Run(t.Context(), run.Options{Scenario: "testdata/smoke-external.yaml", Endpoints: file, OutDir: out, Out: testWriter{t}})
		require.NoError(t, err)
		requireAllPassed(t, rep.Results)
		assert.Contains(t, rep.Backend, "external")
	})

	t.Run("endpoints refuse faults that need control", func(t *testing.T) {
		file := writeEndpoints(t, up)
		_, err := run.Run(t.Context(), run.Options{Scenario: "../scenarios/downstream-kill.yaml", Endpoints: file, OutDir: out})
		require.Error(t, err)
		assert.Equal(t, 2, run.ExitCode(err))
		assert.Contains(t, err.Error(), "needs control of")
		// A gate reading the artifacts sees the failure too.
		for _, f := range []string{"report.json", "junit.xml"} {
			found, _ := filepath.Glob(filepath.Join(out, "downstream-kill", "*", f))
			require.Len(t, found, 1, "%s of the refused run", f)
			b, err := os.ReadFile(found[0])
			require.NoError(t, err)
			assert.Contains(t, string(b), "needs control of")
		}
	})
}

// writeEndpoints describes the running environment as an endpoints file:
// every service's published ports, the Postgres password from the
// environment, as the file format demands.
func writeEndpoints(t *testing.T, up *run.UpEnvironment) string {
	t.Helper()
	t.Setenv("E2E_PGPASSWORD", "meshproof")
	var b strings.Builder
	b.WriteString("services:\n")
	for _, s := range up.Services() {
		if s.Name == "postgres" {
			fmt.Fprintf(&b, "  postgres: { endpoint: \"postgres://meshproof:${E2E_PGPASSWORD}@%s/meshproof?sslmode=disable\" }\n", s.Ports[5432])
			continue
		}
		var ports []string
		for cp, addr := range s.Ports {
			ports = append(ports, fmt.Sprintf("%d: %q", cp, addr))
		}
		fmt.Fprintf(&b, "  %s: { ports: { %s } }\n", s.Name, strings.Join(ports, ", "))
	}
	file := filepath.Join(t.TempDir(), "endpoints.yaml")
	require.NoError(t, os.WriteFile(file, []byte(b.String()), 0o600))
	return file
}

func requireAllPassed(t *testing.T, results []verdict.Result) {
	t.Helper()
	require.NotEmpty(t, results, "the run judged nothing")
	for _, r := range results {
		assert.Equal(t, verdict.Pass, r.Status, "%s/%s: expected %s, measured %s\n%s", r.Kind, r.Name, r.Expected, r.Measured, r.Detail)
	}
}
