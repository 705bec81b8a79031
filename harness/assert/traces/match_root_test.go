package traces

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A trace whose root service's spans have not arrived yet is incomplete, not
// a mismatch: Fetch must keep polling it instead of judging it early.
func TestClassifyRootNotArrivedIsIncomplete(t *testing.T) {
	shape, err := ParseShape("gateway\n  service-a\n    service-c\n")
	require.NoError(t, err)
	tree := &Tree{Roots: []*Node{{Service: "service-a", Children: []*Node{{Service: "service-c"}}}}}
	assert.Equal(t, Incomplete, Classify(tree, shape, false))

	// With the root present, a wrong child is still a mismatch.
	wrong := &Tree{Roots: []*Node{{Service: "gateway", Children: []*Node{{Service: "service-c"}}}}}
	assert.Equal(t, Mismatch, Classify(wrong, shape, false))
}
