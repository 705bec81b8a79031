package scenario

import (
	"fmt"
	"strings"
)

// Error is one problem in a scenario file, located so that an editor can
// jump to it. The CLI maps it (and ErrorList) to exit code 2.
type Error struct {
	File string
	// Line and Column are 1-based; 0 when unknown (a YAML syntax error
	// reports only its line).
	Line, Column int
	// Field is the path of the field concerned, e.g. assert.data[1].within;
	// empty for syntax errors.
	Field string
	Msg   string
}

// Error renders "file:line:col: field: msg", leaving out what is unknown.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(":")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d:", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, "%d:", e.Column)
		}
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem found in one pass, in file order where known,
// so a user fixes them all at once instead of one run per typo.
type ErrorList []*Error

// Error renders one problem per line.
func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap lets errors.As find the first *Error in the list.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// Err returns nil for an empty list, so a function can return l.Err()
// without handing out a non-nil interface holding an empty list.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}
