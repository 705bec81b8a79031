package logs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/assert/expect"
	"github.com/meshproof/meshproof/harness/assert/verdict"
	"github.com/meshproof/meshproof/harness/scenario"
)

// fixtureEvidence covers the fixture logs from their first "greeting" line
// on: the startup lines before it (one of them an error) predate the load.
func fixtureEvidence(t *testing.T) Evidence {
	t.Helper()
	ev := Evidence{}
	for _, svc := range []string{"service-a", "service-b"} {
		f := svc + ".log"
		b, err := os.ReadFile(filepath.Join("testdata", f))
		require.NoError(t, err)
		start := strings.Index(string(b), `"msg":"greeting"`)
		require.Positive(t, start)
		start = strings.LastIndex(string(b[:start]), "\n") + 1
		ev[svc] = Range{File: f, Start: int64(start), End: int64(len(b))}
	}
	return ev
}

var underTest = []string{"service-a", "service-b"}

func judge(t *testing.T, spec scenario.LogAssertion) verdict.Result {
	t.Helper()
	return Judge(spec, fixtureEvidence(t), underTest, "testdata", expect.Vars{"load.ok": 3})
}

func TestNoneErrorIgnoresLinesBeforeLoadStart(t *testing.T) {
	r := judge(t, scenario.LogAssertion{Service: "service-a", None: map[string]string{"level": "error"}})
	assert.Equal(t, verdict.Pass, r.Status, r.Detail)
	assert.Equal(t, "logs", r.Kind)
	assert.Equal(t, "logs service-a: none {level=error}", r.Name)
	assert.Equal(t, "0 lines with {level=error} (3 lines from service-a)", r.Measured)
}

func TestNoneErrorOverEveryServiceUnderTest(t *testing.T) {
	r := judge(t, scenario.LogAssertion{Service: "*", None: map[string]string{"level": "error"}})
	assert.Equal(t, verdict.Fail, r.Status)
	assert.Equal(t, "1 lines with {level=error} (8 lines from service-a, service-b)", r.Measured)
	assert.Contains(t, r.Detail, `service-b: {"level":"ERROR"`, "levels compare case-insensitively; the line is shown with its service")
}

func TestEveryHasTraceID(t *testing.T) {
	r := judge(t, scenario.LogAssertion{Service: "service-a", Every: &scenario.EveryRule{Has: "trace_id"}})
	assert.Equal(t, verdict.Pass, r.Status, r.Detail)

	r = judge(t, scenario.LogAssertion{Service: "service-*", Every: &scenario.EveryRule{Has: "trace_id", Where: map[string]string{"level": "error"}}})
	assert.Equal(t, verdict.Fail, r.Status, "the error line's trace_id is empty")
	assert.Equal(t, "1 lines without trace_id (8 lines from service-a, service-b)", r.Measured)
	assert.Contains(t, r.Detail, "call service-e")
}

func TestContainsNotContainsAndCount(t *testing.T) {
	r := judge(t, scenario.LogAssertion{Service: "service-b", Contains: `slow downstream`})
	assert.Equal(t, verdict.Pass, r.Status, r.Detail)

	r = judge(t, scenario.LogAssertion{Service: "service-a", Contains: `listening`})
	assert.Equal(t, verdict.Fail, r.Status, "the listening line predates the load")

	r = judge(t, scenario.LogAssertion{Service: "*", NotContains: `rpc error`})
	assert.Equal(t, verdict.Fail, r.Status)
	assert.Contains(t, r.Detail, "service-b: ")

	r = judge(t, scenario.LogAssertion{Service: "service-a", Contains: `"msg":"greeting"`, Count: "== load.ok"})
	assert.Equal(t, verdict.Pass, r.Status, r.Detail)
	assert.Contains(t, r.Measured, "3 matching lines")

	r = judge(t, scenario.LogAssertion{Service: "*", Contains: `"msg":"greeting"`, Count: "== load.ok"})
	assert.Equal(t, verdict.Fail, r.Status)
	assert.Contains(t, r.Detail, "count 5, want == load.ok (3)")

	r = judge(t, scenario.LogAssertion{Service: "*", None: map[string]string{"level": "warning"}, Count: "<= 1"})
	assert.Equal(t, verdict.Pass, r.Status, "none with count counts the lines instead of forbidding them")
}

func TestJudgeErrors(t *testing.T) {
	for _, spec := range []scenario.LogAssertion{
		{Service: "service-z", Contains: "x"},
		{Service: "service-a"},
		{Service: "service-a", Contains: "("},
		{Service: "service-a", Contains: "x", Count: "about 3"},
	} {
		r := judge(t, spec)
		assert.Equal(t, verdict.Error, r.Status, spec)
		assert.NotEmpty(t, r.Detail)
	}
	r := Judge(scenario.LogAssertion{Service: "*", Contains: "x"}, fixtureEvidence(t), []string{"service-c"}, "testdata", nil)
	assert.Equal(t, verdict.Error, r.Status)
	assert.Contains(t, r.Detail, `"service-c" is under test but no log was recorded`)
}

func TestSizesAndEvidence(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "a.log")
	require.NoError(t, os.WriteFile(f, []byte("{\"level\":\"info\"}\n"), 0o644))
	files := map[string]string{"a": f, "b": filepath.Join(dir, "b.log")}
	start, err := Sizes(files)
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{"a": 17, "b": 0}, start)

	fh, err := os.OpenFile(f, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = fh.WriteString("{\"level\":\"error\",\"msg\":\"boom\"}\n")
	require.NoError(t, err)
	require.NoError(t, fh.Close())
	end, err := Sizes(files)
	require.NoError(t, err)
	ev := NewEvidence(map[string]string{"a": f}, start, end)
	r := Judge(scenario.LogAssertion{Service: "a", None: map[string]string{"level": "error"}}, ev, nil, "", nil)
	assert.Equal(t, verdict.Fail, r.Status)
	assert.Equal(t, "1 lines with {level=error} (1 lines from a)", r.Measured)
}

// A panic's stack is not JSON and carries no trace id: an unconditional
// every rule must not let it through.
func TestEveryFailsOnNonJSONLines(t *testing.T) {
	dir := t.TempDir()
	text := `{"level":"INFO","msg":"greeting","trace_id":"abc"}` + "\npanic: boom\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "svc.log"), []byte(text), 0o644))
	ev := Evidence{"svc": Range{File: "svc.log", Start: 0, End: int64(len(text))}}
	r := Judge(scenario.LogAssertion{Service: "svc", Every: &scenario.EveryRule{Has: "trace_id"}}, ev, nil, dir, nil)
	assert.Equal(t, verdict.Fail, r.Status)
	assert.Contains(t, r.Detail, "panic: boom")
}
