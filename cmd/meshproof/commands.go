package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/meshproof/meshproof/harness/load"
	"github.com/meshproof/meshproof/harness/report"
	"github.com/meshproof/meshproof/harness/run"
)

// multiFlag collects a repeatable flag such as --set.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && load.IsTerminal(f)
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o run.Options
	var sets multiFlag
	fs.StringVar(&o.Backend, "backend", "auto", "auto, docker or local (auto: docker when a daemon answers)")
	fs.BoolVar(&o.Keep, "keep", false, "leave the environment running afterwards (stop it with `meshproof down`)")
	fs.StringVar(&o.OutDir, "out", "artifacts", "artifacts root; the run writes <out>/<scenario>/<run-id>/")
	fs.Var(&sets, "set", "override a scenario field, e.g. --set load.users=5 (repeatable)")
	fs.StringVar(&o.Attach, "attach", "", "run against the environment RUN_ID left running (`make up`, run --keep) and leave it running")
	fs.StringVar(&o.Endpoints, "endpoints", "", "run against a deployment meshproof did not start, described by this endpoints `FILE`")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: meshproof run SCENARIO [--backend auto|docker|local] [--keep] [--out DIR] [--set path=value]... [--attach RUN_ID | --endpoints FILE]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(reorder(args)); err != nil {
		return parseExit(err)
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	o.Scenario, o.Sets, o.Out = fs.Arg(0), sets, stdout
	o.Live = isTerminal(stdout)
	rep, err := run.Run(ctx, o)
	if rep != nil {
		rep.WriteTerminal(stdout, report.Style{Color: isTerminal(stdout)})
	}
	if err != nil {
		fmt.Fprintf(stderr, "meshproof: %v\n", err)
		return run.ExitCode(err)
	}
	if !rep.Passed() {
		return 1
	}
	return 0
}

// reorder moves flags before positional arguments so that both
// `run FILE --keep` and `run --keep FILE` work, as users expect.
func reorder(args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			flags = append(flags, a)
			if !strings.Contains(a, "=") && i+1 < len(args) && takesValue(a) {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(flags, pos...)
}

func takesValue(flagName string) bool {
	switch strings.TrimLeft(flagName, "-") {
	case "keep", "detach", "d", "all", "print":
		return false
	}
	return true
}

func cmdEval(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sets multiFlag
	fs.Var(&sets, "set", "override a scenario field before judging (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: meshproof eval ARTIFACTS_DIR [SCENARIO] [--set path=value]...")
		fmt.Fprintln(stderr, "Re-judges a finished run from its saved evidence; SCENARIO defaults to the copy saved with the run.")
	}
	if err := fs.Parse(reorder(args)); err != nil {
		return parseExit(err)
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		fs.Usage()
		return 2
	}
	rep, err := run.Eval(ctx, fs.Arg(0), fs.Arg(1), sets)
	if err != nil {
		fmt.Fprintf(stderr, "meshproof: %v\n", err)
		return run.ExitCode(err)
	}
	rep.WriteTerminal(stdout, report.Style{Color: isTerminal(stdout)})
	if err := rep.AppendStepSummary(); err != nil {
		fmt.Fprintf(stderr, "meshproof: %v\n", err)
	}
	if !rep.Passed() {
		return 1
	}
	return 0
}

func cmdUp(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o run.UpOptions
	var services string
	fs.StringVar(&o.Backend, "backend", "auto", "auto, docker or local")
	fs.StringVar(&o.Compose, "compose", "docker-compose.yml", "compose file (ignored when a SCENARIO is given)")
	fs.StringVar(&services, "services", "", "comma-separated services to start (plus their dependencies); default all")
	fs.BoolVar(&o.Detach, "detach", false, "leave the environment running and exit (stop it with `meshproof down`)")
	fs.StringVar(&o.OutDir, "out", "artifacts", "where logs go: <out>/up/<run-id>/logs")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: meshproof up [SCENARIO] [--backend B] [--compose FILE] [--services a,b] [--detach]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(reorder(args)); err != nil {
		return parseExit(err)
	}
	if fs.NArg() > 1 {
		fs.Usage()
		return 2
	}
	o.Scenario = fs.Arg(0)
	if services != "" {
		o.Services = strings.Split(services, ",")
	}
	o.Out = stdout
	env, err := run.Up(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "meshproof: %v\n", err)
		return run.ExitCode(err)
	}
	printEndpoints(stdout, env.Endpoints)
	if o.Detach {
		fmt.Fprintf(stdout, "\nleft running as run %s; stop it with: meshproof down %s\n", env.RunID, env.RunID)
		return 0
	}
	fmt.Fprintln(stdout, "\nup; press Ctrl-C to stop everything")
	<-ctx.Done()
	downCtx, cancel := context.WithTimeout(context.Background(), run.DownTimeout)
	defer cancel()
	if err := env.Down(downCtx); err != nil {
		fmt.Fprintf(stderr, "meshproof: down: %v\n", err)
		return 2
	}
	fmt.Fprintln(stdout, "stopped")
	return 0
}

func printEndpoints(w io.Writer, eps map[string][]string) {
	names := make([]string, 0, len(eps))
	for n := range eps {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, strings.Join(eps[n], "  "))
	}
}

func cmdDown(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("down", flag.ContinueOnError)
	fs.SetOutput(stderr)
	all := fs.Bool("all", false, "stop every environment left running by `up --detach` or `run --keep`")
	fs.Usage = func() { fmt.Fprintln(stderr, "usage: meshproof down RUN_ID... | --all") }
	if err := fs.Parse(reorder(args)); err != nil {
		return parseExit(err)
	}
	if !*all && fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	removed, err := run.Down(ctx, fs.Args(), *all)
	for _, r := range removed {
		fmt.Fprintf(stdout, "removed %s\n", r)
	}
	if err != nil {
		fmt.Fprintf(stderr, "meshproof: %v\n", err)
		return 2
	}
	return 0
}

func cmdGC(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	removed, err := run.GC(ctx)
	for _, r := range removed {
		fmt.Fprintf(stdout, "removed %s\n", r)
	}
	if err != nil {
		fmt.Fprintf(stderr, "meshproof: %v\n", err)
		return 2
	}
	if len(removed) == 0 {
		fmt.Fprintln(stdout, "nothing to remove")
	}
	return 0
}

func cmdImages(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("images", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return parseExit(err)
	}
	if err := run.BuildImages(ctx, stdout); err != nil {
		fmt.Fprintf(stderr, "meshproof: %v\n", err)
		return 2
	}
	return 0
}

func cmdVersion(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				v = s.Value
			}
		}
	}
	fmt.Fprintf(stdout, "meshproof %s\n", v)
	return 0
}

// parseExit maps a flag parsing error to the exit code: -h is a request, not
// bad input.
func parseExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}
