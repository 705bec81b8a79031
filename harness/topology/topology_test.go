package topology

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const realCompose = "../../docker-compose.yml"

func loadReal(t *testing.T, opts ...Option) *Topology {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topo, err := Load(ctx, realCompose, append([]Option{WithoutOSEnv()}, opts...)...)
	require.NoError(t, err)
	return topo
}

func TestLoadRealCompose(t *testing.T) {
	topo := loadReal(t)
	root, err := filepath.Abs("../..")
	require.NoError(t, err)

	assert.NotEmpty(t, topo.Project, "compose names the project after its directory")
	assert.Equal(t, root, topo.Dir)
	assert.Len(t, topo.Services, 15)
	roles := []string{"gateway", "service-a", "service-b", "service-c", "service-d", "service-e", "service-f", "service-g", "service-h"}
	assert.Equal(t, roles, topo.OfKind(KindProcess))
	assert.Equal(t, roles, topo.UnderTest())
	assert.Equal(t, []string{"postgres"}, topo.OfKind(KindPostgres))
	assert.Equal(t, []string{"rabbitmq"}, topo.OfKind(KindRabbitMQ))

	gw := topo.Services["gateway"]
	assert.Equal(t, "meshproof/greeting:dev", gw.Image, "interpolation default")
	assert.Equal(t, []string{"serve", "--role", "gateway"}, gw.Command)
	assert.Equal(t, ":8080", gw.Environment["PORT"], "service value overrides the merged anchor")
	assert.Equal(t, "info", gw.Environment["LOG_LEVEL"])
	assert.Equal(t, "service-a:50051", gw.Environment["SERVICE_A_URL"])
	assert.Equal(t, []int{8080, 9464}, gw.Ports, "published port plus listen ports")
	assert.Equal(t, []string{"service-a"}, gw.DependsOn)
	require.NotNil(t, gw.Build)
	assert.Equal(t, root, gw.Build.Context)
	assert.Equal(t, "compose/greeting/Dockerfile", gw.Build.Dockerfile)
	assert.Equal(t, "from-source", gw.Build.Target)
	assert.Equal(t, []string{"CMD", "/greeting", "probe", "http://127.0.0.1:8080/healthz"}, gw.Healthcheck)
	assert.Equal(t, Probe{Type: ProbeHTTP, Port: 8080, Path: "/healthz"}, gw.Meshproof.Probe, "x-meshproof merge overrides the probe")
	assert.Equal(t, map[string]int{"PORT": 8080, "METRICS_PORT": 9464}, gw.Meshproof.Listen)
	require.NotNil(t, gw.Meshproof.Local)
	assert.Equal(t, "bin/greeting", gw.Meshproof.Local.Program)

	a := topo.Services["service-a"]
	assert.Equal(t, []int{9464, 50051}, a.Ports, "listen ports are declared ports")
	assert.Equal(t, Probe{Type: ProbeGRPCHealth, Port: 50051}, a.Meshproof.Probe)
	assert.Equal(t, DefaultReadyTimeout, a.Meshproof.ReadyTimeout)
	assert.Equal(t, &MetricsEndpoint{Port: 9464, Path: "/metrics"}, a.Meshproof.Metrics)

	pg := topo.Services["postgres"]
	assert.Equal(t, "postgres:16", pg.Image)
	assert.Equal(t, []Mount{{Source: filepath.Join(root, "fixtures/postgres"), Target: "/docker-entrypoint-initdb.d", ReadOnly: true}}, pg.Volumes)
	assert.Equal(t, "fixtures/postgres", pg.Meshproof.Fixtures)
	assert.Equal(t, []string{"/data/db"}, topo.Services["mongodb"].Tmpfs, "the store's data stays off the image layer")
	assert.Empty(t, pg.Tmpfs)

	assert.Equal(t, 90*time.Second, topo.Services["rabbitmq"].Meshproof.ReadyTimeout)
	assert.Equal(t, "http://guest:guest@rabbitmq:15672", topo.Services["rabbitmq"].Meshproof.Management)
	assert.Equal(t, "http://guest:guest@127.0.0.1:32768", Rewrite(topo.Services["rabbitmq"].Meshproof.Management,
		topo.Resolver(func(string, int) (string, bool) { return "127.0.0.1:32768", true })), "resolved like the endpoint")
	assert.Equal(t, []int{4317, 4318, 16686}, topo.Services["jaeger"].Ports)
	assert.Equal(t, []string{"--config.file=/etc/prometheus/prometheus.yml", "--web.enable-lifecycle"}, topo.Services["prometheus"].Command)
}

