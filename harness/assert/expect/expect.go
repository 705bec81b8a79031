// Package expect parses and checks expectations such as "< 250ms",
// "== load.ok" or ">= 99.9%". Every assertion kind shares it, so one
// comparison grammar and one set of units hold across a scenario.
//
// Values are normalised: durations to seconds, percentages to fractions,
// rates ("/s") to per-second numbers. Measured values must use the same units.
package expect

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Op is a comparison operator.
type Op string

// Operators, longest first so that "<=" is not read as "<".
var ops = []Op{"<=", ">=", "==", "!=", "<", ">"}

// Unit says how a value was written, so it can be shown back the same way.
type Unit string

// Units.
const (
	None     Unit = ""
	Seconds  Unit = "s"
	Fraction Unit = "%"
	PerSec   Unit = "/s"
)

// Expectation is "OP VALUE" where VALUE is a number with an optional unit or
// the name of a run variable (load.ok).
type Expectation struct {
	Op    Op
	Value float64
	Unit  Unit
	// Var, when set, names the run variable the value comes from.
	Var string
	// Offset is added to Var's value: "== load.ok - 1" is Var=load.ok, Offset=-1.
	Offset float64
	Raw    string
}

// Parse reads an expectation.
func Parse(s string) (Expectation, error) {
	raw := strings.TrimSpace(s)
	e := Expectation{Raw: raw}
	rest := ""
	for _, op := range ops {
		if strings.HasPrefix(raw, string(op)) {
			e.Op = op
			rest = strings.TrimSpace(raw[len(op):])
			break
		}
	}
	if e.Op == "" {
		return e, fmt.Errorf("expectation %q: want an operator (< <= == >= > !=) then a value", raw)
	}
	if rest == "" {
		return e, fmt.Errorf("expectation %q: missing value after %s", raw, e.Op)
	}
	if isVarStart(rest[0]) {
		name, off, err := parseVar(rest)
		if err != nil {
			return e, fmt.Errorf("expectation %q: %w", raw, err)
		}
		e.Var, e.Offset = name, off
		return e, nil
	}
	v, u, err := ParseValue(rest)
	if err != nil {
		return e, fmt.Errorf("expectation %q: %w", raw, err)
	}
	e.Value, e.Unit = v, u
	return e, nil
}

// MustParse is Parse for expectations written in code.
func MustParse(s string) Expectation {
	e, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return e
}

func isVarStart(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' }

func parseVar(s string) (string, float64, error) {
	name, off := s, 0.0
	for _, sign := range []string{" + ", " - "} {
		if i := strings.Index(s, sign); i > 0 {
			n, err := strconv.ParseFloat(strings.TrimSpace(s[i+3:]), 64)
			if err != nil {
				return "", 0, fmt.Errorf("offset %q is not a number", s[i+3:])
			}
			if sign == " - " {
				n = -n
			}
			name, off = strings.TrimSpace(s[:i]), n
			break
		}
	}
	for _, c := range name {
		if !(isVarStart(byte(c)) || c == '.' || c >= '0' && c <= '9') || c > 127 {
			return "", 0, fmt.Errorf("%q is neither a number nor a run variable", s)
		}
	}
	return name, off, nil
}

// ParseValue reads a number with an optional unit: 250ms, 1.5s, 0.1%, 100/s.
func ParseValue(s string) (float64, Unit, error) {
	s = strings.TrimSpace(s)
	switch {
	case strings.HasSuffix(s, "%"):
		v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(s, "%")), 64)
		if err != nil {
			return 0, None, fmt.Errorf("%q is not a percentage", s)
		}
		return v / 100, Fraction, nil
	case strings.HasSuffix(s, "/s"):
		v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(s, "/s")), 64)
		if err != nil {
			return 0, None, fmt.Errorf("%q is not a rate", s)
		}
		return v, PerSec, nil
	}
	if v, err := strconv.ParseFloat(s, 64); err == nil {
		return v, None, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return d.Seconds(), Seconds, nil
	}
	return 0, None, fmt.Errorf("%q is not a number, duration (250ms), percentage (0.1%%) or rate (100/s)", s)
}

// RunVars are the run variables an expectation may name; the load engine
// sets exactly these (its tests hold it to this list).
var RunVars = []string{"load.requests", "load.ok", "load.errors", "load.duration", "load.rps", "load.dropped"}

// CheckVar reports a run variable no run defines ("load.okk"), so a typo
// fails validation instead of the whole run.
func CheckVar(name string) error {
	if name == "" || slices.Contains(RunVars, name) {
		return nil
	}
	return fmt.Errorf("unknown run variable %q (known: %s)", name, strings.Join(RunVars, ", "))
}

// Vars are run variables by name: load.ok, load.requests, ...
type Vars map[string]float64

// Target resolves the value compared against.
func (e Expectation) Target(vars Vars) (float64, error) {
	if e.Var == "" {
		return e.Value, nil
	}
	v, ok := vars[e.Var]
	if !ok {
		return 0, fmt.Errorf("unknown run variable %q", e.Var)
	}
	return v + e.Offset, nil
}

// Check compares measured with the expectation.
func (e Expectation) Check(measured float64, vars Vars) (bool, error) {
	t, err := e.Target(vars)
	if err != nil {
		return false, err
	}
	const eps = 1e-9
	switch e.Op {
	case "<":
		return measured < t, nil
	case "<=":
		return measured <= t+eps, nil
	case ">":
		return measured > t, nil
	case ">=":
		return measured >= t-eps, nil
	case "==":
		return math.Abs(measured-t) <= eps*math.Max(1, math.Abs(t)), nil
	case "!=":
		return math.Abs(measured-t) > eps*math.Max(1, math.Abs(t)), nil
	}
	return false, fmt.Errorf("unknown operator %q", e.Op)
}

// Format shows a value in the unit the expectation was written in.
func (e Expectation) Format(v float64) string { return Format(v, e.Unit) }

// Format shows a normalised value in unit u.
func Format(v float64, u Unit) string {
	switch u {
	case Seconds:
		return time.Duration(v * float64(time.Second)).Round(10 * time.Microsecond).String()
	case Fraction:
		return strconv.FormatFloat(v*100, 'g', 4, 64) + "%"
	case PerSec:
		return strconv.FormatFloat(v, 'f', 1, 64) + "/s"
	}
	return strconv.FormatFloat(v, 'g', 10, 64)
}

// String returns the expectation as written.
func (e Expectation) String() string { return e.Raw }
