package metrics

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/meshproof/meshproof/harness/assert"
	"github.com/meshproof/meshproof/harness/assert/verdict"
	"github.com/meshproof/meshproof/harness/scenario"
	"github.com/meshproof/meshproof/harness/topology"
)

// evidenceFile holds the samples and the window they describe.
const evidenceFile = "metrics.json"

// Kind judges metric assertions against the run's Prometheus.
type Kind struct {
	specs    []scenario.MetricAssertion
	client   *Client
	baseline Baseline
	evidence *Evidence
}

// New is the registry's constructor: nil when the scenario reads no metric.
func New(sc *scenario.Scenario) assert.Kind {
	if len(sc.Assert.Metrics) == 0 {
		return nil
	}
	return &Kind{specs: sc.Assert.Metrics}
}

// Name implements assert.Kind.
func (k *Kind) Name() string { return "metrics" }

// Validate checks each query and expectation, and that something will be
// scraped at all: with no service declaring metrics, Prometheus would have
// no target and the run would wait for a scrape that never comes.
func (k *Kind) Validate(c *scenario.Check) {
	for i, m := range k.specs {
		p := fmt.Sprintf("assert.metrics[%d]", i)
		switch {
		case m.Delta == "" && m.PromQL == "":
			c.Fail(p, "give delta or promql")
		case m.Delta != "" && m.PromQL != "":
			c.Fail(p, "give delta or promql, not both")
		default:
			kind, expr := kindOf(m)
			if err := ParseQuery(expr); err != nil {
				line, col := 1, 1
				if qe, ok := errors.AsType[*QueryError](err); ok {
					line, col = qe.Line, qe.Col
				}
				c.FailAt(p+"."+kind, line, col, "%v", err)
			}
		}
		if m.Expect != "" {
			c.Expectation(p+".expect", m.Expect)
		}
	}
	c.StartedKind("assert.metrics", topology.KindPrometheus, "metric assertions")
	if topo := c.Topology(); topo != nil && !declaresMetrics(topo) {
		c.Fail("assert.metrics", "no service in %s declares x-meshproof.metrics, so Prometheus has nothing to scrape", topo.File)
	}
}

// Begin waits for a scrape that started after now, so the baseline holds
// everything before the load, then reads every delta query.
func (k *Kind) Begin(ctx context.Context, env assert.Env) error {
	url, err := env.Endpoint(topology.KindPrometheus, "")
	if err != nil {
		return err
	}
	k.client = NewClient(url, nil)
	if err := WaitScrape(ctx, k.client, time.Now(), ScrapeWait); err != nil {
		return fmt.Errorf("prometheus: %w", err)
	}
	k.baseline, err = Begin(ctx, k.client, k.specs, time.Now())
	return err
}

// Collect waits for a scrape after the drain and reads every query.
func (k *Kind) Collect(ctx context.Context, _ assert.Env, w assert.Window) error {
	end := time.Now()
	if err := WaitScrape(ctx, k.client, end, ScrapeWait); err != nil {
		return fmt.Errorf("prometheus: %w", err)
	}
	ev, err := Collect(ctx, k.client, k.specs, k.baseline, Window{Start: w.Start, End: end})
	if err != nil {
		return err
	}
	k.evidence = &ev
	return assert.SaveJSON(w.Dir, evidenceFile, ev)
}

// Load implements assert.Kind.
func (k *Kind) Load(dir string) error {
	var ev Evidence
	ok, err := assert.LoadJSON(dir, evidenceFile, &ev)
	if ok {
		k.evidence = &ev
	}
	return err
}

// Judge implements assert.Kind.
func (k *Kind) Judge(f assert.Facts) []verdict.Result {
	out := make([]verdict.Result, 0, len(k.specs))
	for _, spec := range k.specs {
		if k.evidence == nil {
			out = append(out, assert.Missing("metrics", Name(spec), "no metrics were collected"))
			continue
		}
		out = append(out, Judge(spec, *k.evidence, f.Vars))
	}
	return out
}

func declaresMetrics(topo *topology.Topology) bool {
	for _, s := range topo.Services {
		if s.Meshproof.Metrics != nil {
			return true
		}
	}
	return false
}
