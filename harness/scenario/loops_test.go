package scenario

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Aliases and merge keys that reach the node they sit in are reported at
// the alias, not followed: following them overflowed the stack.
func TestParseReportsAliasAndMergeLoops(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"merge list holding itself", "name: x\nenvironment: { <<: &s [*s], compose: x }\n",
			"l.yaml:2:24: environment: merge (<<) list contains itself through an alias (a loop)"},
		{"merge of the enclosing mapping", "name: x\nenvironment: &e { <<: *e, compose: x }\n",
			"l.yaml:2:23: environment: merge (<<) includes a mapping that contains it (a loop)"},
		{"alias of an ancestor", "name: x\nenvironment: &e { compose: x, env: { a: *e } }\n",
			"l.yaml:2:41: environment.env.a: alias *e refers to a node that contains it (a loop)"},
		{"list holding itself", "name: x\nenvironment: { compose: x, services: &l [a, *l] }\n",
			"l.yaml:2:45: environment.services[1]: alias *l refers to a node that contains it (a loop)"},
	}
	for _, tc := range cases {
		_, err := Parse("l.yaml", []byte(tc.src))
		require.Error(t, err, tc.name)
		assert.Contains(t, err.Error(), tc.want, tc.name)
	}
}

func TestParseMergesTheSameListTwice(t *testing.T) {
	src := "name: x\nenvironment:\n  compose: c\n  env:\n    a: &m { X: y }\n    b: { <<: [*m, *m], Z: w }\n"
	sc, err := Parse("m.yaml", []byte(src))
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"X": "y", "Z": "w"}, sc.Environment.Env["b"])
}

func TestErrorfAtPointsInsideValues(t *testing.T) {
	src := "name: x\n" +
		"environment: { compose: c }\n" +
		"assert:\n" +
		"  traces:\n" +
		"    - shape: |\n" +
		"\n" +
		"        gateway\n" +
		"          service-a\n" +
		"      durations: [\"service-a p(99) < 1s\"]\n" +
		"  metrics:\n" +
		"    - { promql: 'sum(x)', expect: \"> 0\" }\n"
	sc, err := Parse("p.yaml", []byte(src))
	require.NoError(t, err)
	e := sc.ErrorfAt("assert.traces[0].shape", 3, 3, "here")
	assert.Equal(t, "p.yaml:8:11: assert.traces[0].shape: here", e.Error(), "line 3 of the text, after a blank line")
	e = sc.ErrorfAt("assert.traces[0].durations[0]", 1, 11, "here")
	assert.Equal(t, "p.yaml:9:30: assert.traces[0].durations[0]: here", e.Error(), "inside a quoted value")
	e = sc.ErrorfAt("assert.metrics[0].promql", 1, 5, "here")
	assert.Equal(t, "p.yaml:11:22: assert.metrics[0].promql: here", e.Error())
	e = sc.ErrorfAt("assert.metrics[0].promql", 2, 5, "here")
	assert.Equal(t, "p.yaml:11:17: assert.metrics[0].promql: here", e.Error(), "a second line a one-line value lacks: the field")
}

func TestCheckExpectationPointsAtTheVariable(t *testing.T) {
	src := "name: x\nenvironment: { compose: c }\nassert:\n  data:\n    - { mongo: { db: a, collection: b }, count: \"== load.okk - 1\" }\n"
	sc, err := Parse("e.yaml", []byte(src))
	require.NoError(t, err)
	c := NewCheck(sc, nil)
	c.Expectation("assert.data[0].count", sc.Assert.Data[0].Count)
	c.Expectation("assert.data[0].count", "about 3")
	require.Error(t, c.Err())
	msg := c.Err().Error()
	assert.Contains(t, msg, "e.yaml:5:49: assert.data[0].count: expectation \"about 3\"", "a bad expectation: at the value")
	assert.Contains(t, msg, "e.yaml:5:53: assert.data[0].count: unknown run variable \"load.okk\"", "an unknown variable: at its column")
}
