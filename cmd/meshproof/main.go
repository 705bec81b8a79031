// Command meshproof brings up a compose environment, drives load against it,
// and judges traces, metrics, logs and stored data in one verdict.
//
// Exit codes: 0 every assertion passed, 1 an assertion failed, 2 bad input or
// an environment that could not be brought up.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal the run tears down; restoring default
		// handling lets a second Ctrl-C end the process at once.
		<-ctx.Done()
		stop()
	}()
	code := Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"run", "run a scenario: up, load, assert, report, down", cmdRun},
		{"validate", "check scenario files (and their compose topology)", cmdValidate},
		{"list", "list the scenarios in a directory", cmdList},
		{"eval", "re-judge a finished run from its saved artifacts", cmdEval},
		{"compare", "compare a run with a baseline run: latency, spans, trace shape", cmdCompare},
		{"up", "bring an environment up and print its endpoints", cmdUp},
		{"down", "stop environments left running by `up --detach`", cmdDown},
		{"gc", "remove what crashed or killed runs left behind", cmdGC},
		{"images", "build the offline stand-in images (Docker without a registry)", cmdImages},
		{"version", "print the version", cmdVersion},
	}
}

// Main runs the CLI and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "meshproof: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: meshproof <command> [flags]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'meshproof <command> -h' for a command's flags.")
}
