package load_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/assert/load"
	"github.com/meshproof/meshproof/harness/assert/verdict"
	engine "github.com/meshproof/meshproof/harness/load"
)

const (
	bodyE = `{"error":"service-a: service-b: service-e: connection refused","code":"Unavailable","service":"service-e"}`
	bodyA = `{"error":"service-a: deadline","code":"DeadlineExceeded","service":"service-a"}`
)

// killed is a run in which a downstream service died: 97 answers 200, three
// 503s naming service-e, and on the gRPC side two Unavailable.
func killed() *engine.Result {
	r := result()
	r.Status = map[string]int64{"200": 97, "503": 3, "Unavailable": 2}
	r.Bodies = map[string][]string{
		"200":         {"{}", "{}", "{}"},
		"503":         {bodyE, bodyE, bodyE},
		"Unavailable": {"service-e: connection refused", "service-e: connection refused"},
	}
	return r
}

// healthy answered only 200s: no 503, so nothing shows what one would say.
func healthy() *engine.Result {
	r := result()
	r.Status = map[string]int64{"200": 100}
	r.Bodies = map[string][]string{"200": {"{}", "{}", "{}"}}
	return r
}

func judge(t *testing.T, expr string, r *engine.Result) verdict.Result {
	t.Helper()
	th, err := load.Parse(expr)
	require.NoError(t, err, expr)
	v := th.Judge(r)
	assert.Equal(t, "load", v.Kind)
	assert.Equal(t, expr, v.Name)
	return v
}

func TestStatusCount(t *testing.T) {
	for _, tc := range []struct {
		expr     string
		r        *engine.Result
		status   verdict.Status
		measured string
	}{
		{"status(503) > 0", killed(), verdict.Pass, "3"},
		{"status(503) > 0", healthy(), verdict.Fail, "0"},
		{"status(200) == 97", killed(), verdict.Pass, "97"},
		{"status(200) == load.requests", healthy(), verdict.Fail, "100"},
		{"status(unavailable) == 2", killed(), verdict.Pass, "2"},
		{"status( Unavailable ) < 2", killed(), verdict.Fail, "2"},
		{"STATUS(error) == 0", killed(), verdict.Pass, "0"},
	} {
		v := judge(t, tc.expr, tc.r)
		assert.Equal(t, tc.status, v.Status, "%s: %s", tc.expr, v.Detail)
		assert.Equal(t, tc.measured, v.Measured, tc.expr)
	}
	v := judge(t, "status(503) > 0", healthy())
	assert.Equal(t, "status(503) is 0, want > 0 (statuses seen: 200×100)", v.Detail)
	assert.Equal(t, "Unavailable", load.MustParse("status(UNAVAILABLE) > 0").Code, "gRPC names are spelt as the engine records them")
}

func TestBodyContains(t *testing.T) {
	const expr = `body(503) contains '"service":"service-e"'`
	v := judge(t, expr, killed())
	assert.Equal(t, verdict.Pass, v.Status, v.Detail)
	assert.Equal(t, `every sampled 503 body contains '"service":"service-e"'`, v.Expected)
	assert.Equal(t, `3 of 3 sampled 503 bodies contain '"service":"service-e"'`, v.Measured)

	blamed := killed()
	blamed.Bodies["503"] = []string{bodyE, bodyA + "\n", bodyE}
	v = judge(t, expr, blamed)
	assert.Equal(t, verdict.Fail, v.Status)
	assert.Equal(t, `2 of 3 sampled 503 bodies contain '"service":"service-e"'`, v.Measured)
	assert.Equal(t, `sampled 503 body 2 of 3 does not contain '"service":"service-e"': `+bodyA, v.Detail,
		"the first body that breaks the rule is shown")

	v = judge(t, `body(Unavailable) contains "service-e"`, killed())
	assert.Equal(t, verdict.Pass, v.Status, "a gRPC failure's body is its status message: %s", v.Detail)
}

func TestBodyNotContains(t *testing.T) {
	v := judge(t, `body(503) !contains 'service-a"'`, killed())
	assert.Equal(t, verdict.Pass, v.Status, v.Detail)
	assert.Equal(t, `no sampled 503 body contains 'service-a"'`, v.Expected)
	assert.Equal(t, `3 of 3 sampled 503 bodies do not contain 'service-a"'`, v.Measured)

	v = judge(t, `body(503) !contains "service-e"`, killed())
	assert.Equal(t, verdict.Fail, v.Status)
	assert.Equal(t, `sampled 503 body 1 of 3 contains 'service-e': `+bodyE, v.Detail)
}

