// Package logs judges rules over the lines services wrote during a run —
// from load start to the end of the drain. The runner records each service
// log file's size at both moments (Evidence); Judge reads exactly those byte
// ranges, so `meshproof eval` re-judges saved logs without an environment.
package logs

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/meshproof/meshproof/harness/expect"
	"github.com/meshproof/meshproof/harness/scenario"
	"github.com/meshproof/meshproof/harness/verdict"
)

// Range is the part of one service's log file written during the run.
type Range struct {
	File  string `json:"file"`
	Start int64  `json:"start_offset"`
	End   int64  `json:"end_offset"`
}

// Evidence maps service name to its log range.
type Evidence map[string]Range

// Sizes returns each file's current size (0 for a file not yet created),
// for the runner to call at load start and at the end of the drain.
func Sizes(files map[string]string) (map[string]int64, error) {
	out := make(map[string]int64, len(files))
	for svc, f := range files {
		st, err := os.Stat(f)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			out[svc] = 0
		case err != nil:
			return nil, fmt.Errorf("log size of %s: %w", svc, err)
		default:
			out[svc] = st.Size()
		}
	}
	return out, nil
}

// NewEvidence pairs the sizes taken at load start and drain end.
func NewEvidence(files map[string]string, start, end map[string]int64) Evidence {
	ev := make(Evidence, len(files))
	for svc, f := range files {
		ev[svc] = Range{File: f, Start: start[svc], End: end[svc]}
	}
	return ev
}

// Name is the assertion's name, or one derived from its rules.
func Name(s scenario.LogAssertion) string {
	if s.Name != "" {
		return s.Name
	}
	var parts []string
	if s.Contains != "" {
		parts = append(parts, fmt.Sprintf("contains /%s/", s.Contains))
	}
	if s.NotContains != "" {
		parts = append(parts, fmt.Sprintf("not contains /%s/", s.NotContains))
	}
	if len(s.None) > 0 {
		parts = append(parts, "none "+fields(s.None))
	}
	if s.Every != nil {
		p := "every"
		if len(s.Every.Where) > 0 {
			p += " " + fields(s.Every.Where)
		}
		parts = append(parts, p+" has "+s.Every.Has)
	}
	if s.Count != "" {
		parts = append(parts, "count "+s.Count)
	}
	return fmt.Sprintf("logs %s: %s", s.Service, strings.Join(parts, ", "))
}

