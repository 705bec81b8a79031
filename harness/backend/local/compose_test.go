package local

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/environment"
	"github.com/meshproof/meshproof/harness/topology"
)

// TestWholeCompose brings up the repository's docker-compose.yml (all
// services) and calls the gateway once. Opt-in: it needs bin/greeting and
// the cached stand-ins, and takes most of the machine for a while.
func TestWholeCompose(t *testing.T) {
	if os.Getenv("MESHPROOF_TEST_COMPOSE") == "" {
		t.Skip("set MESHPROOF_TEST_COMPOSE=1 to run the whole compose file")
	}
	file, err := filepath.Abs("../../../docker-compose.yml")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	topo, err := topology.Load(ctx, file)
	require.NoError(t, err)
	logDir := t.TempDir()
	e, err := New(WithStateDir(t.TempDir())).Up(ctx, topo, environment.Options{RunID: "compose", LogDir: logDir,
		Progress: func(s string, d time.Duration) { t.Logf("ready %-12s %v", s, d.Round(time.Millisecond)) }})
	require.NoError(t, err)
	pgids := pgidsOf(t, e)
	defer func() {
		start := time.Now()
		require.NoError(t, e.Down(context.Background()))
		t.Logf("down in %v", time.Since(start).Round(time.Millisecond))
		for _, pg := range pgids {
			assert.False(t, groupAlive(pg))
		}
	}()
	gw, err := e.Address("gateway", 8080)
	require.NoError(t, err)
	resp, err := http.Get("http://" + gw + "/api/greeting")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	t.Logf("gateway: %s", body)
	for _, si := range e.Services() {
		t.Logf("%-12s %-10s %s %v", si.Name, si.Kind, si.Version, si.Ports)
	}
	for n, u := range e.Usage(ctx) {
		t.Logf("usage %-12s rss=%dMB cpu=%.1fs", n, u.PeakRSSBytes>>20, u.CPUSeconds)
	}
}
