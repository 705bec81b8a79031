package docker

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/environment"
	"github.com/meshproof/meshproof/harness/topology"
)

// skipWithoutDaemon skips only when no daemon answers: attaching needs a
// run to attach to, and there is none to start without Docker.
func skipWithoutDaemon(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := New().Ping(ctx); err != nil {
		t.Skipf("no Docker daemon answers, so there is no run to attach to: %v", err)
	}
}

const attachDSN = "postgres://meshproof:meshproof@postgres:5432/meshproof?sslmode=disable"

func postgresOnly(t *testing.T) *topology.Topology {
	topo := tinyTopology(t, standins(t, "postgres"))
	delete(topo.Services, "localstack")
	topo.Services["postgres"].Meshproof.Endpoint = attachDSN
	return topo
}

// eventually polls cond for up to d.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return cond()
}

func TestAttachFollowsADetachedRunFromNow(t *testing.T) {
	skipWithoutDaemon(t)
	topo := postgresOnly(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	run := runID(t)
	owner := New(WithLog(testWriter{t}), WithDetached())
	orig, err := owner.Up(ctx, topo, environment.Options{RunID: run, LogDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), time.Minute)
		defer dcancel()
		assert.NoError(t, orig.Down(dctx))
	})

	b := New(WithLog(testWriter{t}))
	runs, err := b.Runs(ctx)
	require.NoError(t, err)
	var mine []RunInfo
	for _, r := range runs {
		if r.RunID == run {
			mine = append(mine, r)
		}
	}
	require.Len(t, mine, 1)
	assert.Equal(t, []string{"postgres"}, mine[0].Services)
	assert.True(t, mine[0].Detached)
	assert.Equal(t, 1, mine[0].Running)

	logDir := filepath.Join(t.TempDir(), "attached")
	a, err := b.Attach(ctx, topo, run, environment.AttachOptions{LogDir: logDir})
	require.NoError(t, err)
	want, err := orig.Address("postgres", 5432)
	require.NoError(t, err)
	got, err := a.Address("postgres", 5432)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	ep, err := a.Endpoint("postgres")
	require.NoError(t, err)
	assert.Equal(t, strings.Replace(attachDSN, "postgres:5432", want, 1), ep)
	logFile := filepath.Join(logDir, "postgres.log")
	require.Equal(t, logFile, a.Services()[0].LogFile)

	// A failed login makes the server log a line now; only that reaches
	// the attachment's file, not the start-up lines of the earlier run.
	bad := strings.Replace(ep, "meshproof:meshproof@", "meshproof:wrong@", 1)
	if c, err := pgx.Connect(ctx, bad); err == nil {
		_ = c.Close(ctx)
		t.Fatal("a wrong password was accepted")
	}
	assert.True(t, eventually(10*time.Second, func() bool {
		data, _ := os.ReadFile(logFile)
		return strings.Contains(string(data), "password authentication failed")
	}), "the failed login is in %s", logFile)
	data, err := os.ReadFile(logFile)
	require.NoError(t, err)
	assert.NotContains(t, string(data), "database system is ready to accept connections", "lines from before Attach")

	// Faults act on the run's container; Restart re-reads the ports.
	require.Implements(t, (*environment.Restarter)(nil), a)
	require.NoError(t, a.(environment.Restarter).Restart(ctx, "postgres"))
	after, err := a.Address("postgres", 5432)
	require.NoError(t, err)
	ep, err = a.Endpoint("postgres")
	require.NoError(t, err)
	assert.Contains(t, ep, after)
	c, err := pgx.Connect(ctx, ep)
	require.NoError(t, err)
	require.NoError(t, c.Close(ctx))
	assert.Contains(t, a.Usage(ctx), "postgres")

	// Down of the attachment leaves the container running.
	require.NoError(t, a.Down(ctx))
	require.NoError(t, a.Down(ctx), "idempotent")
	cli, err := b.client()
	require.NoError(t, err)
	f := client.Filters{}.Add("label", LabelRun+"="+run)
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{Filters: f})
	require.NoError(t, err)
	assert.Len(t, cs.Items, 1, "still running after the attachment's Down")
}

func TestAttachUnknownRun(t *testing.T) {
	skipWithoutDaemon(t)
	_, err := New().Attach(context.Background(), &topology.Topology{}, "no-such-run-here", environment.AttachOptions{})
	require.ErrorContains(t, err, "no containers of run no-such-run-here")
}
