package data

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/meshproof/meshproof/harness/assert"
	"github.com/meshproof/meshproof/harness/assert/verdict"
	"github.com/meshproof/meshproof/harness/scenario"
	"github.com/meshproof/meshproof/harness/topology"
)

// evidenceFile holds one Reading per distinct target.
const evidenceFile = "data.json"

// storeKinds maps the store an assertion names to the topology kind whose
// service serves it.
var storeKinds = map[string]topology.Kind{
	"mongo": topology.KindMongoDB, "rabbitmq": topology.KindRabbitMQ,
	"postgres": topology.KindPostgres, "s3": topology.KindLocalStack,
}

// Kind judges the data assertions: the drain of a run.
type Kind struct {
	specs     []scenario.DataAssertion
	readings  []Reading
	baselines map[string]float64 // by key, for environments that were not fresh
}

// New is the registry's constructor: nil when the scenario reads no store.
func New(sc *scenario.Scenario) assert.Kind {
	if len(sc.Assert.Data) == 0 {
		return nil
	}
	return &Kind{specs: sc.Assert.Data}
}

// Name implements assert.Kind.
func (k *Kind) Name() string { return "data" }

// Validate checks that each assertion names one store and the expectation
// that store takes, and that a started service serves it.
func (k *Kind) Validate(c *scenario.Check) {
	for i, d := range k.specs {
		p := fmt.Sprintf("assert.data[%d]", i)
		var stores []string
		var want, wantField string
		for _, st := range []struct {
			on          bool
			name, field string
			val         string
		}{
			{d.Mongo != nil, "mongo", "count", d.Count},
			{d.RabbitMQ != nil, "rabbitmq", "depth", d.Depth},
			{d.Postgres != "", "postgres", "expect", d.Expect},
			{d.S3 != nil, "s3", "count", d.Count},
		} {
			if st.on {
				stores, want, wantField = append(stores, st.name), st.val, st.field
			}
		}
		switch {
		case len(stores) == 0:
			c.Fail(p, "name the store to read: mongo, rabbitmq, postgres or s3")
			continue
		case len(stores) > 1:
			c.Fail(p, "one store per assertion, got %s", strings.Join(stores, " and "))
			continue
		case want == "":
			c.Fail(p+"."+wantField, "%s assertions need %s (e.g. \"== load.ok\")", stores[0], wantField)
		}
		for _, f := range []struct{ name, val string }{{"count", d.Count}, {"depth", d.Depth}, {"expect", d.Expect}} {
			switch {
			case f.val == "":
			case f.name != wantField:
				c.Fail(p+"."+f.name, "%s does not apply to %s assertions (use %s)", f.name, stores[0], wantField)
			default:
				c.Expectation(p+"."+f.name, f.val)
			}
		}
		c.Store(p, d.Service, storeKinds[stores[0]])
	}
}

// Begin reads each count once when the environment was not started by this
// run, so an attached environment's earlier data is not counted as this
// run's. A started environment begins with empty stores: nothing to read.
func (k *Kind) Begin(ctx context.Context, env assert.Env) error {
	if env.Fresh() {
		return nil
	}
	k.baselines = map[string]float64{}
	for _, spec := range k.specs {
		kk := key(Store(spec), target(spec))
		if _, done := k.baselines[kk]; done || !cumulative(Store(spec)) {
			continue
		}
		ep, err := endpoint(env, spec)
		if err != nil {
			return err
		}
		var rd reader
		v, err := readOnce(ctx, &rd, ep, spec)
		if rd != nil {
			rd.close()
		}
		if err != nil {
			return fmt.Errorf("baseline of %s: %w", kk, err)
		}
		k.baselines[kk] = v
	}
	return nil
}

// Collect reads every distinct target concurrently until each settles; the
// slowest one ends the drain. Assertions sharing a target (a lower and an
// upper bound) share one reading, so both judge the same settled value.
func (k *Kind) Collect(ctx context.Context, env assert.Env, w assert.Window) error {
	type job struct {
		spec     scenario.DataAssertion
		endpoint Endpoint
		limit    time.Duration
	}
	jobs := map[string]*job{}
	var order []string
	for _, spec := range k.specs {
		kk := key(Store(spec), target(spec))
		if j, ok := jobs[kk]; ok {
			j.limit = max(j.limit, within(spec))
			continue
		}
		ep, err := endpoint(env, spec)
		if err != nil {
			return err
		}
		jobs[kk] = &job{spec: spec, endpoint: ep, limit: within(spec)}
		order = append(order, kk)
	}
	fmt.Fprintf(w.Out, "▶ drain: %d stores, each until unchanged for %s (%s for a queue read from a management API)\n", len(order), Quiet, StatsQuiet)
	k.readings = make([]Reading, len(order))
	var wg sync.WaitGroup
	for i, kk := range order {
		j := jobs[kk]
		wg.Go(func() {
			k.readings[i] = Collect(ctx, j.endpoint, j.spec, j.limit)
			if b, ok := k.baselines[kk]; ok {
				k.readings[i].Baseline = &b
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return fmt.Errorf("drain: %w", ctx.Err())
	}
	return assert.SaveJSON(w.Dir, evidenceFile, k.readings)
}

// endpoint is where spec's store is read in env.
func endpoint(env assert.Env, spec scenario.DataAssertion) (Endpoint, error) {
	kind := storeKinds[Store(spec)]
	url, err := env.Endpoint(kind, spec.Service)
	if err != nil {
		return Endpoint{}, fmt.Errorf("%s: %w", Name(spec), err)
	}
	mgmt, err := env.Management(kind, spec.Service)
	if err != nil {
		return Endpoint{}, fmt.Errorf("%s: %w", Name(spec), err)
	}
	return Endpoint{URL: url, Management: mgmt}, nil
}

// Load implements assert.Kind.
func (k *Kind) Load(dir string) error {
	_, err := assert.LoadJSON(dir, evidenceFile, &k.readings)
	return err
}

// Judge judges each assertion on the reading of its own target.
func (k *Kind) Judge(f assert.Facts) []verdict.Result {
	out := make([]verdict.Result, 0, len(k.specs))
	for _, spec := range k.specs {
		r, ok := k.reading(spec)
		if !ok {
			out = append(out, assert.Missing("data", Name(spec), fmt.Sprintf(
				"this run never read %s %s (it read: %s); a variant can change expectations, not what was measured",
				Store(spec), target(spec), k.targets())))
			continue
		}
		out = append(out, Judge(spec, r, f.Vars))
	}
	return out
}

func (k *Kind) reading(spec scenario.DataAssertion) (Reading, bool) {
	want := key(Store(spec), target(spec))
	for _, r := range k.readings {
		if key(r.Kind, r.Target) == want {
			return r, true
		}
	}
	return Reading{}, false
}

func (k *Kind) targets() string {
	if len(k.readings) == 0 {
		return "nothing"
	}
	var ts []string
	for _, r := range k.readings {
		ts = append(ts, key(r.Kind, r.Target))
	}
	return strings.Join(ts, "; ")
}
