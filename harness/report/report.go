// Package report renders a finished run for its three readers: a person at a
// terminal, a CI gate (junit.xml, exit code, GitHub step summary), and a later
// `meshproof eval` (report.json). All three are made from one Report value so
// they can never disagree.
package report

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/meshproof/meshproof/harness/assert/verdict"
	"github.com/meshproof/meshproof/harness/environment"
)

// Report is everything a run concluded.
type Report struct {
	Scenario string    `json:"scenario"`
	File     string    `json:"file"`
	RunID    string    `json:"run_id"`
	Backend  string    `json:"backend"`
	Started  time.Time `json:"started"`
	// Duration of the whole run, environment up to down.
	Duration time.Duration `json:"duration_ns"`
	// Ready is the time until every service passed its probe.
	Ready time.Duration `json:"ready_ns"`
	// Drain is the time from load end until the data assertions settled.
	Drain time.Duration `json:"drain_ns"`
	// Services as started, with their resource use.
	Services []Service `json:"services"`
	// Load summarises the traffic, when the scenario had a load.
	Load *LoadSummary `json:"load,omitempty"`
	// Results of every assertion, in scenario order.
	Results []verdict.Result `json:"results"`
	// SampleTrace is one trace of the run drawn as a timed tree.
	SampleTrace string `json:"sample_trace,omitempty"`
	// Timeline lists notable moments (faults, phases) relative to load start.
	Timeline []Event `json:"timeline,omitempty"`
	// Dir is the artifacts directory.
	Dir string `json:"dir"`
}

// Service is one service's line in the environment section.
type Service struct {
	environment.ServiceInfo
	environment.Usage
}

// LoadSummary is the part of the load result a reader looks at first.
type LoadSummary struct {
	Target     string             `json:"target"`
	Model      string             `json:"model"`
	Requests   int64              `json:"requests"`
	OK         int64              `json:"ok"`
	Errors     int64              `json:"errors"`
	Duration   time.Duration      `json:"duration_ns"`
	RPS        float64            `json:"rps"`
	Latency    map[string]float64 `json:"latency_seconds"`
	Statuses   map[string]int64   `json:"statuses,omitempty"`
	ErrorKinds map[string]int64   `json:"error_kinds,omitempty"`
}

// Event is a moment on the run's timeline.
type Event struct {
	At   time.Duration `json:"at_ns"`
	What string        `json:"what"`
}

// Passed reports whether every assertion passed.
func (r *Report) Passed() bool { return verdict.AllPassed(r.Results) }

// Counts returns how many results passed and failed (any non-pass).
func (r *Report) Counts() (passed, failed int) {
	for _, res := range r.Results {
		if res.Passed() {
			passed++
		} else {
			failed++
		}
	}
	return passed, failed
}

// WriteFiles writes report.json, junit.xml and report.html into r.Dir.
// Call it after the evidence files are saved: the HTML draws from them.
func (r *Report) WriteFiles() error {
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", r.Dir, err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(r.Dir, "report.json"), b, 0o644); err != nil {
		return fmt.Errorf("write report.json: %w", err)
	}
	f, err := os.Create(filepath.Join(r.Dir, "junit.xml"))
	if err != nil {
		return fmt.Errorf("write junit.xml: %w", err)
	}
	defer f.Close()
	if err := r.WriteJUnit(f); err != nil {
		return fmt.Errorf("write junit.xml: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write junit.xml: %w", err)
	}
	return r.WriteHTML()
}

// Read loads a report.json.
func Read(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return &r, nil
}
