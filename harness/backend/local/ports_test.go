package local

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFreePortSkipsServicePorts promises five of every six ports of the
// range to services, as if they were allocated and not yet bound: a free
// port for an internal listener (epmd, Jaeger's own metrics port) must still
// never be one of them, nor one it handed out before.
func TestFreePortSkipsServicePorts(t *testing.T) {
	e := &env{ports: map[string]map[int]int{"svc": {}}}
	cp := 0
	for p := portRangeLow; p < portRangeHigh; p++ {
		if p%6 != 0 {
			e.ports["svc"][cp] = p
			cp++
		}
	}
	seen := map[int]bool{}
	for range 50 {
		p, err := e.freePort()
		require.NoError(t, err)
		assert.Zero(t, p%6, "port %d was promised to a service", p)
		assert.False(t, seen[p], "port %d handed out twice", p)
		seen[p] = true
	}
}
