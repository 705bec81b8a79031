package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/backend/images"
	"github.com/meshproof/meshproof/harness/environment"
	"github.com/meshproof/meshproof/harness/topology"
)

// requireDocker fails (never skips) without a daemon: the lead decides where
// docker tests run, and a silent skip would hide a broken CI machine.
func requireDocker(t *testing.T) {
	t.Helper()
	out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput()
	require.NoError(t, err, "docker info: %s", out)
}

// standins builds (or finds) the offline images the tests run.
func standins(t *testing.T, names ...string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	res, err := images.Build(ctx, images.WithOnly(names...), images.WithEnvFile(""))
	require.NoError(t, err)
	refs := map[string]string{}
	for _, im := range res.Images {
		refs[im.Name] = im.Ref
	}
	return refs
}

func runID(t *testing.T) string {
	return fmt.Sprintf("test-%s-%d", strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")), time.Now().UnixNano()%1_000_000)
}

// labelled lists containers and networks carrying the run label, via the CLI
// exactly as the acceptance criteria check it.
func labelled(t *testing.T, run string) (containers, networks string) {
	t.Helper()
	c, err := exec.Command("docker", "ps", "-aq", "--filter", "label="+LabelRun+"="+run).CombinedOutput()
	require.NoError(t, err, string(c))
	n, err := exec.Command("docker", "network", "ls", "-q", "--filter", "label="+LabelRun+"="+run).CombinedOutput()
	require.NoError(t, err, string(n))
	return strings.TrimSpace(string(c)), strings.TrimSpace(string(n))
}

func tinyTopology(t *testing.T, refs map[string]string) *topology.Topology {
	sqlDir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(sqlDir, "01-schema.sql"),
		[]byte("CREATE TABLE fixture_seen (id int PRIMARY KEY);\nINSERT INTO fixture_seen VALUES (42);\n"), 0o644))
	bucketDir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(bucketDir, "buckets.txt"), []byte("test-bucket\n"), 0o644))
	return &topology.Topology{
		Project: "meshproof-test",
		Services: map[string]*topology.Service{
			"postgres": {
				Name:  "postgres",
				Image: refs["postgres"],
				Environment: map[string]string{
					"POSTGRES_USER": "meshproof", "POSTGRES_PASSWORD": "meshproof", "POSTGRES_DB": "meshproof",
				},
				Ports:   []int{5432},
				Volumes: []topology.Mount{{Source: sqlDir, Target: "/docker-entrypoint-initdb.d", ReadOnly: true}},
				Meshproof: topology.Ext{
					Kind:         topology.KindPostgres,
					Probe:        topology.Probe{Type: topology.ProbeSQL, Port: 5432, DSN: "postgres://meshproof:meshproof@postgres:5432/meshproof?sslmode=disable"},
					ReadyTimeout: 90 * time.Second,
				},
			},
			"localstack": {
				Name:      "localstack",
				Image:     refs["localstack"],
				Ports:     []int{4566},
				DependsOn: []string{"postgres"},
				Volumes:   []topology.Mount{{Source: bucketDir, Target: "/etc/localstack/init/ready.d", ReadOnly: true}},
				Meshproof: topology.Ext{
					Kind:         topology.KindLocalStack,
					Probe:        topology.Probe{Type: topology.ProbeHTTP, Port: 4566, Path: "/_localstack/health"},
					ReadyTimeout: 30 * time.Second,
				},
			},
		},
	}
}

