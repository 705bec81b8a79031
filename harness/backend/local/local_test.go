package local

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/environment"
	"github.com/meshproof/meshproof/harness/topology"
)

// smallTopology is a localstack stand-in and a process service that points
// at it in URL, DSN and argument form.
func smallTopology(t *testing.T, appMode string) *topology.Topology {
	t.Helper()
	self, err := os.Executable()
	require.NoError(t, err)
	dir, err := filepath.Abs("testdata")
	require.NoError(t, err)
	return &topology.Topology{
		Project: "localtest",
		Dir:     dir,
		Services: map[string]*topology.Service{
			"s3": {
				Name:  "s3",
				Ports: []int{4566},
				Meshproof: topology.Ext{
					Kind:     topology.KindLocalStack,
					Probe:    topology.Probe{Type: topology.ProbeHTTP, Port: 4566, Path: "/_localstack/health"},
					Fixtures: "localstack",
				},
			},
			"app": {
				Name:    "app",
				Command: []string{"serve", "--peer", "s3:4566", "--keep", "other:4566"},
				Environment: map[string]string{
					"LOCAL_TEST_APP": appMode,
					"LISTEN":         ":8080",
					"BARE_PORT":      "9464",
					"S3_URL":         "http://s3:4566/bucket",
					"DSN":            "host=s3 port=4566 dbname=x",
					"UNKNOWN":        "nowhere:4566",
				},
				Ports:     []int{8080, 9464},
				DependsOn: []string{"s3"},
				Meshproof: topology.Ext{
					Kind:         topology.KindProcess,
					Local:        &topology.LocalRecipe{Program: self},
					Listen:       map[string]int{"LISTEN": 8080, "BARE_PORT": 9464},
					Probe:        topology.Probe{Type: topology.ProbeHTTP, Port: 8080, Path: "/healthz"},
					Metrics:      &topology.MetricsEndpoint{Port: 8080, Path: "/metrics"},
					ReadyTimeout: 20 * time.Second,
				},
			},
		},
	}
}

func newTestBackend(t *testing.T) *Backend {
	return New(WithStateDir(t.TempDir()), WithGrace(2*time.Second))
}

func getJSON(t *testing.T, url string, into any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	if into != nil {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(into))
	}
}

func pgidsOf(t *testing.T, e environment.Environment) []int {
	t.Helper()
	le := e.(*env)
	le.mu.Lock()
	defer le.mu.Unlock()
	var out []int
	for _, s := range le.svcs {
		for _, p := range s.procs {
			out = append(out, p.pid)
		}
	}
	return out
}

func TestUpRewritesAndDownLeavesNothing(t *testing.T) {
	b := newTestBackend(t)
	topo := smallTopology(t, "serve")
	logDir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var ready []string
	e, err := b.Up(ctx, topo, environment.Options{
		RunID: "t1", LogDir: logDir,
		Env:      map[string]map[string]string{"app": {"EXTRA": "http://s3:4566"}},
		Progress: func(s string, _ time.Duration) { ready = append(ready, s) },
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"s3", "app"}, ready, "dependency order")

	s3, err := e.Address("s3", 4566)
	require.NoError(t, err)
	app, err := e.Address("app", 8080)
	require.NoError(t, err)
	metrics, err := e.Address("app", 9464)
	require.NoError(t, err)
	_, err = e.Address("app", 1234)
	assert.Error(t, err)
	assert.Equal(t, "http://"+s3+"/x", e.Resolve("http://s3:4566/x"))

	var got struct {
		Env  map[string]string `json:"env"`
		Args []string          `json:"args"`
	}
	getJSON(t, "http://"+app+"/env", &got)
	assert.Equal(t, app, got.Env["LISTEN"], `":8080" becomes 127.0.0.1:P`)
	assert.Equal(t, strings.TrimPrefix(metrics, "127.0.0.1:"), got.Env["BARE_PORT"], `"9464" stays a bare port`)
	assert.Equal(t, "http://"+s3+"/bucket", got.Env["S3_URL"])
	assert.Equal(t, "http://"+s3, got.Env["EXTRA"], "scenario overrides are rewritten too")
	host, port, _ := strings.Cut(s3, ":")
	assert.Equal(t, "host="+host+" port="+port+" dbname=x", got.Env["DSN"])
	assert.Equal(t, "nowhere:4566", got.Env["UNKNOWN"], "unknown hosts are left alone")
	assert.Equal(t, []string{"serve", "--peer", s3, "--keep", "other:4566"}, got.Args)
	assert.NotContains(t, got.Env, "HOME", "the harness environment does not leak in")

	// The stand-in created the fixture bucket.
	getJSON(t, "http://"+s3+"/test-bucket", nil)

	infos := e.Services()
	require.Len(t, infos, 2)
	assert.Equal(t, "app", infos[0].Name)
	assert.Equal(t, filepath.Join(logDir, "app.log"), infos[0].LogFile)
	assert.Equal(t, app, infos[0].Ports[8080])
	assert.Positive(t, infos[0].Ready)
	logData, err := os.ReadFile(infos[0].LogFile)
	require.NoError(t, err)
	assert.Contains(t, string(logData), "app listening on")

	use := e.Usage(ctx)
	assert.Positive(t, use["app"].PeakRSSBytes)
	assert.Positive(t, use["s3"].PeakRSSBytes)

	pgids := pgidsOf(t, e)
	require.Len(t, pgids, 2)
	runDir := e.(*env).runDir
	require.NoError(t, e.Down(ctx))
	for _, pg := range pgids {
		assert.False(t, groupAlive(pg), "group %d is gone", pg)
	}
	assert.NoDirExists(t, runDir)
	assert.NoFileExists(t, b.statePath("t1"))
	assert.NoError(t, e.Down(ctx), "Down is idempotent")
}