func TestLoadInterpolationSources(t *testing.T) {
	t.Run("env file", func(t *testing.T) {
		topo := loadReal(t, WithEnvFile("testdata/offline.env"))
		assert.Equal(t, "meshproof/postgres-offline:test", topo.Services["postgres"].Image)
		assert.Equal(t, "mongo:7", topo.Services["mongodb"].Image)
	})
	t.Run("explicit env wins over env file", func(t *testing.T) {
		topo := loadReal(t, WithEnvFile("testdata/offline.env"), WithEnv(map[string]string{"POSTGRES_IMAGE": "mirror/pg:16", "LOG_LEVEL": "debug"}))
		assert.Equal(t, "mirror/pg:16", topo.Services["postgres"].Image)
		assert.Equal(t, "debug", topo.Services["service-c"].Environment["LOG_LEVEL"])
	})
	t.Run("OS env", func(t *testing.T) {
		t.Setenv("GREETING_IMAGE", "from-os:1")
		ctx := context.Background()
		topo, err := Load(ctx, realCompose)
		require.NoError(t, err)
		assert.Equal(t, "from-os:1", topo.Services["service-h"].Image)
	})
	t.Run("missing env file", func(t *testing.T) {
		_, err := Load(context.Background(), realCompose, WithEnvFile("testdata/nope.env"))
		assert.ErrorContains(t, err, "nope.env")
	})
}

