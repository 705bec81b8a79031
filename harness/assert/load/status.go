package load

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/grpc/codes"

	"github.com/meshproof/meshproof/harness/assert/verdict"
	engine "github.com/meshproof/meshproof/harness/load"
)

// Counts say how often a status came; they cannot say what the answers
// said. A mesh that fails cleanly promises both — "the gateway answers 503
// naming the service that failed" — so two forms reach into the engine's
// per-status results:
//
//	status(503) > 0                             requests answered 503 (a counter)
//	status(Unavailable) == 0                    a gRPC code name, or error for no answer
//	body(503) contains '"service":"service-e"'  every sampled 503 body holds the text
//	body(503) !contains 'service-a'             no sampled 503 body holds it
//
// A body rule judges the few bodies the engine keeps per status
// (engine.MaxBodySamples, each cut to engine.MaxBodyBytes). No sampled body
// is no evidence, and it fails: a rule about what the 503s say must not
// pass because there were none.

// statusEngineNames are the statuses the engine records besides HTTP codes
// and gRPC code names.
var statusEngineNames = []string{"error", "other"}

// grpcCodeNames maps lower-case gRPC code names to their spelling in the
// engine's results ("unavailable" -> "Unavailable").
var grpcCodeNames = func() map[string]string {
	m := map[string]string{}
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		m[strings.ToLower(c.String())] = c.String()
	}
	return m
}()

// ParseStatus reads a status as the engine records it: an HTTP code
// (100–599), a gRPC code name in any case (Unavailable), "error" (no
// answer) or "other" (an HTTP code outside 100–599).
func ParseStatus(s string) (string, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.Atoi(s); err == nil && len(s) == 3 {
		if n < 100 || n > 599 {
			return "", fmt.Errorf("status %q: an HTTP code is 100 to 599", s)
		}
		return s, nil
	}
	lower := strings.ToLower(s)
	if name, ok := grpcCodeNames[lower]; ok {
		return name, nil
	}
	for _, n := range statusEngineNames {
		if lower == n {
			return n, nil
		}
	}
	return "", fmt.Errorf("unknown status %q: want an HTTP code (503), a gRPC code name (Unavailable) or error (no answer)", s)
}

// parseStatusMetric reads the inside of status(CODE).
func (t *Threshold) parseStatusMetric(inner string) error {
	code, err := ParseStatus(inner)
	if err != nil {
		return err
	}
	t.Metric, t.Code = StatusCount, code
	return nil
}

// Body rule operators.
const (
	opContains    = "contains"
	opNotContains = "!contains"
)

// isBodyRule tells a body rule from a METRIC OP VALUE threshold before
// either is parsed: its quoted text may hold anything, operators and
// "outside faults" included.
func isBodyRule(raw string) bool {
	return strings.HasPrefix(strings.ToLower(raw), string(Body)+"(")
}

// parseBody reads "body(CODE) contains 'TEXT'" or "... !contains 'TEXT'";
// TEXT is quoted with ' or " (the other quote may appear inside) and taken
// literally.
func parseBody(raw string) (Threshold, error) {
	t := Threshold{Raw: raw, Metric: Body}
	const want = `want body(CODE) contains 'TEXT' or body(CODE) !contains 'TEXT'`
	end := strings.IndexByte(raw, ')')
	if end < 0 {
		return t, fmt.Errorf("threshold %q: %s", raw, want)
	}
	code, err := ParseStatus(raw[len(Body)+1 : end])
	if err != nil {
		return t, fmt.Errorf("threshold %q: %w", raw, err)
	}
	t.Code = code
	op, text, _ := strings.Cut(strings.TrimSpace(raw[end+1:]), " ")
	switch strings.ToLower(op) {
	case opContains:
	case opNotContains:
		t.Negate = true
	default:
		return t, fmt.Errorf("threshold %q: %s", raw, want)
	}
	text = strings.TrimSpace(text)
	if len(text) < 2 || (text[0] != '\'' && text[0] != '"') || text[len(text)-1] != text[0] {
		return t, fmt.Errorf("threshold %q: the text after %s must be quoted, '...' or \"...\"", raw, strings.ToLower(op))
	}
	t.Text = text[1 : len(text)-1]
	if t.Text == "" || strings.ContainsRune(t.Text, rune(text[0])) {
		return t, fmt.Errorf("threshold %q: want one non-empty quoted text (quote with ' to write \", and the other way round)", raw)
	}
	return t, nil
}

