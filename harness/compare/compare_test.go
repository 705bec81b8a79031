package compare

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/load"
)

// synthRun writes a run directory whose load.json holds n latencies drawn
// from a skewed distribution (20ms plus an exponential tail) shifted by
// shift, as the load engine would save it.
func synthRun(t *testing.T, seed uint64, n int, shift time.Duration) *Run {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	h := load.NewHistogram()
	for range n {
		d := 20*time.Millisecond + time.Duration(rng.ExpFloat64()*float64(10*time.Millisecond)) + shift
		h.Record(d)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	res := load.Result{Model: "closed", Start: start, MeasuredStart: start, MeasuredEnd: start.Add(30 * time.Second),
		Requests: int64(n), OK: int64(n), Histogram: h}
	b, err := json.Marshal(&res)
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "load.json"), b, 0o644))
	r, err := Load(dir)
	require.NoError(t, err)
	return r
}

func defaults(t *testing.T) Options {
	ts, err := ParseThresholds(DefaultThresholds)
	require.NoError(t, err)
	return Options{Thresholds: ts}
}

func TestSameDistributionIsNoRegression(t *testing.T) {
	base, next := synthRun(t, 1, 5000, 0), synthRun(t, 2, 5000, 0)
	res := Compare(base, next, defaults(t))
	assert.False(t, res.Regression, "two draws of one distribution: %+v", res.Checks)
	assert.False(t, res.Latency.KS.Significant(res.Alpha), "KS p=%v", res.Latency.KS.P)
}

func TestFiftyMillisecondShiftIsRegressionNamingPercentile(t *testing.T) {
	base, next := synthRun(t, 1, 5000, 0), synthRun(t, 2, 5000, 50*time.Millisecond)
	res := Compare(base, next, defaults(t))
	require.True(t, res.Regression)
	assert.Less(t, res.Latency.KS.P, 1e-6)
	var failed []string
	for _, c := range res.Checks {
		if c.Regression {
			failed = append(failed, c.Threshold)
		}
	}
	assert.Contains(t, failed, "p(99) regression <= 10%")
	assert.Contains(t, failed, "p(50) regression <= 10%")
	var md bytes.Buffer
	require.NoError(t, res.Write(&md, FormatMarkdown))
	assert.Contains(t, md.String(), "REGRESSION")
	assert.Contains(t, md.String(), "| ✗ | p(99) regression <= 10% |")
}

// A shift the test calls real but smaller than the threshold is reported,
// not failed: significance is not importance.
func TestSmallSignificantShiftIsNotRegression(t *testing.T) {
	base, next := synthRun(t, 1, 20000, 0), synthRun(t, 2, 20000, time.Millisecond)
	res := Compare(base, next, defaults(t))
	assert.True(t, res.Latency.KS.Significant(res.Alpha), "with 20,000 samples 1ms is detectable")
	assert.False(t, res.Regression, "%+v", res.Checks)
}

// A big relative change on a handful of samples is noise to KS.
func TestFewSamplesAreNoise(t *testing.T) {
	base, next := synthRun(t, 1, 4, 0), synthRun(t, 2, 4, 5*time.Millisecond)
	res := Compare(base, next, defaults(t))
	assert.False(t, res.Regression, "%+v", res.Checks)
}

func TestParseThreshold(t *testing.T) {
	th, err := ParseThreshold("service-a p(99) regression <= 20ms")
	require.NoError(t, err)
	assert.Equal(t, "service-a", th.Service)
	assert.InDelta(t, 0.02, th.Limit, 1e-12)
	for _, bad := range []string{"p(99) < 10%", "p(101) regression <= 10%", "throughput regression <= 5ms", "p99 regression <= 1%", "service-a p(90) regression <= 1%"} {
		_, err := ParseThreshold(bad)
		assert.Error(t, err, bad)
	}
}

func TestLoadRefusesDirWithoutLoad(t *testing.T) {
	_, err := Load(t.TempDir())
	require.ErrorIs(t, err, ErrInput)
}

func TestJSONOutputRoundTrips(t *testing.T) {
	res := Compare(synthRun(t, 1, 500, 0), synthRun(t, 2, 500, 0), defaults(t))
	var b bytes.Buffer
	require.NoError(t, res.Write(&b, FormatJSON))
	var back Result
	require.NoError(t, json.Unmarshal(b.Bytes(), &back))
	assert.Equal(t, len(res.Checks), len(back.Checks))
}

func TestThroughputDropIsRegression(t *testing.T) {
	base, next := synthRun(t, 1, 3000, 0), synthRun(t, 2, 3000, 0)
	next.Load.MeasuredEnd = next.Load.MeasuredStart.Add(60 * time.Second) // half the rate
	res := Compare(base, next, defaults(t))
	require.True(t, res.Regression)
	assert.Equal(t, "throughput regression <= 10%", res.Checks[3].Threshold)
	assert.True(t, res.Checks[3].Regression, res.Checks[3].Measured)
	assert.Contains(t, res.Checks[3].Measured, "-50.0%")
}
