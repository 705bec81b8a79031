package load

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLevelRampsLinearlyAfterWarmup(t *testing.T) {
	cfg, _, err := Config{
		Target: "http://127.0.0.1:1", Model: Open, Rate: 10, Warmup: time.Second,
		Stages: []Stage{{Duration: 2 * time.Second, Target: 30}, {Duration: time.Second, Target: 0}},
	}.normalized()
	require.NoError(t, err)
	assert.Equal(t, 3*time.Second, cfg.Duration, "stages replace the duration")
	for _, tc := range []struct {
		at   time.Duration
		want float64
	}{
		{0, 10}, {999 * time.Millisecond, 10}, // warm-up at the starting level
		{time.Second, 10}, {2 * time.Second, 20}, {3 * time.Second, 30},
		{3500 * time.Millisecond, 15}, {4 * time.Second, 0}, {time.Hour, 0},
	} {
		assert.InDelta(t, tc.want, cfg.level(tc.at), 1e-9, "level at %s", tc.at)
	}
	assert.Equal(t, 30.0, cfg.peak())
	assert.Equal(t, 300, cfg.MaxInflight, "default MaxInflight covers peak rate × timeout")
}

func TestWarmupBeforeRampFromZeroUsesFirstStage(t *testing.T) {
	cfg, _, err := Config{
		Target: "http://127.0.0.1:1", Warmup: time.Second,
		Stages: []Stage{{Duration: time.Second, Target: 4}},
	}.normalized()
	require.NoError(t, err)
	assert.Equal(t, 4.0, cfg.level(0))
	assert.Equal(t, 0.0, cfg.level(time.Second))
	assert.Equal(t, 2.0, cfg.level(1500*time.Millisecond))
}

func TestTraceparentFormat(t *testing.T) {
	tp := newTraceparent()
	id1, h1 := tp.next()
	id2, h2 := tp.next()
	assert.NotEqual(t, id1, id2)
	assert.Len(t, h1, 55)
	assert.Equal(t, "00-"+id1.String()+"-", h1[:36])
	assert.Equal(t, "-01", h1[52:])
	assert.Equal(t, "00-"+id2.String()+"-", h2[:36])
	assert.NotEqual(t, h1[36:52], h2[36:52], "a fresh parent span id per request")
}
