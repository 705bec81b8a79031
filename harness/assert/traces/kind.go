package traces

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/meshproof/meshproof/harness/assert"
	"github.com/meshproof/meshproof/harness/assert/expect"
	"github.com/meshproof/meshproof/harness/assert/verdict"
	engine "github.com/meshproof/meshproof/harness/load"
	"github.com/meshproof/meshproof/harness/scenario"
	"github.com/meshproof/meshproof/harness/topology"
)

// evidenceFile holds one fetched set per source of traces.
const evidenceFile = "traces.json"

// Fetched is the traces of one source, keyed by what was sampled, so an
// eval variant that samples differently is refused rather than judged on
// traces it did not ask for.
type Fetched struct {
	Source string `json:"source"`
	Evidence
}

// Kind judges trace assertions on the traces of the load's requests.
type Kind struct {
	specs   []scenario.TraceAssertion
	shapes  []*Shape
	fetched []Fetched
}

// New is the registry's constructor: nil when the scenario judges no trace.
func New(sc *scenario.Scenario) assert.Kind {
	if len(sc.Assert.Traces) == 0 {
		return nil
	}
	return &Kind{specs: sc.Assert.Traces}
}

// Name implements assert.Kind.
func (k *Kind) Name() string { return "traces" }

// Validate parses shapes and checks, and the services they name.
func (k *Kind) Validate(c *scenario.Check) {
	k.shapes = make([]*Shape, len(k.specs))
	for i, t := range k.specs {
		p := fmt.Sprintf("assert.traces[%d]", i)
		if t.Require != "" {
			val, unit, err := expect.ParseValue(t.Require)
			if err != nil || unit != expect.Fraction || val < 0 || val > 1 {
				c.Fail(p+".require", "%q is not a share between 0%% and 100%%", t.Require)
			}
		}
		if t.Of != "" && t.Of != "load" {
			c.Fail(p+".of", "%q: traces come from the load's requests (of: load)", t.Of)
		}
		if t.Match != "" && t.Match != "exact" && t.Match != "subset" {
			c.Fail(p+".match", "%q: want exact or subset", t.Match)
		}
		if t.Requests != "" && t.Requests != "ok" && t.Requests != "all" {
			c.Fail(p+".requests", "%q: want ok or all", t.Requests)
		}
		if c.File().Load == nil {
			c.Fail(p, "trace assertions judge the load's requests, and the scenario has no load:")
		}
		k.validateShape(c, p, i)
		for j, d := range t.Durations {
			field := fmt.Sprintf("%s.durations[%d]", p, j)
			dc, err := ParseDuration(d)
			if err != nil {
				c.Fail(field, "%v", err)
				continue
			}
			if err := expect.CheckVar(dc.Expect.Var); err != nil {
				c.FailAt(field, 1, strings.LastIndex(d, dc.Expect.Var)+1, "%v", err)
				continue
			}
			c.ServiceAt(field, 1, strings.Index(d, dc.Service)+1, dc.Service)
		}
		for j, a := range t.Attributes {
			if a.Service != "" {
				c.Service(fmt.Sprintf("%s.attributes[%d].service", p, j), a.Service)
			}
		}
	}
	c.StartedKind("assert.traces", topology.KindJaeger, "trace assertions")
}

// validateShape parses assertion i's shape and checks every service in it,
// each problem at its line of the shape's text.
func (k *Kind) validateShape(c *scenario.Check, p string, i int) {
	if strings.TrimSpace(k.specs[i].Shape) == "" {
		return
	}
	field := p + ".shape"
	s, err := ParseShape(k.specs[i].Shape)
	if err != nil {
		if se, ok := errors.AsType[*ShapeError](err); ok {
			c.FailAt(field, se.Line, se.Col, "%v", err)
		} else {
			c.Fail(field, "%v", err)
		}
		return
	}
	k.shapes[i] = s
	s.Walk(func(n *Shape) {
		c.ServiceAt(field, n.Line, n.Col, n.Service)
	})
}

// Begin implements assert.Kind: traces need no baseline.
func (k *Kind) Begin(context.Context, assert.Env) error { return nil }

// source names what an assertion samples.
func source(t scenario.TraceAssertion) (requests string, sample int) {
	requests, sample = t.Requests, t.Sample
	if requests == "" {
		requests = "ok"
	}
	if sample <= 0 {
		sample = DefaultSample
	}
	return requests, sample
}

