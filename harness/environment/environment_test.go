package environment

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/meshproof/meshproof/harness/topology"
)

// mappedEnv knows addresses for some service ports only, as an external
// environment that maps only a broker's client port.
type mappedEnv struct {
	Environment
	addr map[string]string // "service:port" → host:port
}

func (m mappedEnv) Address(service string, port int) (string, error) {
	if a, ok := m.addr[fmt.Sprintf("%s:%d", service, port)]; ok {
		return a, nil
	}
	return "", fmt.Errorf("no address for %s:%d", service, port)
}

func (m mappedEnv) Resolve(s string) string {
	for from, to := range m.addr {
		s = strings.ReplaceAll(s, from, to)
	}
	return s
}

func TestManagementOnlyWhenTheEnvironmentReachesIt(t *testing.T) {
	topo := &topology.Topology{Services: map[string]*topology.Service{
		"rabbitmq": {Name: "rabbitmq", Meshproof: topology.Ext{Endpoint: "amqp://guest:guest@rabbitmq:5672/", Management: "http://guest:guest@rabbitmq:15672"}},
		"postgres": {Name: "postgres", Meshproof: topology.Ext{Endpoint: "postgres://postgres@postgres:5432/x"}},
	}}
	both := mappedEnv{addr: map[string]string{"rabbitmq:5672": "127.0.0.1:30001", "rabbitmq:15672": "127.0.0.1:30002"}}
	assert.Equal(t, "http://guest:guest@127.0.0.1:30002", Management(both, topo, "rabbitmq"))

	clientOnly := mappedEnv{addr: map[string]string{"rabbitmq:5672": "10.0.0.7:5672"}}
	assert.Empty(t, Management(clientOnly, topo, "rabbitmq"), "an unresolved compose name must not be dialled")
	assert.Empty(t, Management(both, topo, "postgres"), "declares none")
	assert.Empty(t, Management(both, topo, "nosuch"))
}
