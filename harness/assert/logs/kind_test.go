package logs

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/environment"
	"github.com/meshproof/meshproof/harness/scenario"
	"github.com/meshproof/meshproof/harness/topology"
)

// servicesEnv is an assert.Env that only lists services.
type servicesEnv []environment.ServiceInfo

func (s servicesEnv) Endpoint(topology.Kind, string) (string, error)   { return "", nil }
func (s servicesEnv) Services() []environment.ServiceInfo              { return s }
func (s servicesEnv) UnderTest() []string                              { return nil }
func (s servicesEnv) Fresh() bool                                      { return true }
func (s servicesEnv) Management(topology.Kind, string) (string, error) { return "", nil }

// Lines that never reached their file must fail the run, naming the
// service, rather than let "no service logs an error" pass on silence.
func TestLostLogsFailCollection(t *testing.T) {
	k := New(&scenario.Scenario{Assert: scenario.Assertions{Logs: []scenario.LogAssertion{{Service: "*", None: map[string]string{"level": "error"}}}}})
	require.NotNil(t, k)
	env := servicesEnv{
		{Name: "service-a", LogFile: t.TempDir() + "/a.log"},
		{Name: "service-b", LogFile: t.TempDir() + "/b.log", LogError: "unexpected EOF"},
	}
	err := k.Begin(context.Background(), env)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "logs of service-b could not be collected: unexpected EOF")
	assert.NotContains(t, err.Error(), "service-a")
}