func httpStatus(ctx context.Context, url string, timeout time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

func TestUpFaultsDown(t *testing.T) {
	requireDocker(t)
	refs := standins(t, "postgres", "localstack")
	topo := tinyTopology(t, refs)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	b := New(WithLog(testWriter{t}))
	run := runID(t)
	logDir := t.TempDir()
	var readyOrder []string
	env, err := b.Up(ctx, topo, environment.Options{
		RunID: run, LogDir: logDir,
		Progress: func(s string, _ time.Duration) { readyOrder = append(readyOrder, s) },
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = env.Down(context.Background()) })
	assert.Equal(t, []string{"postgres", "localstack"}, readyOrder, "dependencies are ready first")
	assert.Equal(t, "true", os.Getenv("TESTCONTAINERS_RYUK_DISABLED"))

	// Published on loopback only, and reachable there.
	lsAddr, err := env.Address("localstack", 4566)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(lsAddr, "127.0.0.1:"), lsAddr)
	code, err := httpStatus(ctx, "http://"+lsAddr+"/test-bucket", 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code, "bucket from the mounted fixture exists")

	dsn := env.Resolve("postgres://meshproof:meshproof@postgres:5432/meshproof?sslmode=disable")
	assert.Contains(t, dsn, "@127.0.0.1:")
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	var seen int
	require.NoError(t, conn.QueryRow(ctx, "SELECT id FROM fixture_seen").Scan(&seen))
	assert.Equal(t, 42, seen, "init script from the mounted fixture ran")
	require.NoError(t, conn.Close(ctx))

	_, err = env.Address("localstack", 9999)
	assert.Error(t, err)

	infos := env.Services()
	require.Len(t, infos, 2)
	for _, si := range infos {
		assert.Positive(t, si.Ready, si.Name)
		assert.FileExists(t, si.LogFile)
	}

	// Pause: the port still accepts but nothing answers.
	require.NoError(t, env.Pause(ctx, "localstack"))
	_, err = httpStatus(ctx, "http://"+lsAddr+"/_localstack/health", 700*time.Millisecond)
	assert.Error(t, err, "a paused service must not answer")
	require.NoError(t, env.Unpause(ctx, "localstack"))
	code, err = httpStatus(ctx, "http://"+lsAddr+"/_localstack/health", 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)

	// Restart: ports are re-resolved and the service answers at the new one.
	require.NoError(t, env.(environment.Restarter).Restart(ctx, "localstack"))
	lsAddr2, err := env.Address("localstack", 4566)
	require.NoError(t, err)
	code, err = httpStatus(ctx, "http://"+lsAddr2+"/_localstack/health", 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)

	// Kill then Start.
	require.NoError(t, env.Kill(ctx, "localstack"))
	_, err = httpStatus(ctx, "http://"+lsAddr2+"/_localstack/health", 2*time.Second)
	assert.Error(t, err, "a killed service must not answer")
	require.NoError(t, env.Start(ctx, "localstack"))
	lsAddr3, err := env.Address("localstack", 4566)
	require.NoError(t, err)
	code, err = httpStatus(ctx, "http://"+lsAddr3+"/_localstack/health", 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)

	u := env.Usage(ctx)
	assert.Positive(t, u["postgres"].PeakRSSBytes)
	assert.Positive(t, u["postgres"].CPUSeconds)

	require.NoError(t, env.Down(ctx))
	require.NoError(t, env.Down(ctx), "Down is idempotent")
	c, n := labelled(t, run)
	assert.Empty(t, c, "containers left with the run label")
	assert.Empty(t, n, "networks left with the run label")

	pgLog, err := os.ReadFile(filepath.Join(logDir, "postgres.log"))
	require.NoError(t, err)
	assert.Contains(t, string(pgLog), "init done")
	lsLog, err := os.ReadFile(filepath.Join(logDir, "localstack.log"))
	require.NoError(t, err)
	assert.NotEmpty(t, lsLog)
}

// TestUpInterruptedLeavesNothing cancels Up's context (what SIGINT does in
// the CLI) once the first service is ready: Up must fail and remove what it
// started, with the cancelled context or not.
func TestUpInterruptedLeavesNothing(t *testing.T) {
	requireDocker(t)
	refs := standins(t, "postgres", "localstack")
	topo := tinyTopology(t, refs)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	run := runID(t)
	_, err := New().Up(ctx, topo, environment.Options{
		RunID:    run,
		Progress: func(string, time.Duration) { cancel() },
	})
	require.Error(t, err)
	assert.ErrorIs(t, err, context.Canceled)
	c, n := labelled(t, run)
	assert.Empty(t, c, "containers left after an interrupted up")
	assert.Empty(t, n, "networks left after an interrupted up")
}

