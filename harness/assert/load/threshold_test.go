package load_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/assert/load"
	"github.com/meshproof/meshproof/harness/assert/verdict"
	engine "github.com/meshproof/meshproof/harness/load"
)

// result builds a run of 1000 measured requests with latencies 1..1000 ms
// over 10 s, plus 100 warm-up requests, 5 of them and 15 measured ones failed.
func result() *engine.Result {
	h := engine.NewHistogram()
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	return &engine.Result{
		Start:         start,
		MeasuredStart: start.Add(2 * time.Second),
		MeasuredEnd:   start.Add(12 * time.Second),
		Requests:      1100,
		OK:            1080,
		Errors:        20,
		Warmup:        engine.Counts{Requests: 100, OK: 95, Errors: 5},
		Histogram:     h,
	}
}

func TestParseAndJudge(t *testing.T) {
	r := result()
	for _, tc := range []struct {
		expr     string
		status   verdict.Status
		measured string
	}{
		// HDR histograms answer with the highest value equivalent to the
		// percentile's bucket: within 0.1% (three significant digits).
		{"p(99) < 1s", verdict.Pass, "990.21ms"},
		{"p(99) < 990ms", verdict.Fail, "990.21ms"},
		{"p(99.9) <= 1000ms", verdict.Pass, "999.42ms"},
		{"p(50) != 500ms", verdict.Pass, "500.22ms"},
		{"p99 > 0.5s", verdict.Pass, "990.21ms"},
		{"p(90) < 901", verdict.Pass, "900.1ms"}, // bare number = ms, as in k6
		{"p(90) > 901", verdict.Fail, "900.1ms"},
		{"med >= 500ms", verdict.Pass, "500.22ms"},
		{"avg < 400ms", verdict.Fail, "500.5ms"},
		{"min == 1ms", verdict.Pass, "1ms"},
		{"max > 1s", verdict.Pass, "1.00045s"},
		{"max < 1s", verdict.Fail, "1.00045s"},
		{"error_rate < 2%", verdict.Pass, "1.818%"},
		{"error_rate < 0.01", verdict.Fail, "1.818%"},
		{"error_rate == 0", verdict.Fail, "1.818%"},
		{"throughput > 99/s", verdict.Pass, "100.0/s"},
		{"throughput >= 101", verdict.Fail, "100.0/s"},
		{"rps == 100/s", verdict.Pass, "100.0/s"},
		{"count == 1100", verdict.Pass, "1100"},
		{"requests > 1100", verdict.Fail, "1100"},
		{"ok == load.ok", verdict.Pass, "1080"},
		{"ok == load.requests - 20", verdict.Pass, "1080"},
		{"errors < 20", verdict.Fail, "20"},
		{"errors <= 20", verdict.Pass, "20"},
	} {
		th, err := load.Parse(tc.expr)
		require.NoError(t, err, tc.expr)
		v := th.Judge(r)
		assert.Equal(t, "load", v.Kind, tc.expr)
		assert.Equal(t, tc.expr, v.Name, tc.expr)
		assert.Equal(t, tc.status, v.Status, "%s: %s", tc.expr, v.Detail)
		assert.Equal(t, tc.measured, v.Measured, tc.expr)
		if tc.status == verdict.Fail {
			assert.NotEmpty(t, v.Detail, tc.expr)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, expr := range []string{
		"",
		"p(99)",
		"< 10ms",
		"p(101) < 10ms",
		"p(x) < 10ms",
		"latency < 10ms",
		"p(99) < 10%",
		"p(99) < 10/s",
		"error_rate < 10ms",
		"throughput > 5ms",
		"count > 5%",
		"p(99) ~ 10ms",
	} {
		_, err := load.Parse(expr)
		assert.Error(t, err, "%q", expr)
	}
}

func TestJudgeWithoutSamplesIsError(t *testing.T) {
	r := &engine.Result{Requests: 3, Errors: 3}
	v := load.MustParse("p(95) < 10ms").Judge(r)
	assert.Equal(t, verdict.Error, v.Status)
	assert.Contains(t, v.Detail, "no measured requests")
	v = load.MustParse("error_rate == 100%").Judge(r)
	assert.Equal(t, verdict.Pass, v.Status, v.Detail)
}

func TestJudgeAllKeepsGoingPastBadExpressions(t *testing.T) {
	vs := load.JudgeAll([]string{"p(99) < 1s", "bogus", "count == 1100"}, result())
	require.Len(t, vs, 3)
	assert.Equal(t, verdict.Pass, vs[0].Status)
	assert.Equal(t, verdict.Error, vs[1].Status)
	assert.Equal(t, "bogus", vs[1].Name)
	assert.Equal(t, verdict.Pass, vs[2].Status)
}

func TestJudgeAfterJSONReload(t *testing.T) {
	b, err := json.Marshal(result())
	require.NoError(t, err)
	var back engine.Result
	require.NoError(t, json.Unmarshal(b, &back))
	for _, expr := range []string{"p(99.99) <= 1001ms", "p(10) < 100.1ms", "p(75) > 750ms", "avg < 501ms", "throughput == 100/s"} {
		before := load.MustParse(expr).Judge(result())
		after := load.MustParse(expr).Judge(&back)
		assert.Equal(t, before, after, expr)
		assert.Equal(t, verdict.Pass, after.Status, "%s: %s", expr, after.Detail)
	}
}

// faulty is a 10 s run, one point per second, 100 requests a second; the
// seconds 3..5 (intervals ending at 4, 5 and 6 s) hold 40 errors each.
func faulty() *engine.Result {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &engine.Result{Start: start}
	for i := 1; i <= 10; i++ {
		p := engine.Point{T: float64(i), Requests: 100}
		if i >= 4 && i <= 6 {
			p.Errors = 40
		}
		r.Series = append(r.Series, p)
		r.Requests += p.Requests
		r.Errors += p.Errors
	}
	r.OK = r.Requests - r.Errors
	return r
}

func TestOutsideFaults(t *testing.T) {
	r := faulty()
	at := func(s float64) time.Time { return r.Start.Add(time.Duration(s * float64(time.Second))) }
	// The fault spans 3.2 s .. 4.5 s; recovery takes until 6 s.
	ws := []load.Window{{From: at(3.2), To: at(4.5)}}
	for _, tc := range []struct {
		expr     string
		windows  []load.Window
		status   verdict.Status
		measured string
	}{
		// Without grace the interval 5..6 s (40 errors) still counts.
		{"errors == 40 outside faults", ws, verdict.Pass, "40"},
		{"error_rate == 0 outside faults", ws, verdict.Fail, "5%"},
		// With 2 s of grace the window reaches 6.5 s: 3..7 s is left out.
		{"error_rate == 0 outside faults +2s", ws, verdict.Pass, "0%"},
		{"count == 600 outside faults +2s", ws, verdict.Pass, "600"},
		{"ok == 600 OUTSIDE FAULTS + 2s", ws, verdict.Pass, "600"},
		// An effect that never ended covers the rest of the run.
		{"count == 300 outside faults", []load.Window{{From: at(3.5)}}, verdict.Pass, "300"},
		// No faults: the whole run counts, so the errors show.
		{"error_rate < 1% outside faults", nil, verdict.Fail, "12%"},
		// Every second overlaps a fault: nothing to judge.
		{"error_rate == 0 outside faults", []load.Window{{From: at(0)}}, verdict.Error, ""},
	} {
		th, err := load.Parse(tc.expr)
		require.NoError(t, err, tc.expr)
		v := th.JudgeFaults(r, tc.windows)
		assert.Equal(t, tc.status, v.Status, "%s: %s", tc.expr, v.Detail)
		assert.Equal(t, tc.measured, v.Measured, tc.expr)
		assert.Equal(t, tc.expr, v.Name)
	}
	// Judge is JudgeFaults with no windows.
	assert.Equal(t, load.MustParse("error_rate < 1% outside faults").JudgeFaults(r, nil), load.MustParse("error_rate < 1% outside faults").Judge(r))
	// A plain threshold ignores the windows.
	v := load.MustParse("errors == 120").JudgeFaults(r, ws)
	assert.Equal(t, verdict.Pass, v.Status, v.Detail)
}

func TestOutsideFaultsParseErrors(t *testing.T) {
	for _, expr := range []string{
		"p(99) < 1s outside faults",
		"throughput > 5 outside faults",
		"error_rate == 0 outside faults 2s",
		"error_rate == 0 outside faults +soon",
		"error_rate == 0 outside faults +-1s",
	} {
		_, err := load.Parse(expr)
		assert.Error(t, err, expr)
	}
	th := load.MustParse("error_rate == 0 outside faults +1500ms")
	assert.True(t, th.Outside)
	assert.Equal(t, 1500*time.Millisecond, th.Grace)
}
