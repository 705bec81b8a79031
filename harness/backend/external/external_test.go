package external

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/environment"
	"github.com/meshproof/meshproof/harness/topology"
)

// meshTopology is the part of the compose file the endpoints files map.
func meshTopology() *topology.Topology {
	return &topology.Topology{
		File: "docker-compose.yml",
		Services: map[string]*topology.Service{
			"gateway": {Name: "gateway", Ports: []int{8080}, Meshproof: topology.Ext{
				Kind: topology.KindProcess, Probe: topology.Probe{Type: topology.ProbeHTTP, Port: 8080, Path: "/healthz"},
			}},
			"service-a": {Name: "service-a", Ports: []int{50051}, Meshproof: topology.Ext{
				Kind: topology.KindProcess, Probe: topology.Probe{Type: topology.ProbeGRPCHealth, Port: 50051},
				Metrics: &topology.MetricsEndpoint{Port: 9464, Path: "/metrics"},
			}},
			"service-b": {Name: "service-b", Ports: []int{50051}, Meshproof: topology.Ext{Kind: topology.KindProcess}},
			"rabbitmq": {Name: "rabbitmq", Ports: []int{5672}, Meshproof: topology.Ext{
				Kind: topology.KindRabbitMQ, Probe: topology.Probe{Type: topology.ProbeAMQP, Port: 5672},
				Endpoint: "amqp://guest:guest@rabbitmq:5672/",
			}},
			"postgres": {Name: "postgres", Ports: []int{5432}, Meshproof: topology.Ext{
				Kind: topology.KindPostgres, Probe: topology.Probe{Type: topology.ProbeSQL, Port: 5432},
				Endpoint: "postgres://meshproof:meshproof@postgres:5432/meshproof?sslmode=disable",
			}},
			"jaeger": {Name: "jaeger", Ports: []int{16686, 4317}, Meshproof: topology.Ext{
				Kind: topology.KindJaeger, Probe: topology.Probe{Type: topology.ProbeHTTP, Port: 16686},
				Endpoint: "http://jaeger:16686",
			}},
			"prometheus": {Name: "prometheus", Ports: []int{9090}, Meshproof: topology.Ext{
				Kind: topology.KindPrometheus, Probe: topology.Probe{Type: topology.ProbeHTTP, Port: 9090},
				Endpoint: "http://prometheus:9090",
			}},
		},
	}
}

var testVars = map[string]string{
	"RABBIT_USER": "rab", "RABBIT_PASSWORD": "s3cret", "PGUSER": "pg", "PGPASSWORD": "pw@x",
}

