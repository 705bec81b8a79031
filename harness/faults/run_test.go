package faults_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/faults"
	"github.com/meshproof/meshproof/harness/scenario"
)

// tolerance is how far from its planned instant a step may fire.
const tolerance = 100 * time.Millisecond

func mustPlan(t *testing.T, fs ...scenario.Fault) *faults.Plan {
	t.Helper()
	p, err := faults.NewPlan(fs)
	require.NoError(t, err)
	require.NoError(t, p.Bind(testTopology()))
	return p
}

func run(t *testing.T, ctx context.Context, env *fakeEnv, p *faults.Plan, trig faults.Trigger) faults.Timeline {
	t.Helper()
	tl, err := faults.Run(ctx, env, p, trig, faults.WithLinks(fakeLinks{env.recorder}))
	require.NoError(t, err)
	require.Len(t, tl, len(p.Steps))
	return tl
}

func TestRunFiresAtOffsets(t *testing.T) {
	env := newFakeEnv()
	p := mustPlan(t,
		scenario.Fault{Action: "pause", Service: "e", At: dur(400 * time.Millisecond)},
		scenario.Fault{Action: "kill", Service: "service-c", At: dur(200 * time.Millisecond)},
		scenario.Fault{Action: "stop", Service: "single"}, // no trigger: at load start
	)
	start := time.Now()
	tl := run(t, context.Background(), env, p, faults.Trigger{Start: start})

	for _, c := range []struct {
		op, svc string
		at      time.Duration
	}{{"pause", "e", 400 * time.Millisecond}, {"kill", "service-c", 200 * time.Millisecond}, {"stop", "single", 0}} {
		got, ok := env.find(c.op, c.svc)
		require.True(t, ok, "%s %s not called", c.op, c.svc)
		assert.InDelta(t, c.at, got.At.Sub(start), float64(tolerance), "%s %s fired at %v", c.op, c.svc, got.At.Sub(start))
		assert.False(t, got.At.Before(start.Add(c.at)), "%s %s fired early", c.op, c.svc)
	}
	assert.Equal(t, []string{"stop single", "kill service-c", "pause e"}, env.ops())
	for _, e := range tl {
		assert.True(t, e.Fired)
		assert.Empty(t, e.Err)
		assert.True(t, e.Open(), "no for: and nothing lifted it: the effect lasts")
	}
	assert.Equal(t, 1, tl[1].Step)
}

func TestRunCountsOffsetsFromLoadStart(t *testing.T) {
	env := newFakeEnv()
	p := mustPlan(t, scenario.Fault{Action: "kill", Service: "e", At: dur(500 * time.Millisecond)})
	start := time.Now().Add(-300 * time.Millisecond) // the load began before Run was called
	run(t, context.Background(), env, p, faults.Trigger{Start: start})
	got, ok := env.find("kill", "e")
	require.True(t, ok)
	assert.InDelta(t, 500*time.Millisecond, got.At.Sub(start), float64(tolerance))
}

func TestRunFiresAfterNRequests(t *testing.T) {
	env := newFakeEnv()
	p := mustPlan(t,
		scenario.Fault{Action: "kill", Service: "e", After: 50},
		scenario.Fault{Action: "pause", Service: "service-c", After: 120},
	)
	var n atomic.Int64
	env.count = n.Load
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	loadDone := make(chan struct{})
	go func() { // a fake load: one request per 2ms
		defer close(loadDone)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for n.Load() < 200 {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				n.Add(1)
			}
		}
	}()
	tl := run(t, ctx, env, p, faults.Trigger{Requests: n.Load, Poll: 5 * time.Millisecond})
	cancel()
	<-loadDone
	kill, ok := env.find("kill", "e")
	require.True(t, ok)
	pause, ok := env.find("pause", "service-c")
	require.True(t, ok)
	assert.True(t, tl[0].Fired)
	assert.True(t, tl[1].Fired)
	assert.GreaterOrEqual(t, kill.N, int64(50))
	assert.GreaterOrEqual(t, pause.N, int64(120))
	// Within a poll or two of the count: a few requests at most.
	assert.Less(t, kill.N, int64(50+10))
	assert.Less(t, pause.N, int64(120+10))
}

