package bench

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/assert/traces"
	"github.com/meshproof/meshproof/harness/assert/verdict"
	"github.com/meshproof/meshproof/harness/scenario"
)

// The benchmark's synthetic traces must be what the judge accepts as the
// greeting mesh's shape, or item 6 would time the mismatch path instead.
func TestSyntheticTracesMatchTheGreetingShape(t *testing.T) {
	ts := GenerateGreetingTraces(50, 1_700_000_000_000_000_000, 7)
	require.Len(t, ts, 50)
	recs := make([]traces.Record, len(ts))
	ids := map[string]bool{}
	for i, tr := range ts {
		recs[i] = traces.Record{ID: tr.TraceID, State: traces.StateCovered, Raw: tr.APIv3()}
		ids[tr.TraceID] = true
		spans, err := traces.DecodeSpans(tr.APIv3(), false)
		require.NoError(t, err)
		assert.Len(t, spans, GreetingSpanCount)
	}
	assert.Len(t, ids, 50, "trace ids are distinct")
	assert.Equal(t, 18, GreetingSpanCount)

	spec := scenario.TraceAssertion{Name: "synthetic", Require: "100%", Shape: GreetingShape, Sample: len(recs)}
	vs := traces.Judge(spec, traces.Evidence{Traces: recs}, nil)
	require.NotEmpty(t, vs)
	assert.Equal(t, verdict.Pass, vs[0].Status, vs[0].Detail)

	// The same seed gives the same traces.
	assert.Equal(t, ts[3].TraceID, GenerateGreetingTraces(4, 1_700_000_000_000_000_000, 7)[3].TraceID)
}

func TestOTLPRequestIsValidJSON(t *testing.T) {
	ts := GenerateGreetingTraces(3, 1_700_000_000_000_000_000, 1)
	var req struct {
		ResourceSpans []json.RawMessage `json:"resourceSpans"`
	}
	require.NoError(t, json.Unmarshal(OTLPRequest(ts), &req))
	assert.Len(t, req.ResourceSpans, 3*9, "one resource per service per trace")
	spans, err := traces.DecodeSpans(OTLPRequest(ts), false)
	require.NoError(t, err)
	assert.Len(t, spans, 3*GreetingSpanCount)
}
