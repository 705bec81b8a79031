package traces

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseShapeIndentationKeepsValidShapesValid(t *testing.T) {
	for name, text := range map[string]string{
		"design, step 2":        designShape,
		"step 4":                "gateway\n    service-a\n        service-b\n        ...\n    service-c\n",
		"step 1":                "gateway\n service-a\n  service-b\n service-c\n",
		"indented root":         "  gateway\n    service-a\n",
		"comments and blanks":   "gateway\n\n  # the caller\n  service-a\n      # any indent for comments\n",
		"dedent two levels":     "gateway\n  service-a\n    service-b\n      service-d\n  service-c\n",
		"async child":           "gateway\n  service-d\n    ~> service-f\n",
		"ellipsis under a leaf": "gateway\n  service-a\n    ...\n",
	} {
		_, err := ParseShape(text)
		assert.NoError(t, err, name)
	}
}

func TestParseShapeIndentationErrors(t *testing.T) {
	cases := []struct {
		name, text string
		line, col  int
		msg        string
	}{
		{"child by 3 where siblings use 2", "gateway\n  service-a\n     service-b\n", 3, 6,
			`shape line 3 "service-b": indented 3 spaces under "service-a", but this shape indents each level by 2`},
		{"dedent to a level that never existed", "gateway\n  service-a\n    service-b\n   service-c\n", 4, 4,
			`shape line 4 "service-c": indented 3 spaces, which matches no level above (levels: 0, 2, 4)`},
		{"ellipsis off the grid", "gateway\n    service-a\n      ...\n", 3, 7,
			`shape line 3 "...": indented 2 spaces under "service-a", but this shape indents each level by 4`},
		{"tab", "gateway\n  \tservice-a\n", 2, 3, `shape line 2 "service-a": indent with spaces, not tabs`},
		{"bad name after ~>", "gateway\n  ~>  a b\n", 2, 7, `"a b" is not a service name`},
	}
	for _, tc := range cases {
		_, err := ParseShape(tc.text)
		var se *ShapeError
		require.True(t, errors.As(err, &se), "%s: %v", tc.name, err)
		assert.Equal(t, [2]int{tc.line, tc.col}, [2]int{se.Line, se.Col}, tc.name)
		assert.Contains(t, err.Error(), tc.msg, tc.name)
	}
}

func TestParseShapeColumns(t *testing.T) {
	s, err := ParseShape("gateway\n  service-a\n    ~> service-f\n")
	require.NoError(t, err)
	f := s.Children[0].Children[0]
	assert.Equal(t, [2]int{3, 8}, [2]int{f.Line, f.Col}, "the column of the name, after ~>")
}