func TestRunAfterNIsNotEarly(t *testing.T) {
	env := newFakeEnv()
	p := mustPlan(t, scenario.Fault{Action: "kill", Service: "e", After: 10})
	var n atomic.Int64
	n.Store(9)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan faults.Timeline)
	go func() { done <- run(t, ctx, env, p, faults.Trigger{Requests: n.Load, Poll: time.Millisecond}) }()
	time.Sleep(50 * time.Millisecond) // give a wrong trigger the chance to fire
	assert.Empty(t, env.ops(), "9 of 10 requests must not fire the step")
	n.Store(10)
	require.Eventually(t, func() bool { return len(env.ops()) == 1 }, time.Second, time.Millisecond)
	cancel()
	tl := <-done
	assert.True(t, tl[0].Fired)
}

func TestForUndoesEachEffect(t *testing.T) {
	env := newFakeEnv()
	const forD = 200 * time.Millisecond
	p := mustPlan(t,
		scenario.Fault{Action: "kill", Service: "e", For: dur(forD)},
		scenario.Fault{Action: "stop", Service: "single", For: dur(forD)},
		scenario.Fault{Action: "pause", Service: "rabbitmq", For: dur(forD)},
		scenario.Fault{Action: "latency", Service: "service-c", Latency: dur(150 * time.Millisecond), For: dur(forD)},
		scenario.Fault{Action: "drop", Service: "db", For: dur(forD)},
	)
	env.took["start"] = 50 * time.Millisecond // a start waits for the probe
	tl := run(t, context.Background(), env, p, faults.Trigger{})

	undo := map[string]string{"e": "start", "single": "start", "rabbitmq": "unpause", "service-c:50051": "heal", "db:9": "heal"}
	for target, op := range undo {
		c, ok := env.find(op, target)
		require.True(t, ok, "%s %s missing; calls: %v", op, target, env.ops())
		_ = c
	}
	_, ok := env.find("latency 150ms", "service-c:50051")
	assert.True(t, ok, "latency applied to the link; calls: %v", env.ops())
	for _, e := range tl {
		require.Empty(t, e.Err)
		require.Empty(t, e.UndoErr)
		require.False(t, e.Open(), "faults[%d] must be undone", e.Step)
		assert.InDelta(t, forD, e.End.Sub(e.Done), float64(tolerance), "faults[%d] undone %v after it was done", e.Step, e.End.Sub(e.Done))
		assert.GreaterOrEqual(t, e.End.Sub(e.Done), forD)
	}
	assert.Equal(t, "start", tl[0].EndedBy)
	assert.Equal(t, "unpause", tl[2].EndedBy)
	assert.Equal(t, "heal", tl[3].EndedBy)
	assert.Equal(t, "service-c:50051", tl[3].Link)
	// The kill window lasts until the service answered again.
	startCall, _ := env.find("start", "e")
	assert.GreaterOrEqual(t, tl[0].End.Sub(startCall.At), 50*time.Millisecond)
}

