package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/meshproof/meshproof/harness/compare"
)

// cmdCompare sets a run against a baseline run: exit 1 on a real
// regression beyond the thresholds, 0 otherwise, 2 on bad input.
func cmdCompare(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var thresholds multiFlag
	format := fs.String("format", compare.FormatTable, "table, markdown (a PR comment, $GITHUB_STEP_SUMMARY) or json")
	fs.Var(&thresholds, "threshold", `a regression threshold such as "p(99) regression <= 10%" (repeatable; replaces the scenario's compare: section)`)
	alpha := fs.Float64("alpha", 0.01, "significance level of the statistical tests")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: meshproof compare BASE_RUN_DIR NEW_RUN_DIR [--format table|markdown|json] [--threshold T]...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(reorder(args)); err != nil {
		return parseExit(err)
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return 2
	}
	res, err := compareRuns(fs.Arg(0), fs.Arg(1), thresholds, *alpha)
	if err == nil {
		err = res.Write(stdout, *format)
	}
	if err != nil {
		// Bad input and an unwritable output alike leave no verdict.
		fmt.Fprintf(stderr, "meshproof compare: %v\n", err)
		return 2
	}
	if res.Regression {
		return 1
	}
	return 0
}

func compareRuns(baseDir, newDir string, thresholds []string, alpha float64) (*compare.Result, error) {
	base, err := compare.Load(baseDir)
	if err != nil {
		return nil, fmt.Errorf("base run: %w", err)
	}
	newRun, err := compare.Load(newDir)
	if err != nil {
		return nil, fmt.Errorf("new run: %w", err)
	}
	ts, err := compare.Thresholds(thresholds, newRun)
	if err != nil {
		return nil, err
	}
	return compare.Compare(base, newRun, compare.Options{Thresholds: ts, Alpha: alpha}), nil
}
