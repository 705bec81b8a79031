package bench

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/meshproof/meshproof/harness/assert/traces"
)

// The traces item judges traces captured from a real fanout-load run
// (bench/testdata/fanout-traces.json, written by `make bench-fixture`)
// rather than synthetic ones: real traces carry the attributes, span
// counts and service layout that decoding and matching actually meet. A
// few copies are mutated so that the mismatch and incomplete paths are
// timed too, not only the happy path.
const (
	// MismatchService is renamed in the mismatched copies: its calls then
	// come from a service the shape does not expect.
	MismatchService = "service-c"
	// MismatchRenamed is the name it gets.
	MismatchRenamed = "service-x"
	// DroppedService loses every span in the incomplete copies, as when
	// a service's export is late: a leaf, so the trace stays judgeable.
	DroppedService = "service-h"
	// MutateEach is how many copies of each mutation the fixture holds.
	MutateEach = 10
)

// FixtureExpect is what judging the fixture must find; the fixture
// command writes it beside the fixture after judging it once.
type FixtureExpect struct {
	Traces     int `json:"traces"`
	Spans      int `json:"spans"`
	Match      int `json:"match"`
	Mismatch   int `json:"mismatch"`
	Incomplete int `json:"incomplete"`
}

// ReadFetched reads a run's traces.json (or the fixture, gzipped when its
// name ends in .gz: real traces carry every attribute, ~40 kB each): a
// list of fetched sources.
func ReadFetched(path string) ([]traces.Fetched, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read traces: %w", err)
	}
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		if b, err = io.ReadAll(zr); err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
	}
	var fs []traces.Fetched
	if err := json.Unmarshal(b, &fs); err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	if len(fs) == 0 {
		return nil, fmt.Errorf("%s holds no fetched traces", path)
	}
	return fs, nil
}

// MutateFixture appends to the first source MutateEach mismatched and
// MutateEach incomplete copies of its first covered traces. The copies
// keep their ids with a suffix, so every id stays distinct.
func MutateFixture(fs []traces.Fetched) error {
	ev := &fs[0].Evidence
	var covered []traces.Record
	for _, r := range ev.Traces {
		if r.State == traces.StateCovered && len(r.Raw) > 0 {
			covered = append(covered, r)
		}
	}
	if len(covered) < 2*MutateEach {
		return fmt.Errorf("the run fetched %d covered traces; the fixture needs at least %d", len(covered), 2*MutateEach)
	}
	for i := range MutateEach {
		bad, err := mutateRaw(covered[i], "-mismatch", func(svc string) (string, bool) {
			if svc == MismatchService {
				return MismatchRenamed, true
			}
			return svc, true
		})
		if err != nil {
			return err
		}
		short, err := mutateRaw(covered[MutateEach+i], "-incomplete", func(svc string) (string, bool) {
			return svc, svc != DroppedService
		})
		if err != nil {
			return err
		}
		// Fetch gives up on a trace still missing spans at its deadline.
		short.State = traces.StateDeadline
		ev.Traces = append(ev.Traces, bad, short)
	}
	return nil
}

// mutateRaw rewrites a record's Jaeger answer one resource at a time:
// keep maps each resource's service.name to its new name, or drops the
// resource (and its spans) when it returns false.
func mutateRaw(r traces.Record, suffix string, keep func(svc string) (string, bool)) (traces.Record, error) {
	var doc struct {
		Result struct {
			ResourceSpans []map[string]any `json:"resourceSpans"`
		} `json:"result"`
	}
	if err := json.Unmarshal(r.Raw, &doc); err != nil {
		return r, fmt.Errorf("trace %s: %w", r.ID, err)
	}
	var out []map[string]any
	spans := 0
	for _, rs := range doc.Result.ResourceSpans {
		attr, svc := serviceAttr(rs)
		if attr == nil {
			return r, fmt.Errorf("trace %s: a resource without service.name", r.ID)
		}
		name, ok := keep(svc)
		if !ok {
			continue
		}
		attr["stringValue"] = name
		spans += countSpans(rs)
		out = append(out, rs)
	}
	doc.Result.ResourceSpans = out
	raw, err := json.Marshal(doc)
	if err != nil {
		return r, fmt.Errorf("trace %s: %w", r.ID, err)
	}
	r.ID += suffix
	r.Raw, r.Spans = raw, spans
	return r, nil
}

// serviceAttr finds the value object of a resource's service.name.
func serviceAttr(rs map[string]any) (map[string]any, string) {
	res, _ := rs["resource"].(map[string]any)
	attrs, _ := res["attributes"].([]any)
	for _, a := range attrs {
		kv, _ := a.(map[string]any)
		if kv["key"] != "service.name" {
			continue
		}
		v, _ := kv["value"].(map[string]any)
		s, _ := v["stringValue"].(string)
		return v, s
	}
	return nil, ""
}

func countSpans(rs map[string]any) int {
	n := 0
	scopes, _ := rs["scopeSpans"].([]any)
	for _, s := range scopes {
		sm, _ := s.(map[string]any)
		spans, _ := sm["spans"].([]any)
		n += len(spans)
	}
	return n
}

// Replicate returns n copies of recs with distinct ids, so the judging
// time is long enough to measure; the expected tallies scale by n.
func Replicate(recs []traces.Record, n int) []traces.Record {
	out := make([]traces.Record, 0, n*len(recs))
	for k := range n {
		for _, r := range recs {
			r.ID = fmt.Sprintf("%s-%d", r.ID, k)
			out = append(out, r)
		}
	}
	return out
}

// SpanCount sums the records' span counts.
func SpanCount(recs []traces.Record) int {
	n := 0
	for _, r := range recs {
		n += r.Spans
	}
	return n
}

// WriteFixture writes fetched sources as compact JSON, gzipped when the
// name ends in .gz.
func WriteFixture(path string, fs []traces.Fetched) error {
	b, err := json.Marshal(fs)
	if err != nil {
		return fmt.Errorf("encode fixture: %w", err)
	}
	if strings.HasSuffix(path, ".gz") {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if _, err := zw.Write(b); err != nil {
			return fmt.Errorf("compress fixture: %w", err)
		}
		if err := zw.Close(); err != nil {
			return fmt.Errorf("compress fixture: %w", err)
		}
		b = buf.Bytes()
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write fixture: %w", err)
	}
	return nil
}

// TallyShape classifies every record against the shape the way judging
// does (a trace that does not decode is incomplete), without sampling:
// the fixture command uses it to prove the mutations came out as meant.
func TallyShape(shapeText string, recs []traces.Record) (FixtureExpect, error) {
	shape, err := traces.ParseShape(shapeText)
	if err != nil {
		return FixtureExpect{}, fmt.Errorf("shape: %w", err)
	}
	e := FixtureExpect{Traces: len(recs), Spans: SpanCount(recs)}
	for _, r := range recs {
		o := traces.Incomplete
		if spans, err := traces.DecodeSpans(r.Raw, false); err == nil && len(r.Raw) > 0 {
			o = traces.Classify(traces.BuildTree(spans), shape, false)
		}
		switch o {
		case traces.Match:
			e.Match++
		case traces.Mismatch:
			e.Mismatch++
		default:
			e.Incomplete++
		}
	}
	return e, nil
}

// ErrNoFixture says the fixture was never generated.
var ErrNoFixture = errors.New("no real-trace fixture: run `make bench-fixture`")
