package run

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/scenario"
	"github.com/meshproof/meshproof/harness/topology"
)

func realTopology(t *testing.T) *topology.Topology {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topo, err := topology.Load(ctx, "../../docker-compose.yml", topology.WithoutOSEnv())
	require.NoError(t, err)
	return topo
}

func TestValidateFanoutExample(t *testing.T) {
	sc, err := scenario.Load("../scenario/testdata/fanout-load.yaml")
	require.NoError(t, err)
	assert.NoError(t, validateAll(sc, realTopology(t)))
}

func TestValidateErrors(t *testing.T) {
	topo := realTopology(t)
	const head = "name: x\nenvironment:\n  compose: docker-compose.yml\n"
	const load = "load: { target: \"http://gateway:8080/api/greeting\", model: closed, users: 2, duration: 1s }\n"
	cases := []struct {
		name string
		src  string
		want []string
	}{
		{"unknown selected service", head + "  services: [gateway, servce-c]\n" + load,
			[]string{`v.yaml:4:23: environment.services[1]: unknown service "servce-c" (services: gateway, jaeger,`}},
		{"unknown env service", head + "  env:\n    service-z: { A: b }\n" + load,
			[]string{`v.yaml:5:16: environment.env.service-z: unknown service "service-z"`}},
		{"target host not a service", head + "load: { target: \"http://gw:8080/\", model: closed, users: 2, duration: 1s }\n",
			[]string{`v.yaml:4:17: load.target: unknown service "gw"`}},
		{"target port undeclared", head + "load: { target: \"http://gateway:9999/\", model: closed, users: 2, duration: 1s }\n",
			[]string{`v.yaml:4:17: load.target: port 9999 is not a declared port of gateway (declared: [8080 9464])`}},
		{"target not started", head + "  services: [service-c]\n" + load,
			[]string{`load.target: service "gateway" is not started by environment.services`}},
		{"closed without users", head + "load: { target: \"http://gateway:8080/\", model: closed, duration: 1s }\n",
			[]string{`v.yaml:4:7: load.users: the closed model needs users > 0`}},
		{"open without rate", head + "load: { target: \"http://gateway:8080/\", model: open, duration: 1s }\n",
			[]string{`v.yaml:4:7: load.rate: the open model needs rate > 0`}},
		{"unknown model", head + "load: { target: \"http://gateway:8080/\", model: wild, users: 1, duration: 1s }\n",
			[]string{`v.yaml:4:48: load.model: "wild" is not a load model`}},
		{"no length", head + "load: { target: \"http://gateway:8080/\", model: closed, users: 1 }\n",
			[]string{`v.yaml:4:7: load: say how long the load runs: duration, requests or stages`}},
		{"grpc without method", head + "load: { target: \"grpc://service-a:50051\", model: closed, users: 1, requests: 5 }\n",
			[]string{`v.yaml:4:7: load.grpc.method: a grpc:// target needs the method`}},
		{"fault on unknown service", head + load + "faults:\n  - { action: kill, service: servce-b, at: 5s }\n",
			[]string{`v.yaml:6:30: faults[0].service: unknown service "servce-b"`}},
		{"fault action", head + load + "faults:\n  - { action: explode, service: service-b }\n",
			[]string{`v.yaml:6:15: faults[0].action: "explode" is not a fault action`}},
		{"log glob matches nothing", head + load + "assert:\n  logs:\n    - { service: \"svc-*\", contains: x }\n",
			[]string{`v.yaml:7:18: assert.logs[0].service: "svc-*" matches no started service`}},
		{"log unknown service", head + load + "assert:\n  logs:\n    - { service: servce-a, contains: x }\n",
			[]string{`v.yaml:7:18: assert.logs[0].service: unknown service "servce-a"`}},
		{"log count", head + load + "assert:\n  logs:\n    - { service: \"service-*\", count: \"about 3\" }\n",
			[]string{`v.yaml:7:38: assert.logs[0].count: expectation "about 3": want an operator`}},
		{"data unknown service", head + load + "assert:\n  data:\n    - { mongo: { db: a, collection: b }, count: \"> 0\", service: mongo }\n",
			[]string{`v.yaml:7:65: assert.data[0].service: unknown service "mongo"`}},
		{"data service of the wrong kind", head + load + "assert:\n  data:\n    - { mongo: { db: a, collection: b }, count: \"> 0\", service: postgres }\n",
			[]string{`v.yaml:7:65: assert.data[0].service: service "postgres" is of kind postgres, not mongodb`}},
		{"data expectation", head + load + "assert:\n  data:\n    - { rabbitmq: { queue: q }, depth: \"== zero!\" }\n",
			[]string{`v.yaml:7:40: assert.data[0].depth: expectation "== zero!"`}},
		{"data wrong expectation field", head + load + "assert:\n  data:\n    - { postgres: \"SELECT 1\", count: \"== 1\" }\n",
			[]string{`v.yaml:7:7: assert.data[0].expect: postgres assertions need expect`, `v.yaml:7:38: assert.data[0].count: count does not apply to postgres assertions (use expect)`}},
		{"data no store", head + load + "assert:\n  data:\n    - { count: \"== 1\" }\n",
			[]string{`v.yaml:7:7: assert.data[0]: name the store to read`}},
		{"metrics expectation", head + load + "assert:\n  metrics:\n    - { delta: up, expect: \"=~ 1\" }\n",
			[]string{`v.yaml:7:28: assert.metrics[0].expect: expectation "=~ 1"`}},
		{"metrics neither query", head + load + "assert:\n  metrics:\n    - { expect: \"== 1\" }\n",
			[]string{`v.yaml:7:7: assert.metrics[0]: give delta or promql`}},
		{"trace require", head + load + "assert:\n  traces:\n    - { require: most, shape: gateway }\n",
			[]string{`v.yaml:7:18: assert.traces[0].require: "most" is not a share`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := tc.src
			if !strings.Contains(src, "assert:") {
				src += "assert:\n  load: [\"error_rate == 0\"]\n" // every scenario must judge something
			}
			sc, err := scenario.Parse("v.yaml", []byte(src))
			require.NoError(t, err)
			err = validateAll(sc, topo)
			require.Error(t, err)
			var list scenario.ErrorList
			require.True(t, errors.As(err, &list))
			require.Len(t, list, len(tc.want), "%v", err)
			for i, w := range tc.want {
				assert.Contains(t, list[i].Error(), w)
				assert.True(t, strings.HasPrefix(list[i].Error(), "v.yaml:"), list[i].Error())
			}
		})
	}
}