func fields(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// maxShown bounds the offending lines a failure prints.
const maxShown = 5

// line is one log line with its service, and its JSON fields if it is JSON.
type line struct {
	service string
	text    string
	json    map[string]any
}

// Judge applies one rule. underTest are the services "*" stands for; base
// resolves relative file names (the artifacts dir for eval).
//
// Rules: contains (at least one line matches, or count: compares the number
// of matching lines), not_contains (no line matches), none (no JSON line has
// all the field values; with count, compares their number instead), every
// (each JSON line — those matching where, if given — has a non-empty field).
// Several rules in one assertion must all hold.
func Judge(spec scenario.LogAssertion, ev Evidence, underTest []string, base string, vars expect.Vars) verdict.Result {
	res := verdict.Result{Kind: "logs", Name: Name(spec)}
	fail := func(format string, args ...any) verdict.Result {
		res.Status, res.Detail = verdict.Error, fmt.Sprintf(format, args...)
		return res
	}
	if spec.Contains == "" && spec.NotContains == "" && len(spec.None) == 0 && spec.Every == nil && spec.Count == "" {
		return fail("a log assertion needs contains, not_contains, none, every or count")
	}
	var contains, notContains *regexp.Regexp
	var err error
	if spec.Contains != "" {
		if contains, err = regexp.Compile(spec.Contains); err != nil {
			return fail("contains: %v", err)
		}
	}
	if spec.NotContains != "" {
		if notContains, err = regexp.Compile(spec.NotContains); err != nil {
			return fail("not_contains: %v", err)
		}
	}
	var count *expect.Expectation
	if spec.Count != "" {
		e, err := expect.Parse(spec.Count)
		if err != nil {
			return fail("count: %v", err)
		}
		count = &e
	}
	services, err := selectServices(spec.Service, ev, underTest)
	if err != nil {
		return fail("%v", err)
	}
	needJSON := len(spec.None) > 0 || spec.Every != nil

	var total, matching, badNone, badEvery, badNot int
	var shown []string
	show := func(l line, why string) {
		if len(shown) < maxShown {
			t := l.text
			if len(t) > 300 {
				t = t[:300] + "…"
			}
			shown = append(shown, fmt.Sprintf("%s: %s  [%s]", l.service, t, why))
		}
	}
	for _, svc := range services {
		err := eachLine(ev[svc], base, func(text string) {
			l := line{service: svc, text: text}
			total++
			if needJSON {
				l.json = parseJSON(text)
			}
			if notContains != nil && notContains.MatchString(text) {
				badNot++
				show(l, "matches not_contains")
			}
			if contains != nil || count != nil {
				if (contains == nil || contains.MatchString(text)) && (len(spec.None) == 0 || hasAll(l.json, spec.None)) {
					matching++
				}
			}
			if len(spec.None) > 0 && count == nil && hasAll(l.json, spec.None) {
				badNone++
				show(l, "has "+fields(spec.None))
			}
			// A line that is not JSON (a panic's stack, a runtime message)
			// cannot carry the field: it fails an unconditional every.
			if spec.Every != nil && l.json == nil && len(spec.Every.Where) == 0 {
				badEvery++
				show(l, "not a JSON line, so no "+spec.Every.Has)
			}
			if spec.Every != nil && l.json != nil && hasAll(l.json, spec.Every.Where) {
				if v, ok := lookup(l.json, spec.Every.Has); !ok || v == "" {
					badEvery++
					show(l, "no "+spec.Every.Has)
				}
			}
		})
		if err != nil {
			return fail("%v", err)
		}
	}

	var measured, problems []string
	if notContains != nil {
		measured = append(measured, fmt.Sprintf("%d lines match not_contains", badNot))
		if badNot > 0 {
			problems = append(problems, "not_contains")
		}
	}
	if len(spec.None) > 0 && count == nil {
		measured = append(measured, fmt.Sprintf("%d lines with %s", badNone, fields(spec.None)))
		if badNone > 0 {
			problems = append(problems, "none")
		}
	}
	if spec.Every != nil {
		measured = append(measured, fmt.Sprintf("%d lines without %s", badEvery, spec.Every.Has))
		if badEvery > 0 {
			problems = append(problems, "every")
		}
	}
	switch {
	case count != nil:
		measured = append(measured, fmt.Sprintf("%d matching lines", matching))
		ok, err := count.Check(float64(matching), vars)
		if err != nil {
			return fail("count: %v", err)
		}
		if !ok {
			t, _ := count.Target(vars)
			problems = append(problems, fmt.Sprintf("count %d, want %s (%s)", matching, spec.Count, strconv.FormatFloat(t, 'g', -1, 64)))
		}
		res.Expected = "count " + spec.Count
	case contains != nil:
		measured = append(measured, fmt.Sprintf("%d lines match contains", matching))
		if matching == 0 {
			problems = append(problems, fmt.Sprintf("no line matches /%s/", spec.Contains))
		}
	}
	res.Measured = fmt.Sprintf("%s (%d lines from %s)", strings.Join(measured, ", "), total, strings.Join(services, ", "))
	if len(problems) == 0 {
		res.Status = verdict.Pass
		return res
	}
	res.Status = verdict.Fail
	res.Detail = "failed: " + strings.Join(problems, "; ")
	if len(shown) > 0 {
		res.Detail += "\nfirst offending lines:\n  " + strings.Join(shown, "\n  ")
	}
	return res
}

// selectServices resolves a name, a glob or "*" against the recorded logs.
func selectServices(pattern string, ev Evidence, underTest []string) ([]string, error) {
	var out []string
	if pattern == "*" {
		for _, s := range underTest {
			if _, ok := ev[s]; !ok {
				return nil, fmt.Errorf("service %q is under test but no log was recorded for it", s)
			}
			out = append(out, s)
		}
		if len(out) == 0 {
			return nil, fmt.Errorf(`service "*": no service is marked under test`)
		}
		sort.Strings(out)
		return out, nil
	}
	for s := range ev {
		ok, err := path.Match(pattern, s)
		if err != nil {
			return nil, fmt.Errorf("service pattern %q: %w", pattern, err)
		}
		if ok {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		known := make([]string, 0, len(ev))
		for s := range ev {
			known = append(known, s)
		}
		sort.Strings(known)
		return nil, fmt.Errorf("service %q matches no recorded log (have: %s)", pattern, strings.Join(known, ", "))
	}
	sort.Strings(out)
	return out, nil
}

// eachLine calls f for every line in r's byte range.
func eachLine(r Range, base string, f func(string)) error {
	name := r.File
	if !filepath.IsAbs(name) && base != "" {
		name = filepath.Join(base, name)
	}
	fh, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	defer fh.Close()
	if r.End < r.Start {
		return fmt.Errorf("log %s: end offset %d before start %d (file truncated?)", name, r.End, r.Start)
	}
	sc := bufio.NewScanner(io.NewSectionReader(fh, r.Start, r.End-r.Start))
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		if t := string(bytes.TrimRight(sc.Bytes(), "\r")); t != "" {
			f(t)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read log %s: %w", name, err)
	}
	return nil
}

// parseJSON returns the line's fields, or nil for a line that is not a JSON object.
func parseJSON(text string) map[string]any {
	t := strings.TrimSpace(text)
	if !strings.HasPrefix(t, "{") {
		return nil
	}
	var m map[string]any
	if json.Unmarshal([]byte(t), &m) != nil {
		return nil
	}
	return m
}

// lookup finds a field, following dots into nested objects ("http.status"),
// and renders it as text.
func lookup(m map[string]any, key string) (string, bool) {
	if m == nil {
		return "", false
	}
	v, ok := m[key]
	if !ok {
		head, rest, nested := strings.Cut(key, ".")
		sub, isObj := m[head].(map[string]any)
		if !nested || !isObj {
			return "", false
		}
		return lookup(sub, rest)
	}
	switch x := v.(type) {
	case nil:
		return "", true
	case string:
		return x, true
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), true
	case bool:
		return strconv.FormatBool(x), true
	}
	b, _ := json.Marshal(v)
	return string(b), true
}

// hasAll reports whether every field has its value. Values compare without
// regard to case, because loggers disagree on "error" versus "ERROR".
func hasAll(m map[string]any, want map[string]string) bool {
	if m == nil {
		return false
	}
	for k, w := range want {
		v, ok := lookup(m, k)
		if !ok || !strings.EqualFold(v, w) {
			return false
		}
	}
	return true
}