func TestGCRemovesDeadRunsOnly(t *testing.T) {
	requireDocker(t)
	refs := standins(t, "localstack")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := New()
	cli, err := b.client()
	require.NoError(t, err)

	// A pid that surely names no process: one that has just exited.
	p := exec.Command("true")
	require.NoError(t, p.Run())
	deadPID := p.Process.Pid
	host, _ := os.Hostname()

	create := func(run string, pid int) string {
		res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
			Config: &container.Config{Image: refs["localstack"], Labels: map[string]string{
				LabelManaged: "true", LabelRun: run, LabelPID: strconv.Itoa(pid), LabelHost: host,
			}},
			Name: containerName(run, "leftover"),
		})
		require.NoError(t, err)
		return res.ID
	}
	dead := runID(t) + "-dead"
	alive := runID(t) + "-alive"
	create(dead, deadPID)
	create(alive, os.Getpid())
	t.Cleanup(func() { _, _ = b.RemoveRun(context.Background(), alive) })

	removed, err := b.GC(ctx)
	require.NoError(t, err)
	assert.Contains(t, removed, "container "+containerName(dead, "leftover"))
	c, _ := labelled(t, dead)
	assert.Empty(t, c, "the dead run's container is gone")
	c, _ = labelled(t, alive)
	assert.NotEmpty(t, c, "a live harness's container is kept")

	removed, err = b.RemoveRun(ctx, alive)
	require.NoError(t, err)
	assert.Len(t, removed, 1)
	c, _ = labelled(t, alive)
	assert.Empty(t, c)
}

func TestPreflightNamesMissingImage(t *testing.T) {
	requireDocker(t)
	const missing = "meshproof-offline/does-not-exist:nowhere"
	topo := &topology.Topology{Services: map[string]*topology.Service{
		"ghost": {Name: "ghost", Image: missing, Ports: []int{80},
			Meshproof: topology.Ext{Kind: topology.KindProcess, Probe: topology.Probe{Type: topology.ProbeTCP, Port: 80}}},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run := runID(t)
	start := time.Now()
	_, err := New(WithPullTimeout(30*time.Second)).Up(ctx, topo, environment.Options{RunID: run})
	require.Error(t, err)
	var mi *MissingImageError
	require.True(t, errors.As(err, &mi), "want *MissingImageError, got %T: %v", err, err)
	assert.Equal(t, missing, mi.Image)
	assert.Equal(t, []string{"ghost"}, mi.Services)
	assert.Contains(t, err.Error(), missing)
	assert.Contains(t, err.Error(), images.BuildCommand)
	assert.Less(t, time.Since(start), 45*time.Second, "fails fast")
	t.Log(err)
	c, n := labelled(t, run)
	assert.Empty(t, c, "nothing starts before the pre-flight passes")
	assert.Empty(t, n)
}

func TestPrometheusConfigPath(t *testing.T) {
	assert.Equal(t, "/etc/p.yml", prometheusConfigPath([]string{"--config.file=/etc/p.yml"}))
	assert.Equal(t, "/etc/p.yml", prometheusConfigPath([]string{"--config.file", "/etc/p.yml"}))
	assert.Equal(t, "/etc/prometheus/prometheus.yml", prometheusConfigPath(nil))
}

func TestContainerPortsCoverEveryDeclaredPort(t *testing.T) {
	svc := &topology.Service{Ports: []int{8080}, Meshproof: topology.Ext{
		Listen:  map[string]int{"PORT": 50051},
		Probe:   topology.Probe{Type: topology.ProbeGRPCHealth, Port: 50051},
		Metrics: &topology.MetricsEndpoint{Port: 9464},
	}}
	assert.Equal(t, []int{8080, 9464, 50051}, containerPorts(svc))
	pm := loopbackBindings([]int{8080})
	require.Len(t, pm, 1)
	for _, b := range pm {
		assert.Equal(t, "127.0.0.1", b[0].HostIP.String())
		assert.Empty(t, b[0].HostPort, "the daemon picks a free host port")
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
