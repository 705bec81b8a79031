package meshtest_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/assert/verdict"
	"github.com/meshproof/meshproof/harness/load"
	"github.com/meshproof/meshproof/harness/scenario"
	"github.com/meshproof/meshproof/meshtest"
)

// recorder is a meshtest.T that records failures instead of failing the
// test, so a test can prove that a Require* fails on a wrong expectation.
type recorder struct {
	mu     sync.Mutex
	msgs   []string
	failed bool
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = true
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

// FailNow stops the calling goroutine, as testing's does.
func (r *recorder) FailNow() {
	r.mu.Lock()
	r.failed = true
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recorder) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.msgs, "\n")
}

// record runs f with a recorder on a goroutine of its own, so FailNow can
// end it without ending the test.
func record(f func(t meshtest.T)) *recorder {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r
}

// requireFailed checks that a Require* failed and said why: the expected
// and the measured value, as the scenario report would.
func requireFailed(t *testing.T, r *recorder, want ...string) {
	t.Helper()
	require.True(t, r.failed, "the Require* call should have failed")
	for _, w := range want {
		assert.Contains(t, r.text(), w)
	}
	t.Logf("the failure as a test would print it:\n%s", r.text())
}

func greet(t meshtest.T, n int) *load.Result {
	return env.Load(t, load.Config{Target: "http://gateway:8080/api/greeting", Users: 1, Requests: n})
}

func TestRequireTraceShape(t *testing.T) {
	res := greet(t, 1)
	id := res.Traces[0].TraceID
	ok := record(func(rt meshtest.T) { meshtest.RequireTraceShape(rt, env, id, fullShape) })
	assert.False(t, ok.failed, "the full shape should match: %s", ok.text())

	// service-b does not call service-c: the trace cannot have this shape.
	bad := record(func(rt meshtest.T) {
		meshtest.RequireTraceShape(rt, env, id, "gateway\n  service-a\n    service-b\n      service-c\n")
	})
	requireFailed(t, bad, "expected >= 100% of traces match", "measured 0/1 traces match", "service-c")
}

func TestRequireMetric(t *testing.T) {
	ok := record(func(rt meshtest.T) { meshtest.RequireMetric(rt, env, "count(greeting_build_info)", "== 9") })
	assert.False(t, ok.failed, ok.text())

	bad := record(func(rt meshtest.T) { meshtest.RequireMetric(rt, env, "count(greeting_build_info)", "== 10") })
	requireFailed(t, bad, "expected == 10, measured 9")

	broken := record(func(rt meshtest.T) { meshtest.RequireMetric(rt, env, "sum(", "> 0") })
	requireFailed(t, broken, "error")
}

func TestRequireLogs(t *testing.T) {
	greet(t, 1)
	rule := scenario.LogAssertion{Service: "service-a", Contains: `"msg":"greeting handled"`, Count: "> 0"}
	ok := record(func(rt meshtest.T) { meshtest.RequireLogs(rt, env, rule) })
	assert.False(t, ok.failed, ok.text())

	bad := record(func(rt meshtest.T) {
		meshtest.RequireLogs(rt, env, scenario.LogAssertion{Service: "service-a", Contains: "no service ever logs this"})
	})
	requireFailed(t, bad, "logs fail", "no service ever logs this")
}

func TestRequireData(t *testing.T) {
	res := greet(t, 3)
	require.EqualValues(t, 3, res.OK)
	stored := scenario.DataAssertion{Mongo: &scenario.MongoQuery{DB: "service-c", Collection: "greetings"}, Count: ">= load.ok"}
	ok := record(func(rt meshtest.T) { meshtest.RequireData(rt, env, stored, res.Vars()) })
	assert.False(t, ok.failed, ok.text())

	// The shared environment keeps every earlier test's greetings: a count
	// of exactly zero is wrong whatever ran before.
	stored.Count = "== 0"
	bad := record(func(rt meshtest.T) { meshtest.RequireData(rt, env, stored, res.Vars()) })
	requireFailed(t, bad, "expected == 0", "settled at")
}

// RunScenario on the shared environment: no second start-up, and counts
// judged as changes from load start.
func TestRunScenarioOn(t *testing.T) {
	rep := meshtest.RunScenario(t, "../scenarios/smoke.yaml", meshtest.On(env), meshtest.OutDir(t.TempDir()))
	assert.True(t, verdict.AllPassed(rep.Results))
	assert.Contains(t, rep.Backend, env.RunID())
}

func TestAddress(t *testing.T) {
	assert.True(t, strings.HasPrefix(env.Address(t, "gateway", 8080), "127.0.0.1:"))
	assert.Equal(t, "http://"+env.Address(t, "gateway", 8080)+"/x", env.Resolve("http://gateway:8080/x"))
	bad := record(func(rt meshtest.T) { env.Address(rt, "gateway", 9999) })
	requireFailed(t, bad, "gateway:9999")
}

func TestLinkNeedsWithLinks(t *testing.T) {
	bad := record(func(rt meshtest.T) { env.Drop(rt, "service-b:50051") })
	requireFailed(t, bad, `WithLinks("service-b:50051")`)
}

func TestAttachRefusesChanges(t *testing.T) {
	_, err := meshtest.New(context.Background(), compose, meshtest.WithAttach("any"), meshtest.WithServices("gateway"))
	require.ErrorContains(t, err, "WithAttach")
}

// A stopped service fails the requests that need it, and they succeed
// again once it is started. Last, since the failures log errors.
func TestStopAndStart(t *testing.T) {
	env.Stop(t, "service-g")
	failed := greet(t, 1)
	assert.EqualValues(t, 1, failed.Errors, "a request needs service-g")
	env.Start(t, "service-g")
	assert.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.EqualValues(c, 1, greet(t, 1).OK)
	}, 15*time.Second, 500*time.Millisecond, "service-g answers again")
}
