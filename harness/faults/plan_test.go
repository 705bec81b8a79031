package faults_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/faults"
	"github.com/meshproof/meshproof/harness/scenario"
	"github.com/meshproof/meshproof/harness/topology"
)

func dur(d time.Duration) scenario.Duration { return scenario.Duration(d) }

func TestNewPlanRejectsWithFieldPaths(t *testing.T) {
	ok := scenario.Fault{Action: "kill", Service: "service-e", At: dur(time.Second)}
	cases := []struct {
		name  string
		fault scenario.Fault
		want  []string // "field: message fragment"
	}{
		{"missing action", scenario.Fault{Service: "a"}, []string{"faults[1].action: required"}},
		{"unknown action", scenario.Fault{Action: "explode", Service: "a"}, []string{`faults[1].action: "explode" is not a fault action`}},
		{"missing service", scenario.Fault{Action: "kill"}, []string{"faults[1].service: required"}},
		{"at and after", scenario.Fault{Action: "kill", Service: "a", At: dur(time.Second), After: 10}, []string{"faults[1]: give at"}},
		{"negative at", scenario.Fault{Action: "kill", Service: "a", At: dur(-time.Second)}, []string{"faults[1].at: must not be negative"}},
		{"negative after", scenario.Fault{Action: "kill", Service: "a", After: -1}, []string{"faults[1].after: must not be negative"}},
		{"negative for", scenario.Fault{Action: "kill", Service: "a", For: dur(-time.Second)}, []string{"faults[1].for: must not be negative"}},
		{"for on restart", scenario.Fault{Action: "restart", Service: "a", For: dur(time.Second)}, []string{"faults[1].for: action restart has nothing to undo"}},
		{"for on start", scenario.Fault{Action: "start", Service: "a", For: dur(time.Second)}, []string{"faults[1].for: action start"}},
		{"latency without latency", scenario.Fault{Action: "latency", Service: "a"}, []string{"faults[1].latency: action latency needs latency > 0"}},
		{"latency on kill", scenario.Fault{Action: "kill", Service: "a", Latency: dur(time.Second)}, []string{"faults[1].latency: only action latency"}},
		{"two problems", scenario.Fault{Action: "drop", Latency: dur(time.Second)}, []string{"faults[1].service: required", "faults[1].latency: only action latency"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := faults.NewPlan([]scenario.Fault{ok, c.fault})
			require.Error(t, err)
			assert.Nil(t, p)
			var fes faults.FieldErrors
			require.True(t, errors.As(err, &fes), "want FieldErrors, got %T", err)
			require.Len(t, fes, len(c.want), "errors: %v", err)
			for i, w := range c.want {
				assert.Contains(t, fes[i].Error(), w)
			}
			var fe *faults.FieldError
			require.True(t, errors.As(err, &fe))
			assert.Regexp(t, `^faults\[1\]`, fe.Field)
		})
	}
}

func TestNewPlanAcceptsEveryAction(t *testing.T) {
	p, err := faults.NewPlan([]scenario.Fault{
		{Name: "crash e", Action: "kill", Service: "e", At: dur(5 * time.Second), For: dur(5 * time.Second)},
		{Action: "stop", Service: "e", After: 100, For: dur(time.Second)},
		{Action: "start", Service: "e"},
		{Action: "restart", Service: "rabbitmq", At: dur(15 * time.Second)},
		{Action: "pause", Service: "c", For: dur(time.Second)},
		{Action: "unpause", Service: "c"},
		{Action: "latency", Service: "c", Latency: dur(200 * time.Millisecond), For: dur(time.Second)},
		{Action: "drop", Service: "c"},
	})
	require.NoError(t, err)
	require.Len(t, p.Steps, 8)
	assert.Equal(t, faults.Step{Index: 0, Name: "crash e", Action: "kill", Service: "e", At: 5 * time.Second, For: 5 * time.Second}, p.Steps[0])
	assert.Equal(t, int64(100), p.Steps[1].After)
	assert.Equal(t, 200*time.Millisecond, p.Steps[6].Latency)
	assert.Equal(t, "faults[0] kill e (crash e)", p.Steps[0].Label())
}

func testTopology() *topology.Topology {
	svc := func(name string, probe int, ports ...int) *topology.Service {
		return &topology.Service{Name: name, Ports: ports, Meshproof: topology.Ext{Probe: topology.Probe{Port: probe}}}
	}
	return &topology.Topology{Services: map[string]*topology.Service{
		"service-c": svc("service-c", 50051, 50051, 9464),
		"single":    svc("single", 0, 7000),
		"rabbitmq":  svc("rabbitmq", 5672, 5672, 15672),
		"ambiguous": svc("ambiguous", 0, 1, 2),
		"portless":  svc("portless", 0),
		"e":         svc("e", 50051, 50051),
		"db":        svc("db", 9, 9),
	}}
}

func TestBindPicksTheLinkPort(t *testing.T) {
	p, err := faults.NewPlan([]scenario.Fault{
		{Action: "latency", Service: "service-c", Latency: dur(time.Millisecond)},
		{Action: "drop", Service: "single"},
		{Action: "drop", Service: "rabbitmq"},
		{Action: "latency", Service: "service-c", Latency: dur(2 * time.Millisecond)},
		{Action: "kill", Service: "e"},
	})
	require.NoError(t, err)
	require.NoError(t, p.Bind(testTopology()))
	assert.Equal(t, 50051, p.Steps[0].Port, "probe port wins over the metrics port")
	assert.Equal(t, 7000, p.Steps[1].Port, "the only port")
	assert.Equal(t, 5672, p.Steps[2].Port)
	assert.Equal(t, 0, p.Steps[4].Port, "kill needs no link")
	assert.Equal(t, []string{"service-c:50051", "single:7000", "rabbitmq:5672"}, p.Links())
}

func TestBindRejectsWithFieldPaths(t *testing.T) {
	p, err := faults.NewPlan([]scenario.Fault{
		{Action: "drop", Service: "ambiguous"},
		{Action: "drop", Service: "portless"},
		{Action: "kill", Service: "nosuch"},
	})
	require.NoError(t, err)
	err = p.Bind(testTopology())
	var fes faults.FieldErrors
	require.True(t, errors.As(err, &fes), "got %v", err)
	require.Len(t, fes, 3)
	assert.Equal(t, "faults[0].service", fes[0].Field)
	assert.Contains(t, fes[0].Msg, "several ports")
	assert.Equal(t, "faults[1].service", fes[1].Field)
	assert.Contains(t, fes[1].Msg, "no port")
	assert.Equal(t, "faults[2].service", fes[2].Field)
	assert.Contains(t, fes[2].Msg, "unknown service")
}
