package logs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"time"

	"github.com/meshproof/meshproof/harness/assert"
	"github.com/meshproof/meshproof/harness/assert/verdict"
	"github.com/meshproof/meshproof/harness/environment"
	"github.com/meshproof/meshproof/harness/scenario"
)

// evidenceFile holds each service's log byte range and the services "*"
// stood for.
const evidenceFile = "logs.json"

// saved is the kind's evidence file.
type saved struct {
	Ranges    Evidence `json:"ranges"`
	UnderTest []string `json:"under_test"`
}

// Kind judges log rules over the lines written from load start to the end
// of the drain.
type Kind struct {
	specs []scenario.LogAssertion
	files map[string]string // service -> absolute log file
	start map[string]int64
	ev    saved
}

// New is the registry's constructor: nil when the scenario has no log rule.
func New(sc *scenario.Scenario) assert.Kind {
	if len(sc.Assert.Logs) == 0 {
		return nil
	}
	return &Kind{specs: sc.Assert.Logs}
}

// Name implements assert.Kind.
func (k *Kind) Name() string { return "logs" }

// Validate compiles every pattern and checks the services a rule names; a
// pattern that selects nothing would make the rule pass vacuously.
func (k *Kind) Validate(c *scenario.Check) {
	for i, r := range k.specs {
		p := fmt.Sprintf("assert.logs[%d]", i)
		switch {
		case r.Service == "*":
			if topo := c.Topology(); topo != nil && len(topo.UnderTest()) == 0 {
				c.Fail(p+".service", `"*" means the services under test, but none is marked under_test in x-meshproof`)
			}
		case r.Service != "":
			c.Glob(p+".service", r.Service)
		}
		if r.Contains == "" && r.NotContains == "" && len(r.None) == 0 && r.Every == nil && r.Count == "" {
			c.Fail(p, "the rule checks nothing: give contains, not_contains, none, every or count")
		}
		for field, re := range map[string]string{"contains": r.Contains, "not_contains": r.NotContains} {
			if _, err := regexp.Compile(re); err != nil {
				c.Fail(p+"."+field, "%v", err)
			}
		}
		if r.Count != "" {
			c.Expectation(p+".count", r.Count)
		}
		if r.Every != nil && r.Every.Has == "" {
			c.Fail(p+".every.has", "required field is missing")
		}
	}
}

// Begin records where each log file ends at load start.
func (k *Kind) Begin(_ context.Context, env assert.Env) error {
	if err := collectionFailures(env); err != nil {
		return err
	}
	k.files = logFiles(env.Services())
	if len(k.files) == 0 {
		return errors.New("no service of this environment has a log file meshproof can read (an external deployment gives none): log rules cannot be judged")
	}
	k.ev.UnderTest = env.UnderTest()
	var err error
	k.start, err = Sizes(k.files)
	return err
}

// Collect records where each log file ends once it stops growing, and
// saves the ranges relative to the artifacts dir so a copied artifacts
// directory can still be judged. Logs that stopped reaching their file
// fail the collection: a rule over lines that were lost would lie.
func (k *Kind) Collect(ctx context.Context, env assert.Env, w assert.Window) error {
	if err := collectionFailures(env); err != nil {
		return err
	}
	end, err := settledSizes(ctx, k.files)
	if err != nil {
		return err
	}
	rel := make(map[string]string, len(k.files))
	for svc, f := range k.files {
		r, err := filepath.Rel(w.Dir, f)
		if err != nil {
			r = f
		}
		rel[svc] = r
	}
	k.ev.Ranges = NewEvidence(rel, k.start, end)
	return assert.SaveJSON(w.Dir, evidenceFile, k.ev)
}

// Load implements assert.Kind.
func (k *Kind) Load(dir string) error {
	_, err := assert.LoadJSON(dir, evidenceFile, &k.ev)
	return err
}

// Judge implements assert.Kind.
func (k *Kind) Judge(f assert.Facts) []verdict.Result {
	out := make([]verdict.Result, 0, len(k.specs))
	for _, spec := range k.specs {
		if k.ev.Ranges == nil {
			out = append(out, assert.Missing("logs", Name(spec), "no service logs were recorded"))
			continue
		}
		out = append(out, Judge(spec, k.ev.Ranges, k.ev.UnderTest, f.Dir, f.Vars))
	}
	return out
}

// collectionFailures names every service whose output stopped reaching its
// log file.
func collectionFailures(env assert.Env) error {
	var errs []error
	for _, s := range env.Services() {
		if s.LogError != "" {
			errs = append(errs, fmt.Errorf("logs of %s could not be collected: %s", s.Name, s.LogError))
		}
	}
	return errors.Join(errs...)
}

func logFiles(services []environment.ServiceInfo) map[string]string {
	out := map[string]string{}
	for _, s := range services {
		if s.LogFile != "" {
			out[s.Name] = s.LogFile
		}
	}
	return out
}

// settledSizes reads the log sizes once they stop growing (two reads 200 ms
// apart agree, at most 2 s): container logs reach their files through a
// follower, so lines written before the drain ended may land a moment later
// and must still fall inside the window.
func settledSizes(ctx context.Context, files map[string]string) (map[string]int64, error) {
	prev, err := Sizes(files)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return prev, nil
		case <-time.After(200 * time.Millisecond):
		}
		cur, err := Sizes(files)
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
