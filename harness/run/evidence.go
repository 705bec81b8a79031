package run

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/meshproof/meshproof/harness/data"
	"github.com/meshproof/meshproof/harness/expect"
	"github.com/meshproof/meshproof/harness/faults"
	"github.com/meshproof/meshproof/harness/load"
	"github.com/meshproof/meshproof/harness/logs"
	"github.com/meshproof/meshproof/harness/metrics"
	"github.com/meshproof/meshproof/harness/report"
	"github.com/meshproof/meshproof/harness/traces"
)

// Evidence is everything a run collected, saved beside its report so that
// `meshproof eval` can judge it again without an environment.
type Evidence struct {
	Load    *load.Result      `json:"-"`
	Traces  []traces.Evidence `json:"-"`
	Metrics *metrics.Evidence `json:"-"`
	Data    []data.Reading    `json:"-"`
	Logs    logs.Evidence     `json:"logs"`
	// Timeline holds the faults applied during the load, relative to its start.
	Timeline []report.Event `json:"timeline,omitempty"`
	// Faults is the faults' own record, whose effect windows "outside
	// faults" thresholds leave out.
	Faults faults.Timeline `json:"faults,omitempty"`
	// UnderTest are the services `service: "*"` log rules cover.
	UnderTest []string `json:"under_test"`
	// Drain is how long the data assertions took to settle.
	Drain time.Duration `json:"drain_ns"`
}

// Files of a run's artifacts directory.
const (
	fileRun     = "run.json"
	fileLoad    = "load.json"
	fileTraces  = "traces.json"
	fileMetrics = "metrics.json"
	fileData    = "data.json"
)

// Vars are the run variables expectations may name.
func (e *Evidence) Vars() expect.Vars {
	if e.Load == nil {
		return expect.Vars{}
	}
	return e.Load.Vars()
}

func writeJSON(dir, name string, v any) error {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

func readJSON(dir, name string, v any) (bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", name, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("decode %s: %w", filepath.Join(dir, name), err)
	}
	return true, nil
}

func (e *Evidence) save(dir string) error {
	files := map[string]any{fileRun: e}
	if e.Load != nil {
		files[fileLoad] = e.Load
	}
	if e.Traces != nil {
		files[fileTraces] = e.Traces
	}
	if e.Metrics != nil {
		files[fileMetrics] = e.Metrics
	}
	if e.Data != nil {
		files[fileData] = e.Data
	}
	for name, v := range files {
		if err := writeJSON(dir, name, v); err != nil {
			return envErr("save evidence: %w", err)
		}
	}
	return nil
}

// loadEvidence reads what save wrote.
func loadEvidence(dir string) (*Evidence, error) {
	e := &Evidence{}
	ok, err := readJSON(dir, fileRun, e)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%s is not a meshproof run directory (no %s)", dir, fileRun)
	}
	var lr load.Result
	if ok, err := readJSON(dir, fileLoad, &lr); err != nil {
		return nil, err
	} else if ok {
		e.Load = &lr
	}
	if _, err := readJSON(dir, fileTraces, &e.Traces); err != nil {
		return nil, err
	}
	var m metrics.Evidence
	if ok, err := readJSON(dir, fileMetrics, &m); err != nil {
		return nil, err
	} else if ok {
		e.Metrics = &m
	}
	if _, err := readJSON(dir, fileData, &e.Data); err != nil {
		return nil, err
	}
	return e, nil
}