func TestLaterStepEndsAnOpenEffect(t *testing.T) {
	env := newFakeEnv()
	env.took["start"] = 30 * time.Millisecond
	p := mustPlan(t,
		scenario.Fault{Action: "kill", Service: "e"},
		scenario.Fault{Action: "pause", Service: "single"},
		scenario.Fault{Action: "start", Service: "e", At: dur(150 * time.Millisecond)},
		scenario.Fault{Action: "unpause", Service: "single", At: dur(100 * time.Millisecond)},
	)
	tl := run(t, context.Background(), env, p, faults.Trigger{})
	assert.Equal(t, tl[2].Done, tl[0].End, "kill ends when the start is done")
	assert.Equal(t, "faults[2]", tl[0].EndedBy)
	assert.Equal(t, tl[3].Done, tl[1].End)
	assert.Equal(t, "faults[3]", tl[1].EndedBy)
	assert.Equal(t, tl[2].Done, tl[2].End, "a start's own window is its duration")
	w := tl.Windows()
	require.Len(t, w, 4)
	for i := 1; i < len(w); i++ {
		assert.False(t, w[i].From.Before(w[i-1].From), "windows sorted by start")
	}
	assert.Contains(t, []int{2, 3}, w[3].Step, "start and unpause fired last")
}

func TestRestartUsesNativeRestartWhenThere(t *testing.T) {
	p := mustPlan(t, scenario.Fault{Action: "restart", Service: "rabbitmq"})

	plain := newFakeEnv()
	tl := run(t, context.Background(), plain, p, faults.Trigger{})
	assert.Equal(t, []string{"stop rabbitmq", "start rabbitmq"}, plain.ops())
	assert.False(t, tl[0].Open())

	native := restartEnv{newFakeEnv()}
	_, err := faults.Run(context.Background(), native, p, faults.Trigger{})
	require.NoError(t, err)
	assert.Equal(t, []string{"restart rabbitmq"}, native.ops())
}

func TestStepsOnOneServiceDoNotOverlap(t *testing.T) {
	env := newFakeEnv()
	env.took["stop"] = 150 * time.Millisecond
	p := mustPlan(t,
		scenario.Fault{Action: "stop", Service: "e"},
		scenario.Fault{Action: "start", Service: "e", At: dur(10 * time.Millisecond)},
		scenario.Fault{Action: "pause", Service: "single", At: dur(10 * time.Millisecond)},
	)
	tl := run(t, context.Background(), env, p, faults.Trigger{})
	assert.False(t, tl[1].Start.Before(tl[0].Done), "start waited for the stop to finish")
	assert.True(t, tl[2].Start.Before(tl[0].Done), "another service is not held up")
	assert.Equal(t, tl[1].Done, tl[0].End)
}

func TestFailedStepIsRecordedAndNotUndone(t *testing.T) {
	env := newFakeEnv()
	env.fail["kill"] = errors.New("no such process")
	p := mustPlan(t, scenario.Fault{Action: "kill", Service: "e", For: dur(50 * time.Millisecond)})
	tl := run(t, context.Background(), env, p, faults.Trigger{})
	assert.Equal(t, []string{"kill e"}, env.ops(), "nothing to undo after a failed kill")
	assert.Contains(t, tl[0].Err, "kill e: no such process")
	assert.False(t, tl[0].Open())
	require.Error(t, tl.Err())
	assert.Contains(t, tl.Err().Error(), "faults[0] kill e")
}

func TestFailedUndoLeavesTheWindowOpen(t *testing.T) {
	env := newFakeEnv()
	env.fail["start"] = errors.New("port in use")
	p := mustPlan(t, scenario.Fault{Action: "kill", Service: "e", For: dur(20 * time.Millisecond)})
	tl := run(t, context.Background(), env, p, faults.Trigger{})
	assert.True(t, tl[0].Open())
	assert.Contains(t, tl[0].UndoErr, "port in use")
	assert.ErrorContains(t, tl.Err(), "undo")
}

