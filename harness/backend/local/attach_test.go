package local

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/environment"
	"github.com/meshproof/meshproof/harness/topology"
)

// appOnlyTopology is one process service (the test binary, see TestMain)
// with an endpoint, so attaching needs no stand-in tool.
func appOnlyTopology(t *testing.T) *topology.Topology {
	t.Helper()
	self, err := os.Executable()
	require.NoError(t, err)
	return &topology.Topology{
		Project: "attachtest", Dir: t.TempDir(), File: "docker-compose.yml",
		Services: map[string]*topology.Service{
			"app": {
				Name:        "app",
				Environment: map[string]string{"LOCAL_TEST_APP": "serve", "LISTEN": ":8080"},
				Ports:       []int{8080},
				Meshproof: topology.Ext{
					Kind:         topology.KindProcess,
					Local:        &topology.LocalRecipe{Program: self},
					Listen:       map[string]int{"LISTEN": 8080},
					Probe:        topology.Probe{Type: topology.ProbeHTTP, Port: 8080, Path: "/healthz"},
					Endpoint:     "http://app:8080/healthz",
					ReadyTimeout: 20 * time.Second,
				},
			},
		},
	}
}

func healthy(ctx context.Context, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	require.NoError(t, err)
	return st.Size()
}

func TestAttachReachesADetachedRunAndLeavesItRunning(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stateDir := t.TempDir()
	topo := appOnlyTopology(t)
	owner := New(WithStateDir(stateDir), WithGrace(2*time.Second), WithDetached())
	orig, err := owner.Up(ctx, topo, environment.Options{RunID: "attach-1", LogDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() {
		// `meshproof down` reads the state file, which knows the process
		// the attachment restarted; the owner's Down then finds it gone.
		_, derr := owner.DownRuns(context.Background(), []string{"attach-1"}, false)
		assert.NoError(t, derr)
		assert.NoError(t, orig.Down(context.Background()))
	})

	runs, err := New(WithStateDir(stateDir)).Running()
	require.NoError(t, err)
	require.Len(t, runs, 1)
	assert.Equal(t, RunInfo{RunID: "attach-1", Services: []string{"app"}, Started: runs[0].Started, Compose: runs[0].Compose, Detached: true, Ready: true}, runs[0])
	assert.False(t, runs[0].Started.IsZero())

	var att environment.Attacher = New(WithStateDir(stateDir), WithGrace(2*time.Second))
	a, err := att.Attach(ctx, topo, "attach-1", environment.AttachOptions{LogDir: t.TempDir()})
	require.NoError(t, err)
	assert.Equal(t, "attach-1", a.RunID())

	want, err := orig.Address("app", 8080)
	require.NoError(t, err)
	got, err := a.Address("app", 8080)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	ep, err := a.Endpoint("app")
	require.NoError(t, err)
	assert.Equal(t, "http://"+want+"/healthz", ep)
	assert.Equal(t, "http://"+want+"/x", a.Resolve("http://app:8080/x"))
	assert.True(t, healthy(ctx, got))

	svcs := a.Services()
	require.Len(t, svcs, 1)
	assert.Equal(t, orig.Services()[0].LogFile, svcs[0].LogFile, "the processes keep their log file")
	from := fileSize(t, svcs[0].LogFile)

	// Faults act on the run: Pause/Unpause, Stop, then Start relaunches it
	// on the same port, and its start-up line lands after `from`.
	require.NoError(t, a.Pause(ctx, "app"))
	require.NoError(t, a.Unpause(ctx, "app"))
	require.NoError(t, a.Stop(ctx, "app"))
	assert.False(t, healthy(ctx, got))
	require.NoError(t, a.Start(ctx, "app"))
	assert.True(t, healthy(ctx, got))
	data, err := os.ReadFile(svcs[0].LogFile)
	require.NoError(t, err)
	assert.Contains(t, string(data[from:]), "app listening on 127.0.0.1:"+strings.Split(got, ":")[1])
	assert.Contains(t, a.Usage(ctx), "app")

	// Down of the attachment stops nothing, and another attachment still
	// finds the restarted process through the state file.
	require.NoError(t, a.Down(ctx))
	require.NoError(t, a.Down(ctx), "idempotent")
	assert.True(t, healthy(ctx, got))
	again, err := att.Attach(ctx, topo, "attach-1", environment.AttachOptions{})
	require.NoError(t, err)
	assert.Len(t, pgidsOf(t, again.(*attached).env), 1)
	require.NoError(t, again.Down(ctx))
}

func TestAttachRefusesWhatItCannotReach(t *testing.T) {
	ctx := context.Background()
	b := New(WithStateDir(t.TempDir()))
	topo := appOnlyTopology(t)
	_, err := b.Attach(ctx, topo, "nope", environment.AttachOptions{})
	require.ErrorContains(t, err, "no local run nope")

	// A run still starting has no service records yet.
	require.NoError(t, b.writeState(&runState{RunID: "starting", HarnessPID: os.Getpid(), Detached: true}))
	_, err = b.Attach(ctx, topo, "starting", environment.AttachOptions{})
	require.ErrorContains(t, err, "still starting")

	// An owner that died without --detach took its processes with it.
	require.NoError(t, b.writeState(&runState{RunID: "orphan", HarnessPID: 1 << 22, Services: []serviceRecord{{Name: "app"}}}))
	_, err = b.Attach(ctx, topo, "orphan", environment.AttachOptions{})
	require.ErrorContains(t, err, "was not left running")
}
