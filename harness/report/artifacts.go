package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/meshproof/meshproof/harness/assert/traces"
	"github.com/meshproof/meshproof/harness/faults"
	"github.com/meshproof/meshproof/harness/load"
	"github.com/meshproof/meshproof/harness/scenario"
)

// Artifacts is what a finished run left in its directory, read back by the
// HTML report and by `meshproof compare`. Reading the files (rather than
// taking the run's in-memory values) keeps both independent of the run
// package and lets them work on any saved run, also one from CI.
type Artifacts struct {
	Dir string
	// Load is load.json; nil when the scenario had no load.
	Load *load.Result
	// Hist is load.json's latency histogram with its bins, which
	// load.Histogram keeps to itself (it answers percentiles only).
	Hist *hdr.Histogram
	// Traces is every fetched trace of traces.json, deduplicated by id.
	Traces []traces.Record
	// Scenario is the effective scenario.yaml; nil when absent or unreadable.
	Scenario *scenario.Scenario
	// Faults are the effect windows of the faults recorded in run.json.
	Faults []faults.Window
	// Problems lists files that exist but could not be read; a reader shows
	// them instead of failing, since a partial report still helps.
	Problems []string
}

// ReadArtifacts reads a run directory. A missing file leaves its field
// empty; an unreadable one is listed in Problems. It fails only when dir
// itself cannot be read.
func ReadArtifacts(dir string) (*Artifacts, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("run directory: %w", err)
	}
	a := &Artifacts{Dir: dir}
	a.readLoad()
	a.readTraces()
	if sc, err := scenario.Load(filepath.Join(dir, "scenario.yaml")); err == nil {
		a.Scenario = sc
	} else if !missing(filepath.Join(dir, "scenario.yaml")) {
		a.Problems = append(a.Problems, fmt.Sprintf("scenario.yaml: %v", err))
	}
	var facts struct {
		Faults faults.Timeline `json:"faults"`
	}
	if err := a.readJSON("run.json", &facts); err == nil {
		a.Faults = facts.Faults.Windows()
	}
	return a, nil
}

// readJSON decodes one file of the run; fs.ErrNotExist when it is absent.
func (a *Artifacts) readJSON(name string, v any) error {
	b, err := os.ReadFile(filepath.Join(a.Dir, name))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			a.Problems = append(a.Problems, fmt.Sprintf("%s: %v", name, err))
		}
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		a.Problems = append(a.Problems, fmt.Sprintf("%s: %v", name, err))
		return fmt.Errorf("decode %s: %w", name, err)
	}
	return nil
}

func missing(path string) bool {
	_, err := os.Stat(path)
	return errors.Is(err, fs.ErrNotExist)
}

// readLoad reads load.json twice over: as load.Result, and its histogram
// field (HdrHistogram's V2 compressed base64 form) decoded with bins.
func (a *Artifacts) readLoad() {
	var res load.Result
	if a.readJSON("load.json", &res) != nil {
		return
	}
	a.Load = &res
	var raw struct {
		Histogram *string `json:"histogram"`
	}
	if a.readJSON("load.json", &raw) != nil || raw.Histogram == nil {
		return
	}
	h, err := hdr.Decode([]byte(*raw.Histogram))
	if err != nil {
		a.Problems = append(a.Problems, fmt.Sprintf("load.json histogram: %v", err))
		return
	}
	a.Hist = h
}

func (a *Artifacts) readTraces() {
	var fetched []traces.Fetched
	if a.readJSON("traces.json", &fetched) != nil {
		return
	}
	seen := map[string]bool{}
	for _, f := range fetched {
		for _, r := range f.Traces {
			if !seen[r.ID] {
				seen[r.ID] = true
				a.Traces = append(a.Traces, r)
			}
		}
	}
}

// Shapes are the expected trace shapes of the scenario's trace assertions,
// by assertion name; shapes that do not parse are left out (the verdict
// already says why).
func (a *Artifacts) Shapes() []NamedShape {
	if a.Scenario == nil {
		return nil
	}
	var out []NamedShape
	for _, t := range a.Scenario.Assert.Traces {
		if s, err := traces.ParseShape(t.Shape); err == nil {
			out = append(out, NamedShape{Name: traces.Name(t), Shape: s, Subset: t.Match == "subset"})
		}
	}
	return out
}

// NamedShape is one trace assertion's expected shape.
type NamedShape struct {
	Name   string
	Shape  *traces.Shape
	Subset bool
}

// Trees decodes every trace that has spans, in traces.json order.
func (a *Artifacts) Trees() []*traces.Tree {
	var out []*traces.Tree
	for _, r := range a.Traces {
		if r.Raw == nil {
			continue
		}
		spans, err := traces.DecodeSpans(r.Raw, false)
		if err != nil || len(spans) == 0 {
			continue
		}
		t := traces.BuildTree(spans)
		t.TraceID = r.ID
		out = append(out, t)
	}
	return out
}

// LoadStart is when the load began, the origin of the per-second series.
func (a *Artifacts) LoadStart() time.Time {
	if a.Load == nil {
		return time.Time{}
	}
	return a.Load.Start
}
