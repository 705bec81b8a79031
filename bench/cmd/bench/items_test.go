package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseItems(t *testing.T) {
	want, err := parseItems("open-model, traces")
	require.NoError(t, err)
	assert.Equal(t, map[string]bool{itemOpenModel: true, itemTraces: true}, want)
	assert.False(t, needsPrepare(want))
	want, err = parseItems(allItems())
	require.NoError(t, err)
	assert.Len(t, want, len(benchItems))
	assert.True(t, needsPrepare(want))
	_, err = parseItems("1,2")
	assert.ErrorContains(t, err, `unknown item "1"`, "numbers are gone")
	_, err = parseItems(" , ")
	assert.Error(t, err)
}

// The search doubles until a probe fails, then bisects, and stops.
func TestRateSearch(t *testing.T) {
	capacity := 27_000.0
	s := &rateSearch{Tool: "t"}
	var probed []float64
	for {
		rate, ok := s.next()
		if !ok {
			break
		}
		probed = append(probed, rate)
		o := openRun{Rate: rate, Achieved: min(rate, capacity)}
		s.record(o)
	}
	assert.Equal(t, []float64{5000, 10000, 20000, 40000, 30000, 25000, 27500}, probed)
	assert.InDelta(t, 25000, s.Lo, 0)
	assert.InDelta(t, 27500, s.Hi, 0)

	// Errors or drops fail a probe even at the full rate.
	assert.False(t, openRun{Rate: 100, Achieved: 100, Errors: 1}.sustained())
	assert.False(t, openRun{Rate: 100, Achieved: 100, Dropped: 1}.sustained())
	assert.True(t, openRun{Rate: 100, Achieved: 99}.sustained())
	assert.False(t, openRun{Rate: 100, Achieved: 98.9}.sustained())
}
