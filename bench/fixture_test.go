package bench

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/assert/traces"
	"github.com/meshproof/meshproof/harness/scenario"
)

// The committed fixture must judge to the tallies written beside it, or
// the traces item would time a judging that disagrees with itself.
func TestFixtureJudgesToItsTallies(t *testing.T) {
	fs, err := ReadFetched("testdata/fanout-traces.json.gz")
	require.NoError(t, err)
	raw, err := os.ReadFile("testdata/fanout-traces.expect.json")
	require.NoError(t, err)
	var want FixtureExpect
	require.NoError(t, json.Unmarshal(raw, &want))
	got, err := TallyShape(GreetingShape, fs[0].Traces)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.Equal(t, MutateEach, got.Mismatch)
	assert.Equal(t, MutateEach, got.Incomplete)
}

func TestMutateFixtureRoundTrip(t *testing.T) {
	fs, err := ReadFetched("testdata/fanout-traces.json.gz")
	require.NoError(t, err)
	var real []traces.Record
	for _, r := range fs[0].Traces {
		if r.State == traces.StateCovered {
			real = append(real, r)
		}
	}
	fs[0].Traces = real[:2*MutateEach]
	require.NoError(t, MutateFixture(fs))
	path := filepath.Join(t.TempDir(), "f.json.gz")
	require.NoError(t, WriteFixture(path, fs))
	back, err := ReadFetched(path)
	require.NoError(t, err)
	got, err := TallyShape(GreetingShape, back[0].Traces)
	require.NoError(t, err)
	assert.Equal(t, FixtureExpect{Traces: 4 * MutateEach, Spans: got.Spans, Match: 2 * MutateEach, Mismatch: MutateEach, Incomplete: MutateEach}, got)

	fs[0].Traces = real[:3]
	assert.Error(t, MutateFixture(fs), "too few covered traces to mutate")
}

func TestReplicateKeepsIDsDistinct(t *testing.T) {
	recs := Replicate([]traces.Record{{ID: "a", Spans: 2}, {ID: "b", Spans: 3}}, 3)
	require.Len(t, recs, 6)
	seen := map[string]bool{}
	for _, r := range recs {
		seen[r.ID] = true
	}
	assert.Len(t, seen, 6)
	assert.Equal(t, 15, SpanCount(recs))
}

// BenchmarkJudgeFixture times traces.Judge over the real fixture on one
// core, the traces item's terms, for profiling:
//
//	go test -run - -bench JudgeFixture -cpu 1 -cpuprofile judge.pprof ./bench
func BenchmarkJudgeFixture(b *testing.B) {
	fs, err := ReadFetched("testdata/fanout-traces.json.gz")
	require.NoError(b, err)
	recs := fs[0].Traces
	spec := scenario.TraceAssertion{Name: "bench", Require: "100%", Shape: GreetingShape, Sample: len(recs)}
	ev := traces.Evidence{Traces: recs}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		traces.Judge(spec, ev, nil)
	}
	b.ReportMetric(float64(SpanCount(recs))*float64(b.N)/b.Elapsed().Seconds(), "spans/s")
}