func TestFaultPrimitives(t *testing.T) {
	b := newTestBackend(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e, err := b.Up(ctx, smallTopology(t, "serve"), environment.Options{RunID: "t2"})
	require.NoError(t, err)
	defer e.Down(context.Background())
	app, err := e.Address("app", 8080)
	require.NoError(t, err)

	require.NoError(t, e.Kill(ctx, "app"))
	_, err = http.Get("http://" + app + "/healthz")
	assert.Error(t, err, "killed")
	require.NoError(t, e.Start(ctx, "app"))
	getJSON(t, "http://"+app+"/env", nil) // same address after restart

	require.NoError(t, e.Pause(ctx, "app"))
	pg := pgidsOf(t, e)
	require.NotEmpty(t, pg)
	require.NoError(t, e.Unpause(ctx, "app"))
	require.NoError(t, e.Stop(ctx, "app"))
	assert.Error(t, e.Pause(ctx, "app"), "not running")
}

func TestUpFailsFastWhenProcessExits(t *testing.T) {
	b := newTestBackend(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	_, err := b.Up(ctx, smallTopology(t, "exit"), environment.Options{RunID: "t3", LogDir: t.TempDir()})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "process exited")
	assert.Contains(t, err.Error(), "exiting at once", "the error carries the log's last lines")
	assert.Less(t, time.Since(start), 15*time.Second, "no wait for the 20s ready timeout")
	states, err := b.readStates()
	require.NoError(t, err)
	assert.Empty(t, states, "a failed Up cleans up")
}

func TestUpCancelledCleansUp(t *testing.T) {
	b := newTestBackend(t)
	topo := smallTopology(t, "serve")
	// app never becomes ready: its probe looks at a path that 404s.
	topo.Services["app"].Meshproof.Probe.Path = "/never"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := b.Up(ctx, topo, environment.Options{RunID: "t4", Progress: func(s string, _ time.Duration) {
		if s == "s3" {
			time.AfterFunc(500*time.Millisecond, cancel)
		}
	}})
	require.Error(t, err)
	assert.ErrorIs(t, err, context.Canceled)
	states, _ := b.readStates()
	assert.Empty(t, states)
}

func TestGCReapsRunsOfDeadHarness(t *testing.T) {
	b := newTestBackend(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// A "harness" that has exited, and a group it left behind.
	dead, err := spawn(launch{path: "/bin/true"}, nil, true)
	require.NoError(t, err)
	<-dead.done
	orphan, err := spawn(launch{path: "/bin/sleep", args: []string{"300"}}, nil, true)
	require.NoError(t, err)
	runDir, err := os.MkdirTemp("", runDirPrefix+"gc-")
	require.NoError(t, err)
	require.NoError(t, b.writeState(&runState{
		RunID: "dead", HarnessPID: dead.pid, HarnessStart: dead.start,
		Groups: []groupState{{Service: "x", PGID: orphan.pid, Start: orphan.start}},
		Dirs:   []string{runDir},
	}))
	// A run whose owner (this process) lives is left alone.
	self, _ := procStart(os.Getpid())
	require.NoError(t, b.writeState(&runState{RunID: "alive", HarnessPID: os.Getpid(), HarnessStart: self}))

	removed, err := b.GC(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"local run dead"}, removed)
	select {
	case <-orphan.done:
	case <-time.After(5 * time.Second):
		t.Fatal("orphan group still running")
	}
	assert.False(t, groupAlive(orphan.pid))
	assert.NoDirExists(t, runDir)
	assert.NoFileExists(t, b.statePath("dead"))
	assert.FileExists(t, b.statePath("alive"))

	removed, err = b.DownRuns(ctx, []string{"alive"}, false)
	require.NoError(t, err)
	assert.Equal(t, []string{"local run alive"}, removed)
}

func TestListenValue(t *testing.T) {
	assert.Equal(t, "127.0.0.1:4000", listenValue(":50051", 4000))
	assert.Equal(t, "127.0.0.1:4000", listenValue("0.0.0.0:50051", 4000))
	assert.Equal(t, "4000", listenValue("50051", 4000))
	assert.Equal(t, "127.0.0.1:4000", listenValue("", 4000))
}
