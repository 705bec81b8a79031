package meshtest

import (
	"context"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/assert/expect"
	"github.com/meshproof/meshproof/harness/assert/metrics"
	"github.com/meshproof/meshproof/harness/assert/verdict"
	"github.com/meshproof/meshproof/harness/scenario"
)

// The Require* functions are the Check* functions for tests: they fail t
// (and stop it) unless every verdict passes, printing what the scenario
// report prints — expected, measured, and the detail (the expected and
// actual trace trees side by side, the first offending log lines, the
// values a store went through).

// RequireTraceShape requires the trace traceID to have shape, an indented
// service tree as in a scenario ("~>" an asynchronous edge, "..." extra
// children allowed).
func RequireTraceShape(t T, env *Env, traceID, shape string) {
	t.Helper()
	RequireTraces(t, env, []string{traceID}, scenario.TraceAssertion{Name: "trace " + traceID, Shape: shape})
}

// RequireTraces requires spec of the traces ids (a load's
// Result.Traces), as a scenario's assert.traces entry judges them.
func RequireTraces(t T, env *Env, ids []string, spec scenario.TraceAssertion) {
	t.Helper()
	ctx, cancel := context.WithTimeout(contextOf(t), max(spec.Within.D(), 30*time.Second)+15*time.Second)
	defer cancel()
	rs, err := CheckTraces(ctx, env, ids, spec)
	require.NoError(t, err)
	requirePass(t, rs...)
}

// RequireMetric requires promql, evaluated after a fresh scrape, to meet
// expectation ("OP VALUE").
func RequireMetric(t T, env *Env, promql, expectation string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(contextOf(t), metrics.ScrapeWait+30*time.Second)
	defer cancel()
	r, err := CheckMetric(ctx, env, promql, expectation)
	require.NoError(t, err)
	requirePass(t, r)
}

// RequireLogs requires rule of every line the services logged so far.
func RequireLogs(t T, env *Env, rule scenario.LogAssertion) {
	t.Helper()
	ctx, cancel := context.WithTimeout(contextOf(t), 30*time.Second)
	defer cancel()
	r, err := CheckLogs(ctx, env, rule)
	require.NoError(t, err)
	requirePass(t, r)
}

// RequireData requires the store reading of spec, once settled, to meet
// its expectation, with vars for the variables it names.
func RequireData(t T, env *Env, spec scenario.DataAssertion, vars expect.Vars) {
	t.Helper()
	ctx, cancel := context.WithTimeout(contextOf(t), dataWithin(spec)+30*time.Second)
	defer cancel()
	r, err := CheckData(ctx, env, spec, vars)
	require.NoError(t, err)
	requirePass(t, r)
}

// requirePass reports every verdict that did not pass, then stops t if any.
func requirePass(t T, rs ...verdict.Result) {
	t.Helper()
	failed := false
	for _, r := range rs {
		if r.Status != verdict.Pass {
			failed = true
			measured := r.Measured
			if measured == "" {
				measured = "nothing"
			}
			assert.Failf(t, r.Kind+" "+string(r.Status)+": "+r.Name, "expected %s, measured %s\n%s", r.Expected, measured, r.Detail)
		}
	}
	if failed {
		t.FailNow()
	}
}
