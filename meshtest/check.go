package meshtest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/meshproof/meshproof/harness/assert"
	"github.com/meshproof/meshproof/harness/assert/data"
	"github.com/meshproof/meshproof/harness/assert/expect"
	"github.com/meshproof/meshproof/harness/assert/logs"
	"github.com/meshproof/meshproof/harness/assert/metrics"
	"github.com/meshproof/meshproof/harness/assert/traces"
	"github.com/meshproof/meshproof/harness/assert/verdict"
	"github.com/meshproof/meshproof/harness/environment"
	"github.com/meshproof/meshproof/harness/scenario"
	"github.com/meshproof/meshproof/harness/topology"
)

// The Check* functions gather one assertion's evidence from the
// environment and judge it with the judge scenarios use, returning the
// verdict: a rule passes here exactly when it passes in a scenario file.
// An error means the evidence could not be gathered (Jaeger or a store
// unreachable), not that the assertion failed.

// CheckTraces fetches the traces of ids from the environment's Jaeger —
// polling each until it covers spec.Shape or stops changing, up to
// spec.Within (default 30 s) — and judges spec on them: the shape (share
// spec.Require, default 100 %), then each duration and attribute check.
func CheckTraces(ctx context.Context, env *Env, ids []string, spec scenario.TraceAssertion) ([]verdict.Result, error) {
	url, err := env.endpointOf(topology.KindJaeger, "")
	if err != nil {
		return nil, err
	}
	var want []*traces.Shape
	if strings.TrimSpace(spec.Shape) != "" {
		if s, err := traces.ParseShape(spec.Shape); err == nil {
			want = append(want, s)
		}
	}
	ev, err := traces.Fetch(ctx, traces.NewJaegerClient(url, nil), ids, want, traces.FetchOptions{Deadline: spec.Within.D()})
	if err != nil {
		return nil, fmt.Errorf("meshtest: %w", err)
	}
	if len(ids) > 0 && spanless(ev) {
		return []verdict.Result{assert.Missing("traces", traces.Name(spec), fmt.Sprintf(
			"none of the %d traces had a single span in Jaeger after %s: check that the services export OTLP to it",
			len(ids), ev.Elapsed.Round(time.Millisecond)))}, nil
	}
	return traces.Judge(spec, ev, nil), nil
}

func spanless(ev traces.Evidence) bool {
	for _, r := range ev.Traces {
		if r.Spans > 0 {
			return false
		}
	}
	return true
}

// CheckMetric waits until Prometheus has scraped every target after now —
// so everything the test did so far is counted — then evaluates promql and
// compares it with expectation ("OP VALUE", e.g. ">= 5"). $__range in the
// query stands for the time since the environment started.
func CheckMetric(ctx context.Context, env *Env, promql, expectation string) (verdict.Result, error) {
	spec := scenario.MetricAssertion{PromQL: promql, Expect: expectation}
	if err := metrics.ParseQuery(promql); err != nil {
		return verdict.Result{Kind: "metrics", Name: metrics.Name(spec), Status: verdict.Error, Expected: expectation, Detail: err.Error()}, nil
	}
	url, err := env.endpointOf(topology.KindPrometheus, "")
	if err != nil {
		return verdict.Result{}, err
	}
	c := metrics.NewClient(url, nil)
	now := time.Now()
	if err := metrics.WaitScrape(ctx, c, now, metrics.ScrapeWait); err != nil {
		return verdict.Result{}, fmt.Errorf("meshtest: prometheus: %w", err)
	}
	specs := []scenario.MetricAssertion{spec}
	ev, err := metrics.Collect(ctx, c, specs, metrics.Baseline{}, metrics.Window{Start: env.started, End: now})
	if err != nil {
		return verdict.Result{}, fmt.Errorf("meshtest: %w", err)
	}
	return metrics.Judge(spec, ev, nil), nil
}

// CheckLogs judges rule over every line each service has logged since it
// started (each whole log file so far). "*" stands for the started services
// marked under_test, as in scenarios.
func CheckLogs(ctx context.Context, env *Env, rule scenario.LogAssertion) (verdict.Result, error) {
	files := map[string]string{}
	var errs []error
	for _, s := range env.Services() {
		if s.LogError != "" {
			errs = append(errs, fmt.Errorf("logs of %s could not be collected: %s", s.Name, s.LogError))
		}
		if s.LogFile != "" {
			files[s.Name] = s.LogFile
		}
	}
	if err := errors.Join(errs...); err != nil {
		return verdict.Result{}, fmt.Errorf("meshtest: %w", err)
	}
	if len(files) == 0 {
		return verdict.Result{}, errors.New("meshtest: no service of this environment has a log file to read")
	}
	end, err := settledSizes(ctx, files)
	if err != nil {
		return verdict.Result{}, fmt.Errorf("meshtest: %w", err)
	}
	var underTest []string
	for _, n := range env.Topology().UnderTest() {
		if _, ok := files[n]; ok {
			underTest = append(underTest, n)
		}
	}
	ev := logs.NewEvidence(files, map[string]int64{}, end)
	return logs.Judge(rule, ev, underTest, "", nil), nil
}

// settledSizes reads the log sizes once two reads 200 ms apart agree (at
// most 2 s): docker logs reach their files through a follower, so lines a
// service just wrote may land a moment later.
func settledSizes(ctx context.Context, files map[string]string) (map[string]int64, error) {
	prev, err := logs.Sizes(files)
	if err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
			return prev, nil
		case <-time.After(200 * time.Millisecond):
		}
		cur, err := logs.Sizes(files)
		if err != nil {
			return nil, err
		}
		if maps.Equal(prev, cur) {
			return cur, nil
		}
		prev = cur
	}
	return prev, nil
}

// CheckData reads the store spec names until its value has settled
// (unchanged for data.Quiet, within spec.Within, default 15 s) and judges
// it; vars are the variables its expectation may name ("== load.ok": pass
// load.Result.Vars()). Counts are what the store holds, earlier tests'
// writes included.
func CheckData(ctx context.Context, env *Env, spec scenario.DataAssertion, vars expect.Vars) (verdict.Result, error) {
	kind := data.StoreKind(spec)
	if kind == "" {
		return data.Judge(spec, data.Reading{}, vars), nil
	}
	ep, err := env.storeOf(kind, spec.Service)
	if err != nil {
		return verdict.Result{}, err
	}
	return data.Judge(spec, data.Collect(ctx, ep, spec, dataWithin(spec)), vars), nil
}

// storeOf is endpointOf plus the service's management API, as the data
// kind reads a store.
func (e *Env) storeOf(kind topology.Kind, service string) (data.Endpoint, error) {
	ep, err := e.endpointOf(kind, service)
	if err != nil {
		return data.Endpoint{}, err
	}
	name, err := e.pick(kind, service)
	if err != nil {
		return data.Endpoint{}, err
	}
	return data.Endpoint{URL: ep, Management: environment.Management(e.up.Environment, e.up.Topology, name)}, nil
}

// dataWithin is how long CheckData waits for a value to settle, never
// shorter than the quiet window itself.
func dataWithin(spec scenario.DataAssertion) time.Duration {
	if spec.Within <= 0 {
		return data.DefaultWithin
	}
	return max(spec.Within.D(), data.Quiet)
}