// bodyExpected says what a body rule wants, for the report's Expected column.
func (t Threshold) bodyExpected() string {
	if t.Negate {
		return fmt.Sprintf("no sampled %s body contains %s", t.Code, quoteText(t.Text))
	}
	return fmt.Sprintf("every sampled %s body contains %s", t.Code, quoteText(t.Text))
}

// judgeBody judges a body rule on the bodies the engine kept for t.Code.
func (t Threshold) judgeBody(r *engine.Result) verdict.Result {
	v := verdict.Result{Kind: "load", Name: t.Raw, Expected: t.bodyExpected()}
	if r == nil {
		v.Status, v.Detail = verdict.Error, "no load result"
		return v
	}
	bodies := r.Bodies[t.Code]
	if len(bodies) == 0 {
		v.Status, v.Measured = verdict.Fail, "no "+t.Code+" answer"
		v.Detail = t.noBodies(r)
		return v
	}
	holding, firstBad := 0, -1
	for i, b := range bodies {
		if strings.Contains(b, t.Text) != t.Negate {
			holding++
		} else if firstBad < 0 {
			firstBad = i
		}
	}
	verb := "contain"
	if t.Negate {
		verb = "do not contain"
	}
	v.Measured = fmt.Sprintf("%d of %d sampled %s bodies %s %s", holding, len(bodies), t.Code, verb, quoteText(t.Text))
	if firstBad < 0 {
		v.Status = verdict.Pass
		return v
	}
	v.Status = verdict.Fail
	verb = "does not contain"
	if t.Negate {
		verb = "contains"
	}
	v.Detail = fmt.Sprintf("sampled %s body %d of %d %s %s: %s", t.Code, firstBad+1, len(bodies), verb, quoteText(t.Text), shownBody(bodies[firstBad]))
	if !t.Negate && len(bodies[firstBad]) >= engine.MaxBodyBytes-utf8.UTFMax {
		v.Detail += fmt.Sprintf(" (bodies are kept up to %d bytes: the text may lie past the cut)", engine.MaxBodyBytes)
	}
	return v
}

// noBodies explains a body rule with no body to judge: the status never
// came, or (a load.json written before bodies were kept) came unsampled.
func (t Threshold) noBodies(r *engine.Result) string {
	seen := "statuses seen: " + statusesLine(r.Status)
	if n := r.Status[t.Code]; n > 0 {
		return fmt.Sprintf("%d requests were answered %s but no body was sampled, so nothing shows what they said (%s)", n, t.Code, seen)
	}
	return fmt.Sprintf("no %s answer was seen, so no body shows what it says: no evidence is not a pass (%s)", t.Code, seen)
}

// statusesLine lists status counts, most frequent first: "200×97, 503×3".
func statusesLine(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] || m[keys[i]] == m[keys[j]] && keys[i] < keys[j] })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s×%d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// quoteText shows a rule's text as it would be written.
func quoteText(s string) string {
	if strings.ContainsRune(s, '\'') {
		return `"` + s + `"`
	}
	return "'" + s + "'"
}

// shownBody is a body on one line, cut for a verdict's detail.
func shownBody(b string) string {
	const maxShown = 300
	b = strings.TrimSpace(strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(b))
	if len(b) <= maxShown {
		return b
	}
	cut := maxShown
	for cut > 0 && !utf8.RuneStart(b[cut]) {
		cut--
	}
	return b[:cut] + "…"
}
