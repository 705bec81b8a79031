package expect

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseAndCheck(t *testing.T) {
	vars := Vars{"load.ok": 600}
	cases := []struct {
		expr     string
		measured float64
		want     bool
	}{
		{"< 250ms", 0.2, true},
		{"< 250ms", 0.25, false},
		{"<= 250ms", 0.25, true},
		{"== 0", 0, true},
		{"< 0.1%", 0.0009, true},
		{"< 0.1%", 0.002, false},
		{"> 100/s", 150, true},
		{"== load.ok", 600, true},
		{"== load.ok", 599, false},
		{"== load.ok - 1", 599, true},
		{"!= 3", 3, false},
		{">= 1.5s", 1.5, true},
	}
	for _, c := range cases {
		e, err := Parse(c.expr)
		require.NoError(t, err, c.expr)
		got, err := e.Check(c.measured, vars)
		require.NoError(t, err, c.expr)
		assert.Equal(t, c.want, got, "%s with %v", c.expr, c.measured)
	}
}

func TestParseErrors(t *testing.T) {
	for _, bad := range []string{"", "250ms", "< ", "< abc%", "== load.ok - x", "=< 3"} {
		_, err := Parse(bad)
		assert.Error(t, err, bad)
	}
	e := MustParse("== load.missing")
	_, err := e.Check(1, Vars{})
	assert.ErrorContains(t, err, "load.missing")
}

func TestFormat(t *testing.T) {
	assert.Equal(t, "250ms", Format(0.25, Seconds))
	assert.Equal(t, "0.1%", Format(0.001, Fraction))
	assert.Equal(t, "150.0/s", Format(150, PerSec))
}