// A body rule with no body of its status fails: a rule about what the 503s
// say must not pass because none came.
func TestBodyWithoutEvidenceFails(t *testing.T) {
	for _, expr := range []string{`body(503) contains 'service-e'`, `body(503) !contains 'service-a'`} {
		v := judge(t, expr, healthy())
		assert.Equal(t, verdict.Fail, v.Status, expr)
		assert.Equal(t, "no 503 answer", v.Measured, expr)
		assert.Equal(t, "no 503 answer was seen, so no body shows what it says: no evidence is not a pass (statuses seen: 200×100)", v.Detail, expr)
	}
	// A load.json from before bodies were kept: 503s, but no body.
	old := killed()
	old.Bodies = nil
	v := judge(t, `body(503) contains 'service-e'`, old)
	assert.Equal(t, verdict.Fail, v.Status)
	assert.Contains(t, v.Detail, "3 requests were answered 503 but no body was sampled")

	v = load.MustParse(`body(503) contains 'x'`).Judge(nil)
	assert.Equal(t, verdict.Error, v.Status)
}

func TestBodyCutIsNamedWhenTheTextIsMissing(t *testing.T) {
	r := killed()
	r.Bodies["503"] = []string{strings.Repeat("x", engine.MaxBodyBytes)}
	v := judge(t, `body(503) contains 'service-e'`, r)
	assert.Equal(t, verdict.Fail, v.Status)
	assert.Contains(t, v.Detail, "bodies are kept up to 512 bytes")
	assert.Contains(t, v.Detail, strings.Repeat("x", 300)+"…", "a long body is shown cut")
}

func TestBodyRuleParses(t *testing.T) {
	th := load.MustParse(`  body(unavailable)  !contains  'a > b == c outside faults'  `)
	assert.Equal(t, load.Body, th.Metric)
	assert.Equal(t, "Unavailable", th.Code)
	assert.True(t, th.Negate)
	assert.Equal(t, "a > b == c outside faults", th.Text, "the text is literal: operators and suffixes included")
	assert.False(t, th.Outside)
	th = load.MustParse(`body(error) CONTAINS "it's"`)
	assert.Equal(t, "error", th.Code)
	assert.Equal(t, "it's", th.Text)
	assert.False(t, th.Negate)
}

func TestStatusAndBodyParseErrors(t *testing.T) {
	for expr, want := range map[string]string{
		"status(5003) > 0":                 `unknown status "5003"`,
		"status(700) > 0":                  "an HTTP code is 100 to 599",
		"status(nope) > 0":                 `unknown status "nope": want an HTTP code (503), a gRPC code name (Unavailable) or error`,
		"status() > 0":                     `unknown status ""`,
		"status(503) > 5ms":                "status is a count",
		"status(503) > 0 outside faults":   "nor counts per status",
		"body(503) contains service-e":     "must be quoted",
		"body(503) contains 'service-e\"":  "must be quoted",
		"body(503) contains":               "must be quoted",
		"body(503) contains ''":            "one non-empty quoted text",
		"body(503) contains 'a'b'":         "one non-empty quoted text",
		"body(503) has 'service-e'":        `want body(CODE) contains 'TEXT' or body(CODE) !contains 'TEXT'`,
		"body(503) == 0":                   `want body(CODE) contains 'TEXT'`,
		"body(503 contains 'x'":            `want body(CODE) contains 'TEXT'`,
		"body 503 contains 'x'":            "want METRIC OP VALUE",
		"body(Unavailabel) contains 'x'":   `unknown status "Unavailabel"`,
		"bodies(503) contains 'x'":         "want METRIC OP VALUE",
		"body(503) contains 'x' trailing'": "one non-empty quoted text",
	} {
		_, err := load.Parse(expr)
		if assert.Error(t, err, expr) {
			assert.Contains(t, err.Error(), want, expr)
			if !strings.Contains(expr, `"`) {
				assert.Contains(t, err.Error(), `threshold "`+expr+`"`, "the error names the threshold")
			}
		}
	}
}

func TestStatusAndBodyJudgeAfterJSONReload(t *testing.T) {
	b, err := json.Marshal(killed())
	require.NoError(t, err)
	var back engine.Result
	require.NoError(t, json.Unmarshal(b, &back))
	for _, expr := range []string{"status(503) == 3", `body(503) contains '"service":"service-e"'`, `body(Unavailable) !contains 'service-a'`} {
		before := load.MustParse(expr).Judge(killed())
		after := load.MustParse(expr).Judge(&back)
		assert.Equal(t, before, after, expr)
		assert.Equal(t, verdict.Pass, after.Status, "%s: %s", expr, after.Detail)
	}
}
