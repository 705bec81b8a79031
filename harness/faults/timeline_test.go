package faults_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/faults"
)

func TestOutsideFaults(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	tl := faults.Timeline{
		{Step: 0, Service: "e", Action: "kill", Fired: true, Start: at(5), Done: at(5), End: at(10.5)},
		{Step: 1, Service: "c", Action: "latency", Fired: true, Start: at(20), Done: at(20)}, // never lifted
		{Step: 2, Service: "b", Action: "pause"},                                             // never fired
	}
	for _, c := range []struct {
		at      float64
		outside bool
	}{{4.9, true}, {5, false}, {7, false}, {10.5, false}, {10.6, true}, {19.9, true}, {20, false}, {3600, false}} {
		assert.Equal(t, c.outside, tl.Outside(at(c.at)), "t=%vs", c.at)
	}
	assert.False(t, tl.OutsideGrace(at(12), 2*time.Second), "within 2s of e's return")
	assert.True(t, tl.OutsideGrace(at(12.6), 2*time.Second))

	ws := tl.Windows()
	require.Len(t, ws, 2, "an unfired step has no window")
	assert.Equal(t, faults.Window{Step: 0, Service: "e", Action: "kill", From: at(5), To: at(10.5)}, ws[0])
	assert.True(t, ws[1].To.IsZero())
	assert.True(t, tl[1].Open())
	assert.False(t, tl[2].Open())
	assert.NoError(t, tl.Err())
}

func TestTimelineJSON(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	tl := faults.Timeline{
		{Step: 0, Service: "e", Action: "kill", Fired: true, Start: t0, Done: t0, End: t0.Add(time.Second), EndedBy: "start"},
		{Step: 1, Service: "c", Action: "drop", Link: "c:1"},
	}
	b, err := json.Marshal(tl)
	require.NoError(t, err)
	assert.JSONEq(t, `[
	  {"step":0,"service":"e","action":"kill","fired":true,"start":"2026-01-01T12:00:00Z","done":"2026-01-01T12:00:00Z","end":"2026-01-01T12:00:01Z","ended_by":"start"},
	  {"step":1,"service":"c","action":"drop","link":"c:1","fired":false}
	]`, string(b))
	var back faults.Timeline
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, tl, back)
}
