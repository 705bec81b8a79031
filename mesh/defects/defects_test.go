package defects

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The catalogue is what the e2e test trusts: it must be complete enough to
// mean something and unambiguous about what must turn red.
func TestCatalogue(t *testing.T) {
	all := Catalogue()
	require.GreaterOrEqual(t, len(all), 12)
	seen := map[string]bool{}
	for _, d := range all {
		assert.False(t, seen[d.Name], "defect %s twice", d.Name)
		seen[d.Name] = true
		assert.NotEmpty(t, d.Service, d.Name)
		assert.NotEmpty(t, d.Description, d.Name)
		assert.FileExists(t, "../../scenarios/"+d.Scenario+".yaml", d.Name)
		assert.NotEmpty(t, d.MustFail, d.Name)
		got, ok := Lookup(d.Name)
		assert.True(t, ok)
		assert.Equal(t, d.Scenario, got.Scenario)
	}
}

// TestDefaultBuildHasNoDefects guards the promise that the default binary
// carries no defect, whatever GREETING_DEFECT says.
func TestDefaultBuildHasNoDefects(t *testing.T) {
	if Enabled {
		t.Skip("built with -tags defects")
	}
	t.Setenv(EnvVar, FDoubleStore)
	assert.False(t, Active(FDoubleStore))
}
