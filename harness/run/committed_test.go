package run

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCommittedScenarios keeps every scenario in scenarios/ loadable and
// valid, every assertion kind included, against the real compose file.
func TestCommittedScenarios(t *testing.T) {
	files, err := filepath.Glob("../../scenarios/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := Prepare(context.Background(), f, nil)
			assert.NoError(t, err)
		})
	}
}
