package scenario

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCommittedScenarios keeps every scenario in scenarios/ loadable and
// valid against the real compose file.
func TestCommittedScenarios(t *testing.T) {
	files, err := filepath.Glob("../../scenarios/*.yaml")
	require.NoError(t, err)
	topo := realTopology(t)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			sc, err := Load(f)
			require.NoError(t, err)
			assert.NoError(t, Validate(sc, topo))
		})
	}
}