func lookupIn(m map[string]string) Option {
	return WithLookupEnv(func(k string) (string, bool) { v, ok := m[k]; return v, ok })
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

const goodFile = `# endpoints for staging; secrets come from the environment, never this file
services:
  gateway:  { ports: { 8080: "gw.internal:443" } }
  service-a: { ports: { 50051: "10.0.0.12:50051", 9464: "10.0.0.12:9464" } }
  rabbitmq: { endpoint: "amqp://${RABBIT_USER}:${RABBIT_PASSWORD}@mq.internal:5672/" }
  postgres: { endpoint: "postgres://${PGUSER}:${PGPASSWORD}@db.internal:5432/greetings" }
  jaeger:   { endpoint: "http://jaeger.internal:16686" }
  prometheus: { endpoint: "http://prom.internal:9090" }
toxiproxy: "http://127.0.0.1:8474"
`

func TestLoadGoodFile(t *testing.T) {
	ctx := context.Background()
	e, err := Load(writeFile(t, "staging.yaml", goodFile), meshTopology(), lookupIn(testVars))
	require.NoError(t, err)
	assert.Equal(t, "external-staging", e.RunID())

	addr, err := e.Address("gateway", 8080)
	require.NoError(t, err)
	assert.Equal(t, "gw.internal:443", addr)
	addr, err = e.Address("postgres", 5432)
	require.NoError(t, err)
	assert.Equal(t, "db.internal:5432", addr, "from the endpoint, at the probe port")
	_, err = e.Address("jaeger", 4317)
	require.ErrorContains(t, err, "maps no port 4317 of jaeger")
	_, err = e.Address("service-b", 50051)
	require.ErrorContains(t, err, "service-b is not mapped")

	assert.Equal(t, "http://gw.internal:443/api/greeting", e.Resolve("http://gateway:8080/api/greeting"))
	assert.Equal(t, "10.0.0.12:50051,service-b:50051", e.Resolve("service-a:50051,service-b:50051"), "unmapped stays as written")
	assert.Equal(t, "host=db.internal port=5432 dbname=x", e.Resolve("host=postgres port=5432 dbname=x"))

	ep, err := e.Endpoint("rabbitmq")
	require.NoError(t, err)
	assert.Equal(t, "amqp://rab:s3cret@mq.internal:5672/", ep)
	ep, err = e.Endpoint("postgres")
	require.NoError(t, err)
	assert.Equal(t, "postgres://pg:pw@x@db.internal:5432/greetings", ep)
	_, err = e.Endpoint("gateway")
	require.ErrorContains(t, err, "declares no x-meshproof.endpoint")

	var names []string
	for _, s := range e.Services() {
		names = append(names, s.Name)
		assert.Empty(t, s.LogFile)
	}
	assert.Equal(t, []string{"gateway", "jaeger", "postgres", "prometheus", "rabbitmq", "service-a"}, names)
	assert.Empty(t, e.Usage(ctx))

	err = e.Stop(ctx, "service-b")
	require.EqualError(t, err, "the external environment gives meshproof no control of service-b: faults need a backend it started, or --attach")
	for _, f := range []func(context.Context, string) error{e.Start, e.Kill, e.Pause, e.Unpause} {
		require.ErrorContains(t, f(ctx, "gateway"), "no control of gateway")
	}
	require.Implements(t, (*environment.ToxiproxyAPI)(nil), e)
	assert.Equal(t, "http://127.0.0.1:8474", e.(environment.ToxiproxyAPI).ToxiproxyAPI())
	require.NoError(t, e.Down(ctx))
}

func TestLoadWithoutToxiproxyHasNoProxyAPI(t *testing.T) {
	e, err := Load(writeFile(t, "e.yaml", "services:\n  jaeger: { endpoint: \"http://127.0.0.1:16686\" }\n"), meshTopology())
	require.NoError(t, err)
	_, ok := e.(environment.ToxiproxyAPI)
	assert.False(t, ok)
	got, err := e.Endpoint("jaeger")
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:16686", got)
}

func TestEndpointFallsBackToComposeThroughPorts(t *testing.T) {
	e, err := Load(writeFile(t, "e.yaml", "services:\n  jaeger: { ports: { 16686: \"127.0.0.1:26686\" } }\n"), meshTopology())
	require.NoError(t, err)
	got, err := e.Endpoint("jaeger")
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:26686", got)
}

func TestLoadBadFilesNameTheLine(t *testing.T) {
	cases := []struct {
		name, content, pos, msg string
	}{
		{"unknown top-level field", "services:\n  jaeger: { endpoint: \"http://j:16686\" }\ntoxyproxy: \"http://127.0.0.1:8474\"\n",
			"3:1", `unknown field "toxyproxy"`},
		{"unknown service", "services:\n  jaeger: { endpoint: \"http://j:16686\" }\n  service-z: { ports: { 50051: \"h:1\" } }\n",
			"3:3", `services: unknown service "service-z": docker-compose.yml has gateway, jaeger`},
		{"unknown service field", "services:\n  jaeger:\n    endpont: \"http://j:16686\"\n",
			"3:5", `services.jaeger: unknown field "endpont"`},
		{"undeclared port", "services:\n  service-a:\n    ports:\n      8080: \"h:8080\"\n",
			"4:7", "services.service-a.ports: service-a declares no port 8080 (it has 9464, 50051)"},
		{"literal password in a URL", "services:\n  rabbitmq: { endpoint: \"amqp://guest:guest@mq:5672/\" }\n",
			"2:25", `services.rabbitmq.endpoint: literal password in "amqp://guest:xxxxx@mq:5672/"`},
		{"literal password in a DSN", "services:\n  postgres:\n    endpoint: host=db port=5432 user=pg password=hunter2\n",
			"3:15", "literal password in the DSN: write it as password=${VAR}"},
		{"literal password in a URL query", "services:\n  postgres:\n    endpoint: \"postgres://db:5432/x?password=hunter2\"\n",
			"3:15", "literal password in the URL query"},
		{"unset variable", "services:\n  postgres:\n    endpoint: \"postgres://${PGUSER}:${NOT_SET_ANYWHERE}@db:5432/x\"\n",
			"3:15", "environment variable NOT_SET_ANYWHERE is not set"},
		{"malformed variable", "services:\n  postgres:\n    endpoint: \"postgres://u:${PGPASSWORD:-x}@db:5432/x\"\n",
			"3:15", "literal password"},
		{"not host:port", "services:\n  gateway: { ports: { 8080: \"gw.internal\" } }\n",
			"2:29", `want host:port, got "gw.internal"`},
		{"port given twice", "services:\n  gateway:\n    ports: { 8080: \"a:1\", 8080: \"b:2\" }\n",
			"3:27", "services.gateway.ports.8080: given twice"},
		{"not a mapping", "services: [gateway]\n", "1:11", "services: want a mapping"},
		{"no services", "toxiproxy: \"127.0.0.1:8474\"\n", "1:1", "services: no service is mapped"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := writeFile(t, "bad.yaml", tc.content)
			_, err := Load(f, meshTopology(), lookupIn(testVars))
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), f+":"+tc.pos+": "), "want %s:%s, got %v", f, tc.pos, err)
			assert.Contains(t, err.Error(), tc.msg)
			assert.NotContains(t, err.Error(), "hunter2", "a literal secret is never echoed")
		})
	}
}

func TestExpandRejectsMalformedReferences(t *testing.T) {
	_, err := expand("http://${HOST:-x}:80", func(string) (string, bool) { return "", true })
	require.ErrorContains(t, err, "malformed variable reference")
}