func TestClosure(t *testing.T) {
	topo := loadReal(t)
	got, err := topo.Closure([]string{"service-c"})
	require.NoError(t, err)
	assert.Equal(t, []string{"mongodb", "service-c"}, got)

	got, err = topo.Closure([]string{"service-b", "service-c"})
	require.NoError(t, err)
	assert.Equal(t, []string{"localstack", "mongodb", "rabbitmq", "service-b", "service-c", "service-d", "service-e", "service-g", "service-h"}, got)

	all, err := topo.Closure(nil)
	require.NoError(t, err)
	assert.Len(t, all, 15)

	_, err = topo.Closure([]string{"service-c", "servce-b"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown service "servce-b"`)
	assert.Contains(t, err.Error(), "service-b, service-c")
}

func TestOrder(t *testing.T) {
	topo := loadReal(t)
	layers, err := topo.Order(nil)
	require.NoError(t, err)
	assert.Equal(t, [][]string{
		{"jaeger", "localstack", "mongodb", "postgres", "prometheus", "rabbitmq"},
		{"service-c", "service-d", "service-f", "service-g", "service-h"},
		{"service-e"},
		{"service-b"},
		{"service-a"},
		{"gateway"},
	}, layers)

	closure, err := topo.Closure([]string{"service-d"})
	require.NoError(t, err)
	layers, err = topo.Order(closure)
	require.NoError(t, err)
	assert.Equal(t, [][]string{{"rabbitmq"}, {"service-d"}}, layers)

	_, err = topo.Order([]string{"nope"})
	assert.ErrorContains(t, err, `unknown service "nope"`)
}

func TestOrderCycle(t *testing.T) {
	topo := &Topology{Services: map[string]*Service{
		"a": {Name: "a", DependsOn: []string{"b"}},
		"b": {Name: "b", DependsOn: []string{"c"}},
		"c": {Name: "c", DependsOn: []string{"a"}},
		"d": {Name: "d"},
	}}
	_, err := topo.Order(nil)
	require.Error(t, err)
	assert.Equal(t, "depends_on cycle among a, b, c", err.Error())
}

func writeCompose(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "docker-compose.yml")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	return p
}

func TestLoadRejectsBadExtension(t *testing.T) {
	cases := []struct {
		name, body, service, want string
	}{
		{"unknown field", `
  web:
    image: x
    ports: ["8080"]
    x-meshproof: { kind: jaeger, probe: { type: http, port: 8080 }, readiness: 5s }`, "web", `service web: x-meshproof: unknown field "readiness" (in Ext)`},
		{"unknown nested field", `
  web:
    image: x
    ports: ["8080"]
    x-meshproof: { kind: jaeger, probe: { type: http, port: 8080, url: / } }`, "web", `service web: x-meshproof: unknown field "url" (in Probe)`},
		{"wrong type", `
  web:
    image: x
    ports: ["8080"]
    x-meshproof: { kind: jaeger, probe: { type: http, port: eighty } }`, "web", `service web: x-meshproof: cannot unmarshal`},
		{"missing extension", `
  web:
    image: x`, "web", "service web: x-meshproof is missing"},
		{"missing kind", `
  web:
    image: x
    ports: ["8080"]
    x-meshproof: { probe: { type: http, port: 8080 } }`, "web", "service web: x-meshproof: kind is missing"},
		{"unknown kind", `
  web:
    image: x
    ports: ["8080"]
    x-meshproof: { kind: redis, probe: { type: http, port: 8080 } }`, "web", `service web: x-meshproof: kind "redis" is unknown`},
		{"process without program", `
  web:
    image: x
    ports: ["8080"]
    x-meshproof: { kind: process, probe: { type: http, port: 8080 } }`, "web", "service web: x-meshproof: kind process needs local.program"},
		{"unknown probe", `
  web:
    image: x
    ports: ["8080"]
    x-meshproof: { kind: jaeger, probe: { type: ping, port: 8080 } }`, "web", `service web: x-meshproof: probe.type "ping" is unknown`},
		{"probe port undeclared", `
  web:
    image: x
    ports: ["8080"]
    x-meshproof: { kind: jaeger, probe: { type: http, port: 9090 } }`, "web", "service web: x-meshproof: probe.port 9090 is not a declared port"},
		{"metrics port undeclared", `
  web:
    image: x
    expose: ["8080"]
    x-meshproof: { kind: jaeger, probe: { type: http, port: 8080 }, metrics: { port: 9464 } }`, "web", "service web: x-meshproof: metrics.port 9464 is not a declared port"},
		{"bad listen var", `
  web:
    image: x
    x-meshproof: { kind: process, local: { program: bin/x }, listen: { "1PORT": 8080 }, probe: { type: tcp, port: 8080 } }`, "web", `service web: x-meshproof: listen: "1PORT" is not an environment variable name`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(context.Background(), writeCompose(t, "services:"+tc.body), WithoutOSEnv())
			require.Error(t, err)
			assert.Contains(t, err.Error(), "service "+tc.service)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestLoadExposeAndListen(t *testing.T) {
	p := writeCompose(t, `
services:
  api:
    image: ${API_IMAGE:-api:1}
    entrypoint: ["/bin/api"]
    command: serve --fast
    expose: ["7000-7001", "7002/udp"]
    environment:
      - PEER=db:5432
    build:
      context: ./src
      dockerfile: build/Dockerfile
      args: { VERSION: "1.2" }
    depends_on: [db]
    x-meshproof:
      kind: process
      local: { program: bin/api }
      listen: { API_PORT: 7000, ADMIN_PORT: 7100 }
      probe: { type: tcp, port: 7100 }
  db:
    image: pg
    ports: ["5432"]
    x-meshproof: { kind: postgres, probe: { type: sql, port: 5432 } }
`)
	topo, err := Load(context.Background(), p, WithoutOSEnv())
	require.NoError(t, err)
	api := topo.Services["api"]
	assert.Equal(t, "api:1", api.Image)
	assert.Equal(t, []string{"/bin/api"}, api.Entrypoint)
	assert.Equal(t, []string{"serve", "--fast"}, api.Command)
	assert.Equal(t, []int{7000, 7001, 7002, 7100}, api.Ports)
	assert.Equal(t, "db:5432", api.Environment["PEER"])
	require.NotNil(t, api.Build)
	assert.Equal(t, filepath.Join(filepath.Dir(p), "src"), api.Build.Context)
	assert.Equal(t, "build/Dockerfile", api.Build.Dockerfile)
	assert.Equal(t, map[string]string{"VERSION": "1.2"}, api.Build.Args)
	assert.Equal(t, []string{"db"}, api.DependsOn)
}
