package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/assert/verdict"
	"github.com/meshproof/meshproof/harness/run"
	"github.com/meshproof/meshproof/mesh/defects"
)

// defectImage is the local tag of the greeting image built from the defect
// binary; docker-compose.yml picks it through GREETING_IMAGE.
const defectImage = "meshproof/greeting:defects"

// shorter trims each shipped scenario the catalogue uses to the least load
// that still shows its defects, so the whole catalogue runs in minutes.
// fanout-load runs 10 users, not 20: its latency thresholds are about the
// mesh, not the defects, and a busy 2-core CI machine must not turn them red.
// downstream-kill's undo (start service-e, wait until it is ready) must end
// before the load does, or its fault verdict is red: a docker start under
// load took over 3 s here, so it gets 7.
var shorter = map[string][]string{
	"smoke":           nil,
	"fanout-load":     {"load.duration=6s", "load.warmup=2s", "load.users=10"},
	"slow-link":       {"load.duration=5s", "load.warmup=1s"},
	"downstream-kill": {"load.duration=14s", "load.warmup=1s", "faults[0].at=3s", "faults[0].for=3s"},
}

// TestDefects proves the shipped scenarios can fail: each defect of the
// catalogue (mesh/defects) runs against the defect build, and the scenario
// it names must reach a verdict in which exactly the catalogue's assertions
// are red — a defect that slips through, or one that also reddens an
// unrelated assertion, both mean a verdict that cannot be trusted.
func TestDefects(t *testing.T) {
	all := defects.Catalogue()
	out := t.TempDir()
	if dir := os.Getenv("MESHPROOF_ARTIFACTS"); dir != "" {
		out = dir
	}
	for _, backend := range defectBackends(t) {
		t.Run(backend, func(t *testing.T) {
			useDefectBuild(t, backend)
			var mu sync.Mutex
			var caught []string
			ran := 0 // -run may pick some defects; N counts those that ran
			for _, d := range all {
				t.Run(d.Name, func(t *testing.T) {
					mu.Lock()
					ran++
					mu.Unlock()
					if runDefect(t, backend, out, d) {
						mu.Lock()
						caught = append(caught, d.Name)
						mu.Unlock()
					}
				})
			}
			t.Logf("defects caught: %d of %d (%s)", len(caught), ran, strings.Join(caught, ", "))
			assert.Equal(t, ran, len(caught), "every defect that ran must be caught")
		})
	}
}

// runDefect runs d's scenario with d switched on in d's service and reports
// whether exactly the catalogue's assertions turned red.
func runDefect(t *testing.T, backend, out string, d defects.Defect) bool {
	sets, ok := shorter[d.Scenario]
	require.True(t, ok, "no shortening for scenario %s", d.Scenario)
	sets = append(append([]string(nil), sets...),
		fmt.Sprintf("environment.env.%s.%s=%s", d.Service, defects.EnvVar, d.Name))
	t.Logf("%s (%s): %s", d.Name, d.Service, d.Description)
	rep, err := run.Run(t.Context(), run.Options{
		Scenario: filepath.Join("..", "scenarios", d.Scenario+".yaml"),
		Backend:  backend, OutDir: out, Out: testWriter{t}, Sets: sets,
	})
	require.NoError(t, err, "scenario %s did not reach a verdict with %s", d.Scenario, d.Name)
	require.NotEmpty(t, rep.Results, "scenario %s judged nothing", d.Scenario)
	t.Logf("artifacts: %s", rep.Dir)

	want := map[string]bool{}
	for _, a := range d.MustFail {
		want[a.Kind+"/"+a.Name] = true
	}
	got := map[string]bool{}
	for _, r := range rep.Results {
		assert.NotEqual(t, verdict.Error, r.Status, "%s/%s could not be evaluated: %s", r.Kind, r.Name, r.Detail)
		if !r.Passed() {
			got[r.Kind+"/"+r.Name] = true
			t.Logf("red: %s/%s [%s] expected %s, measured %s", r.Kind, r.Name, r.Status, r.Expected, r.Measured)
		}
	}
	missed, extra := diff(want, got), diff(got, want)
	assert.Empty(t, missed, "%s slipped through these assertions", d.Name)
	assert.Empty(t, extra, "%s also turned these red (the catalogue must name every red assertion)", d.Name)
	return len(missed) == 0 && len(extra) == 0
}

func diff(a, b map[string]bool) []string {
	var out []string
	for k := range a {
		if !b[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// useDefectBuild points docker-compose.yml at the defect build for the
// rest of the test: GREETING_PROGRAM (local) or GREETING_IMAGE (docker).
func useDefectBuild(t *testing.T, backend string) {
	switch backend {
	case "local":
		t.Setenv("GREETING_PROGRAM", defectBinary(t, "", ""))
	case "docker":
		t.Setenv("GREETING_IMAGE", defectImageRef(t))
	}
}

// defectBinary builds cmd/greeting with -tags defects into a temp dir, so
// the test needs no prior `make` and never touches bin/.
func defectBinary(t *testing.T, goos, goarch string) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "greeting-defects")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "defects", "-trimpath", "-o", bin, "../cmd/greeting")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if goos != "" {
		cmd.Env = append(cmd.Env, "GOOS="+goos, "GOARCH="+goarch)
	}
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "build the defect binary:\n%s", b)
	return bin
}

// defectImageRef builds the greeting image from the defect binary with the
// Dockerfile's from-binary stage (FROM scratch: no registry), in a context
// holding only that binary.
func defectImageRef(t *testing.T) string {
	t.Helper()
	bin := defectBinary(t, "linux", "amd64")
	ctxDir := filepath.Dir(bin)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", "build", "--target", "from-binary",
		"--build-arg", "BINARY="+filepath.Base(bin), "-t", defectImage,
		"-f", filepath.Join("..", "compose", "greeting", "Dockerfile"), ctxDir)
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "build %s:\n%s", defectImage, b)
	return defectImage
}

// defectBackends are the backends the catalogue runs on: local by default,
// which keeps `make test` within its time budget; MESHPROOF_DEFECTS_BACKEND
// (local, docker, both, auto) widens it, as `make defects BACKEND=both` does.
func defectBackends(t *testing.T) []string {
	b := os.Getenv("MESHPROOF_DEFECTS_BACKEND")
	if b == "" {
		return []string{"local"}
	}
	t.Setenv("MESHPROOF_BACKEND", b)
	return backends(t)
}
