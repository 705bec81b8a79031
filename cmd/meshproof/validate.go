package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/meshproof/meshproof/harness/run"
	"github.com/meshproof/meshproof/harness/scenario"
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

func cmdList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return parseExit(err)
	}
	dir := "scenarios"
	if fs.NArg() > 0 {
		dir = fs.Arg(0)
	}
	list, err := scenario.List(dir)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	for _, s := range list {
		desc := strings.Join(strings.Fields(s.Description), " ")
		fmt.Fprintf(stdout, "%-18s %-28s %s\n", s.Name, filepath.ToSlash(s.File), desc)
	}
	return 0
}
