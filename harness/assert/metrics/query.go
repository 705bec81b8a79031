package metrics

import (
	"errors"
	"fmt"
	"strings"

	"github.com/prometheus/prometheus/promql/parser"
)

// rangeVar is the variable a promql: query may use for the load window.
const rangeVar = "$__range"

// rangeStandIn is what rangeVar stands for while a query is checked before
// the run, when the load window is not yet known.
const rangeStandIn = "1m"

// promql is the parser queries are checked with: Prometheus's own, with
// only stable functions, as a server started without feature flags has.
var promql = parser.NewParser(parser.Options{})

// QueryError is a query that does not parse, located in the query as
// written so that validation can point at the column in the file.
type QueryError struct {
	// Line and Col are 1-based positions in the query as written.
	Line, Col int
	Err       error
}

func (e *QueryError) Error() string { return e.Err.Error() }
func (e *QueryError) Unwrap() error { return e.Err }

// ParseQuery checks a query before the run with the Prometheus parser
// (syntax and types: rate() of an instant vector fails here), with
// $__range standing for a one-minute window. Errors are *QueryError.
func ParseQuery(expr string) error {
	if strings.TrimSpace(expr) == "" {
		return &QueryError{Line: 1, Col: 1, Err: errors.New("the query is empty")}
	}
	query, offsets := substituteRange(expr)
	_, err := promql.ParseExpr(query)
	if err == nil {
		return nil
	}
	qe := &QueryError{Line: 1, Col: 1, Err: fmt.Errorf("PromQL: %w", err)}
	var list parser.ParseErrors
	if errors.As(err, &list) && len(list) > 0 {
		first := list[0]
		qe.Err = fmt.Errorf("PromQL: %w", first.Err)
		at := originalOffset(int(first.PositionRange.Start), offsets)
		qe.Line, qe.Col = lineCol(expr, at)
	}
	return qe
}

// substituteRange replaces every $__range with rangeStandIn and returns
// where each one was in expr.
func substituteRange(expr string) (string, []int) {
	var offsets []int
	for i := 0; ; {
		j := strings.Index(expr[i:], rangeVar)
		if j < 0 {
			break
		}
		offsets = append(offsets, i+j)
		i += j + len(rangeVar)
	}
	return strings.ReplaceAll(expr, rangeVar, rangeStandIn), offsets
}

// originalOffset maps a byte offset in the substituted query back to expr.
func originalOffset(at int, offsets []int) int {
	shift := len(rangeVar) - len(rangeStandIn)
	for k, o := range offsets {
		if at <= o-k*shift { // before this $__range (in substituted terms)
			break
		}
		at += shift
	}
	return at
}

// lineCol turns a byte offset in s into a 1-based line and column.
func lineCol(s string, at int) (line, col int) {
	at = max(0, min(at, len(s)))
	line = 1 + strings.Count(s[:at], "\n")
	return line, at - strings.LastIndex(s[:at], "\n")
}
