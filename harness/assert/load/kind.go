package load

import (
	"context"
	"fmt"
	"strings"

	"github.com/meshproof/meshproof/harness/assert"
	"github.com/meshproof/meshproof/harness/assert/expect"
	"github.com/meshproof/meshproof/harness/assert/verdict"
	engine "github.com/meshproof/meshproof/harness/load"
	"github.com/meshproof/meshproof/harness/scenario"
)

// evidenceFile holds the load's whole result (histogram, per-second series,
// trace ids), which reports and `meshproof compare` read as well.
const evidenceFile = "load.json"

// Kind judges the scenario's load thresholds ("p(99) < 250ms").
type Kind struct {
	exprs      []string
	thresholds []Threshold
	result     *engine.Result
}

// New is the registry's constructor: nil when the scenario sets no threshold.
func New(sc *scenario.Scenario) assert.Kind {
	if len(sc.Assert.Load) == 0 {
		return nil
	}
	return &Kind{exprs: sc.Assert.Load}
}

// Name implements assert.Kind.
func (k *Kind) Name() string { return "load" }

// Validate parses every threshold once, so a typo fails before start-up.
func (k *Kind) Validate(c *scenario.Check) {
	k.thresholds = k.thresholds[:0]
	for i, raw := range k.exprs {
		field := fmt.Sprintf("assert.load[%d]", i)
		th, err := Parse(raw)
		if err != nil {
			c.Fail(field, "%v", err)
			continue
		}
		if err := expect.CheckVar(th.Expect.Var); err != nil {
			c.FailAt(field, 1, strings.LastIndex(raw, th.Expect.Var)+1, "%v", err)
			continue
		}
		k.thresholds = append(k.thresholds, th)
	}
	if c.File().Load == nil {
		c.Fail("assert.load", "load thresholds need a load: section to measure")
	}
}

// Begin implements assert.Kind; the load itself is the runner's phase.
func (k *Kind) Begin(context.Context, assert.Env) error { return nil }

// Collect saves the load's result.
func (k *Kind) Collect(_ context.Context, _ assert.Env, w assert.Window) error {
	k.result = w.Load
	if w.Load == nil {
		return nil
	}
	return assert.SaveJSON(w.Dir, evidenceFile, w.Load)
}

// Load implements assert.Kind.
func (k *Kind) Load(dir string) error {
	var r engine.Result
	ok, err := assert.LoadJSON(dir, evidenceFile, &r)
	if ok {
		k.result = &r
	}
	return err
}

// Result is the load's result, for the report's summary.
func (k *Kind) Result() *engine.Result { return k.result }

// Judge evaluates each threshold, leaving fault windows out where asked.
func (k *Kind) Judge(f assert.Facts) []verdict.Result {
	out := make([]verdict.Result, 0, len(k.thresholds))
	for _, th := range k.thresholds {
		if k.result == nil {
			out = append(out, assert.Missing("load", th.Raw, "the run has no load result"))
			continue
		}
		out = append(out, th.JudgeFaults(k.result, f.Faults))
	}
	return out
}
