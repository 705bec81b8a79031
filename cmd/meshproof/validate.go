package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/meshproof/meshproof/harness/run"
)

func cmdValidate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, "usage: meshproof validate FILE...") }
	if err := fs.Parse(args); err != nil {
		return parseExit(err)
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	code := 0
	for _, f := range fs.Args() {
		if _, err := run.Prepare(ctx, f, nil); err != nil {
			fmt.Fprintln(stderr, err)
			code = 2
			continue
		}
		fmt.Fprintf(stdout, "%s: ok\n", f)
	}
	return code
}