func sourceKey(t scenario.TraceAssertion) string {
	r, n := source(t)
	return fmt.Sprintf("load requests=%s sample=%d", r, n)
}

// Collect fetches each source's traces once, polling until every trace is
// quiet or the slowest assertion's within passes.
func (k *Kind) Collect(ctx context.Context, env assert.Env, w assert.Window) error {
	if w.Load == nil {
		return assert.SaveJSON(w.Dir, evidenceFile, k.fetched)
	}
	url, err := env.Endpoint(topology.KindJaeger, "")
	if err != nil {
		return err
	}
	client := NewJaegerClient(url, nil)
	k.fetched = nil
	for _, key := range k.sources() {
		var want []*Shape
		var opts FetchOptions
		var spec scenario.TraceAssertion
		for i, t := range k.specs {
			if sourceKey(t) != key {
				continue
			}
			spec = t
			if k.shapes[i] != nil {
				want = append(want, k.shapes[i])
			}
			opts.Deadline = max(opts.Deadline, t.Within.D())
		}
		requests, sample := source(spec)
		fmt.Fprintf(w.Out, "▶ traces: fetching %s\n", key)
		ev, err := Fetch(ctx, client, loadTraceIDs(w.Load, requests, sample), want, opts)
		if err != nil {
			return err
		}
		k.fetched = append(k.fetched, Fetched{Source: key, Evidence: ev})
	}
	return assert.SaveJSON(w.Dir, evidenceFile, k.fetched)
}

func (k *Kind) sources() []string {
	var keys []string
	for _, t := range k.specs {
		if key := sourceKey(t); !slices.Contains(keys, key) {
			keys = append(keys, key)
		}
	}
	return keys
}

// loadTraceIDs spreads up to sample trace ids evenly over the run: of the
// successful requests (whose traces should be whole), or of all of them.
func loadTraceIDs(res *engine.Result, requests string, sample int) []string {
	var ids []string
	for _, t := range res.Traces {
		if t.OK || requests == "all" {
			ids = append(ids, t.TraceID)
		}
	}
	return SampleIDs(ids, sample)
}

// Load implements assert.Kind.
func (k *Kind) Load(dir string) error {
	_, err := assert.LoadJSON(dir, evidenceFile, &k.fetched)
	return err
}

// Judge judges each assertion on its source's traces.
func (k *Kind) Judge(f assert.Facts) []verdict.Result {
	var out []verdict.Result
	for _, t := range k.specs {
		ev, ok := k.evidence(sourceKey(t))
		switch {
		case !ok:
			out = append(out, assert.Missing("traces", Name(t), "this run fetched no traces of "+sourceKey(t)))
		case noSpans(ev):
			out = append(out, assert.Missing("traces", Name(t), fmt.Sprintf(
				"none of the %d traces had a single span in Jaeger after %s: check that the services export OTLP to it",
				len(ev.Traces), ev.Elapsed.Round(1e6))))
		default:
			out = append(out, Judge(t, ev, f.Vars)...)
		}
	}
	return out
}

func (k *Kind) evidence(key string) (Evidence, bool) {
	for _, f := range k.fetched {
		if f.Source == key {
			return f.Evidence, true
		}
	}
	return Evidence{}, false
}

func noSpans(ev Evidence) bool {
	for _, r := range ev.Traces {
		if r.Spans > 0 {
			return false
		}
	}
	return true
}

// Sample draws one fetched trace as a timed tree for the terminal report,
// preferring one that finished arriving.
func (k *Kind) Sample() string {
	for _, f := range k.fetched {
		if s := sampleTrace(f.Evidence); s != "" {
			return s
		}
	}
	return ""
}

func sampleTrace(ev Evidence) string {
	recs := make([]Record, 0, len(ev.Traces))
	for _, rec := range ev.Traces {
		if rec.State == StateCovered {
			recs = append(recs, rec)
		}
	}
	recs = append(recs, ev.Traces...)
	for _, rec := range recs {
		if len(rec.Raw) == 0 {
			continue
		}
		spans, err := DecodeSpans(rec.Raw, false)
		if err != nil || len(spans) == 0 {
			continue
		}
		return "trace " + rec.ID + "\n" + BuildTree(spans).Draw()
	}
	return ""
}
