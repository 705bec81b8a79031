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

	"github.com/meshproof/meshproof/harness/assert/expect"
	"github.com/meshproof/meshproof/harness/assert/verdict"
	"github.com/meshproof/meshproof/harness/scenario"
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
//
// Judging is three steps: compile the rule (a bad pattern is an error before
// any log is read), count over every line in one pass, then turn the counts
// into what was measured and which rules failed.
func Judge(spec scenario.LogAssertion, ev Evidence, underTest []string, base string, vars expect.Vars) verdict.Result {
	res := verdict.Result{Kind: "logs", Name: Name(spec)}
	fail := func(err error) verdict.Result {
		res.Status, res.Detail = verdict.Error, err.Error()
		return res
	}
	r, err := compileRule(spec)
	if err != nil {
		return fail(err)
	}
	services, err := selectServices(spec.Service, ev, underTest)
	if err != nil {
		return fail(err)
	}
	t, err := r.countLines(ev, services, base)
	if err != nil {
		return fail(err)
	}
	measured, problems, err := r.assess(t, vars)
	if err != nil {
		return fail(err)
	}
	if r.count != nil {
		res.Expected = "count " + spec.Count
	}
	res.Measured = fmt.Sprintf("%s (%d lines from %s)", strings.Join(measured, ", "), t.total, strings.Join(services, ", "))
	if t.total == 0 && !spec.AllowEmpty {
		// A rule over no lines proves nothing: the logs may never have
		// been collected, or the service may have logged nowhere we read.
		problems = append(problems, fmt.Sprintf("%s wrote no log lines during the run (set allow_empty: true if silence is what you expect)", strings.Join(services, ", ")))
	}
	if len(problems) == 0 {
		res.Status = verdict.Pass
		return res
	}
	res.Status = verdict.Fail
	res.Detail = "failed: " + strings.Join(problems, "; ")
	if len(t.shown) > 0 {
		res.Detail += "\nfirst offending lines:\n  " + strings.Join(t.shown, "\n  ")
	}
	return res
}

// rule is a log assertion compiled once, so that the work per line is only
// matching: services log hundreds of thousands of lines in a run.
type rule struct {
	spec        scenario.LogAssertion
	contains    *regexp.Regexp      // nil without contains
	notContains *regexp.Regexp      // nil without not_contains
	count       *expect.Expectation // nil without count
	needJSON    bool                // none or every look into JSON fields
}

// compileRule checks that the assertion has a rule and compiles its
// patterns and count, naming the field at fault.
func compileRule(spec scenario.LogAssertion) (*rule, error) {
	if spec.Contains == "" && spec.NotContains == "" && len(spec.None) == 0 && spec.Every == nil && spec.Count == "" {
		return nil, errors.New("a log assertion needs contains, not_contains, none, every or count")
	}
	r := &rule{spec: spec, needJSON: len(spec.None) > 0 || spec.Every != nil}
	var err error
	if spec.Contains != "" {
		if r.contains, err = regexp.Compile(spec.Contains); err != nil {
			return nil, fmt.Errorf("contains: %w", err)
		}
	}
	if spec.NotContains != "" {
		if r.notContains, err = regexp.Compile(spec.NotContains); err != nil {
			return nil, fmt.Errorf("not_contains: %w", err)
		}
	}
	if spec.Count != "" {
		e, err := expect.Parse(spec.Count)
		if err != nil {
			return nil, fmt.Errorf("count: %w", err)
		}
		r.count = &e
	}
	return r, nil
}

// tally is what one pass over the lines counted for a rule.
type tally struct {
	total    int      // lines read
	matching int      // lines counted by contains or count
	badNot   int      // lines matching not_contains
	badNone  int      // JSON lines with all of none's fields
	badEvery int      // lines every requires a field of, without it
	shown    []string // the first maxShown offending lines, for the failure
}

// offend records an offending line for the failure message, up to maxShown;
// a long line is cut so one stack dump does not drown the report.
func (t *tally) offend(l line, why string) {
	if len(t.shown) >= maxShown {
		return
	}
	text := l.text
	if len(text) > 300 {
		text = text[:300] + "…"
	}
	t.shown = append(t.shown, fmt.Sprintf("%s: %s  [%s]", l.service, text, why))
}

// countLines reads each service's range once, counting every rule at a time.
func (r *rule) countLines(ev Evidence, services []string, base string) (*tally, error) {
	t := &tally{}
	for _, svc := range services {
		err := eachLine(ev[svc], base, func(text string) { r.observe(t, svc, text) })
		if err != nil {
			return nil, err
		}
	}
	return t, nil
}

// observe counts one line against every rule of the assertion.
func (r *rule) observe(t *tally, svc, text string) {
	spec := r.spec
	l := line{service: svc, text: text}
	t.total++
	if r.needJSON {
		l.json = parseJSON(text)
	}
	if r.notContains != nil && r.notContains.MatchString(text) {
		t.badNot++
		t.offend(l, "matches not_contains")
	}
	if r.contains != nil || r.count != nil {
		if (r.contains == nil || r.contains.MatchString(text)) && (len(spec.None) == 0 || hasAll(l.json, spec.None)) {
			t.matching++
		}
	}
	if len(spec.None) > 0 && r.count == nil && hasAll(l.json, spec.None) {
		t.badNone++
		t.offend(l, "has "+fields(spec.None))
	}
	// A line that is not JSON (a panic's stack, a runtime message)
	// cannot carry the field: it fails an unconditional every.
	if spec.Every != nil && l.json == nil && len(spec.Every.Where) == 0 {
		t.badEvery++
		t.offend(l, "not a JSON line, so no "+spec.Every.Has)
	}
	if spec.Every != nil && l.json != nil && hasAll(l.json, spec.Every.Where) {
		if v, ok := lookup(l.json, spec.Every.Has); !ok || v == "" {
			t.badEvery++
			t.offend(l, "no "+spec.Every.Has)
		}
	}
}

// assess turns the counts into what each rule measured and the rules that
// failed; err is a count that cannot be compared (an unknown variable).
func (r *rule) assess(t *tally, vars expect.Vars) (measured, problems []string, err error) {
	spec := r.spec
	if r.notContains != nil {
		measured = append(measured, fmt.Sprintf("%d lines match not_contains", t.badNot))
		if t.badNot > 0 {
			problems = append(problems, "not_contains")
		}
	}
	if len(spec.None) > 0 && r.count == nil {
		measured = append(measured, fmt.Sprintf("%d lines with %s", t.badNone, fields(spec.None)))
		if t.badNone > 0 {
			problems = append(problems, "none")
		}
	}
	if spec.Every != nil {
		measured = append(measured, fmt.Sprintf("%d lines without %s", t.badEvery, spec.Every.Has))
		if t.badEvery > 0 {
			problems = append(problems, "every")
		}
	}
	switch {
	case r.count != nil:
		measured = append(measured, fmt.Sprintf("%d matching lines", t.matching))
		ok, err := r.count.Check(float64(t.matching), vars)
		if err != nil {
			return nil, nil, fmt.Errorf("count: %w", err)
		}
		if !ok {
			target, _ := r.count.Target(vars)
			problems = append(problems, fmt.Sprintf("count %d, want %s (%s)", t.matching, spec.Count, strconv.FormatFloat(target, 'g', -1, 64)))
		}
	case r.contains != nil:
		measured = append(measured, fmt.Sprintf("%d lines match contains", t.matching))
		if t.matching == 0 {
			problems = append(problems, fmt.Sprintf("no line matches /%s/", spec.Contains))
		}
	}
	return measured, problems, nil
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
