// Package run is the harness's orchestration: a scenario goes up, is loaded,
// drained and judged, and comes down again — whatever happens in between.
// The CLI, `go test ./e2e` and `meshproof eval` all go through it, so a run
// behaves the same wherever it is started.
package run

import (
	"fmt"
)

// InputError is a problem with what the user gave: a scenario, a flag, a
// compose file. It maps to exit code 2.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// EnvError is an environment that could not be brought up or reached. It maps
// to exit code 2: no assertion was judged, so none can be said to fail.
type EnvError struct{ Err error }

func (e *EnvError) Error() string { return e.Err.Error() }
func (e *EnvError) Unwrap() error { return e.Err }

func inputErr(format string, args ...any) error {
	return &InputError{Err: fmt.Errorf(format, args...)}
}

func envErr(format string, args ...any) error {
	return &EnvError{Err: fmt.Errorf(format, args...)}
}

// ExitCode maps an error from this package to the CLI's exit code: any
// error means no verdict was reached (bad input, environment failure, or
// something unexpected), which is exit 2; a verdict's own failure is exit 1
// and never comes as an error.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	return 2
}