func TestCancelStopsEverything(t *testing.T) {
	env := newFakeEnv()
	env.block["start"] = true // a start that never gets ready
	p := mustPlan(t,
		scenario.Fault{Action: "kill", Service: "e", For: dur(10 * time.Second)},                // undo pending
		scenario.Fault{Action: "stop", Service: "single", At: dur(10 * time.Second)},            // not yet due
		scenario.Fault{Action: "pause", Service: "service-c", After: 1_000_000},                 // count never reached
		scenario.Fault{Action: "start", Service: "rabbitmq", At: dur(20 * time.Millisecond)},    // in progress
		scenario.Fault{Action: "kill", Service: "rabbitmq", At: dur(30 * time.Millisecond)},     // waits for the lock
		scenario.Fault{Action: "latency", Service: "service-c", Latency: dur(time.Millisecond)}, // no for: stays
	)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(150*time.Millisecond, cancel)
	var n atomic.Int64
	begin := time.Now()
	tl, err := faults.Run(ctx, env, p, faults.Trigger{Requests: n.Load}, faults.WithLinks(fakeLinks{env.recorder}))
	require.NoError(t, err)
	took := time.Since(begin)
	assert.Less(t, took, 150*time.Millisecond+tolerance, "Run returns promptly once ctx ends")

	assert.True(t, tl[0].Fired)
	assert.True(t, tl[0].Open(), "the kill's undo never ran")
	assert.False(t, tl[1].Fired)
	assert.False(t, tl[2].Fired)
	assert.True(t, tl[3].Fired)
	assert.Contains(t, tl[3].Err, "context canceled")
	assert.True(t, tl[3].Interrupted)
	assert.NoError(t, tl.Err(), "being cut short by the end of the run is no failure")
	assert.False(t, tl[4].Fired, "never got the service")
	assert.True(t, tl[5].Open())
	// Nothing acts after Run returned.
	before := len(env.ops())
	time.Sleep(50 * time.Millisecond)
	assert.Len(t, env.ops(), before)
}

func TestRestoreEndsOpenEffects(t *testing.T) {
	env := newFakeEnv()
	p := mustPlan(t,
		scenario.Fault{Action: "kill", Service: "e"},
		scenario.Fault{Action: "stop", Service: "e", At: dur(10 * time.Millisecond)},
		scenario.Fault{Action: "pause", Service: "single"},
		scenario.Fault{Action: "drop", Service: "service-c"},
		scenario.Fault{Action: "restart", Service: "rabbitmq"},
	)
	tl := run(t, context.Background(), env, p, faults.Trigger{})
	require.True(t, tl[0].Open())
	env.recorder.calls = nil

	out, err := faults.Restore(context.Background(), env, tl, faults.WithLinks(fakeLinks{env.recorder}))
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"start e", "unpause single", "heal service-c:50051"}, env.ops(),
		"one start for e although it was killed and stopped; nothing for the restart")
	for _, e := range out {
		assert.False(t, e.Open(), "faults[%d]", e.Step)
	}
	assert.Equal(t, "restore", out[0].EndedBy)
	assert.Equal(t, out[0].End, out[1].End)
	assert.True(t, tl[0].Open(), "the input timeline is not modified")
}

func TestRunRefusesWhatItCannotExecute(t *testing.T) {
	env := newFakeEnv()
	lat := mustPlan(t, scenario.Fault{Action: "latency", Service: "service-c", Latency: dur(time.Millisecond)})
	_, err := faults.Run(context.Background(), env, lat, faults.Trigger{})
	assert.ErrorContains(t, err, "WithLinks")

	unbound, err := faults.NewPlan([]scenario.Fault{{Action: "drop", Service: "service-c"}})
	require.NoError(t, err)
	_, err = faults.Run(context.Background(), env, unbound, faults.Trigger{}, faults.WithLinks(fakeLinks{env.recorder}))
	assert.ErrorContains(t, err, "Bind")

	after := mustPlan(t, scenario.Fault{Action: "kill", Service: "e", After: 3})
	_, err = faults.Run(context.Background(), env, after, faults.Trigger{})
	assert.ErrorContains(t, err, "Requests")
	assert.Empty(t, env.ops())

	tl, err := faults.Run(context.Background(), env, nil, faults.Trigger{})
	assert.NoError(t, err)
	assert.Empty(t, tl)
}
