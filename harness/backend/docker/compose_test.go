package docker

import (
	"context"
	"io"
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

// TestComposeFileServesBothImageSets loads the repository's compose file the
// way `docker compose config` does (compose-go), with upstream defaults and
// with offline image variables, and checks the infrastructure healthchecks
// are exec-form commands that both image sets carry.
func TestComposeFileServesBothImageSets(t *testing.T) {
	file := filepath.Join("..", "..", "..", "docker-compose.yml")
	offline := filepath.Join(t.TempDir(), ".env.offline")
	require.NoError(t, os.WriteFile(offline, []byte("MONGODB_IMAGE=meshproof-offline/mongodb:x\nPOSTGRES_IMAGE=meshproof-offline/postgres:x\n"), 0o644))

	for name, opts := range map[string][]topology.Option{
		"upstream": {topology.WithoutOSEnv()},
		"offline":  {topology.WithoutOSEnv(), topology.WithEnvFile(offline)},
	} {
		t.Run(name, func(t *testing.T) {
			topo, err := topology.Load(context.Background(), file, opts...)
			require.NoError(t, err)
			want := map[string][]string{
				"mongodb":    {"CMD", "mongosh", "--quiet", "--eval", "db.adminCommand('ping')"},
				"localstack": {"CMD", "curl", "-sf", "http://127.0.0.1:4566/_localstack/health"},
				"rabbitmq":   {"CMD", "rabbitmq-diagnostics", "-q", "ping"},
				"postgres":   {"CMD", "pg_isready", "-h", "127.0.0.1", "-U", "meshproof", "-d", "meshproof"},
			}
			for svc, hc := range want {
				require.Contains(t, topo.Services, svc)
				assert.Equal(t, hc, topo.Services[svc].Healthcheck, svc)
			}
			if name == "offline" {
				assert.Equal(t, "meshproof-offline/mongodb:x", topo.Services["mongodb"].Image)
			} else {
				assert.Equal(t, "mongo:7", topo.Services["mongodb"].Image)
			}
		})
	}
}

// TestComposeInfraUp starts the compose file's infrastructure services on the
// offline images: each must pass its x-meshproof probe, and Prometheus must
// scrape a target by DNS alias through the generated config.
func TestComposeInfraUp(t *testing.T) {
	requireDocker(t)
	infra := []string{"jaeger", "localstack", "mongodb", "postgres", "prometheus", "rabbitmq"}
	refs := standins(t, infra...)
	env := map[string]string{}
	for _, n := range infra {
		env[strings.ToUpper(n)+"_IMAGE"] = refs[n]
	}
	topo, err := topology.Load(context.Background(), filepath.Join("..", "..", "..", "docker-compose.yml"),
		topology.WithoutOSEnv(), topology.WithEnv(env))
	require.NoError(t, err)
	for _, n := range infra {
		svc := topo.Services[n]
		var kept []topology.Mount
		for _, m := range svc.Volumes {
			if _, err := os.Stat(m.Source); err == nil {
				kept = append(kept, m) // fixtures not written yet are left out
			}
		}
		svc.Volumes = kept
	}
	// Prometheus scrapes itself by its DNS alias: proves the generated
	// config and the network aliases together.
	topo.Services["prometheus"].Meshproof.Metrics = &topology.MetricsEndpoint{Port: 9090, Path: "/metrics"}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	e, err := New(WithLog(testWriter{t})).Up(ctx, topo, environment.Options{RunID: runID(t), Services: infra, LogDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Down(context.Background()) })
	t.Logf("infrastructure ready in %s", time.Since(start).Round(time.Millisecond))
	for _, si := range e.Services() {
		t.Logf("%-10s ready %s", si.Name, si.Ready.Round(time.Millisecond))
	}

	promAddr, err := e.Address("prometheus", 9090)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		code, body, err := httpGet(ctx, "http://"+promAddr+"/api/v1/targets")
		return err == nil && code == 200 && strings.Contains(body, `"scrapeUrl":"http://prometheus:9090/metrics"`) &&
			strings.Contains(body, `"health":"up"`)
	}, 30*time.Second, 500*time.Millisecond, "prometheus scrapes prometheus:9090 by DNS alias")

	require.NoError(t, e.Down(ctx))
}

func httpGet(ctx context.Context, url string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}