func TestValidateSubsetSelection(t *testing.T) {
	src := `name: c-only
environment:
  compose: docker-compose.yml
  services: [service-c]
  env: { service-c: { LOG_LEVEL: debug } }
load: { target: "grpc://service-c:50051", grpc: { method: greeting.v3.GreetingService/Greeting }, model: open, rate: 10, duration: 2s }
assert:
  logs: [{ service: "service-*", none: { level: error } }]
  data: [{ mongo: { db: service-c, collection: greetings }, count: "== load.ok", within: 5s }]
`
	sc, err := scenario.Parse("s.yaml", []byte(src))
	require.NoError(t, err)
	assert.NoError(t, validateAll(sc, realTopology(t)))
}

func TestValidateRequiresAnAssertion(t *testing.T) {
	sc, err := scenario.Parse("v.yaml", []byte("name: x\nenvironment:\n  compose: docker-compose.yml\n"))
	require.NoError(t, err)
	err = validateAll(sc, realTopology(t))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "v.yaml:1:1: assert: the scenario asserts nothing")
}

func TestValidateNeedsStartedJaeger(t *testing.T) {
	src := "name: x\nenvironment:\n  compose: docker-compose.yml\n  services: [service-c]\n" +
		"assert:\n  traces:\n    - { shape: service-c }\n"
	sc, err := scenario.Parse("v.yaml", []byte(src))
	require.NoError(t, err)
	err = validateAll(sc, realTopology(t))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "environment.services starts none (add jaeger)")
}

// validateAll is what Prepare checks: the scenario and every kind it uses.
func validateAll(sc *scenario.Scenario, topo *topology.Topology) error {
	_, err := validate(sc, topo)
	return err
}
