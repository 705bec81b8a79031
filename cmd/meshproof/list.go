package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/meshproof/meshproof/harness/backend/docker"
	"github.com/meshproof/meshproof/harness/backend/local"
	"github.com/meshproof/meshproof/harness/run"
	"github.com/meshproof/meshproof/harness/scenario"
)

func cmdList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	running := fs.Bool("running", false, "list the environments left running (up --detach, run --keep) instead of scenarios")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: meshproof list [DIR]        the scenarios in DIR (default scenarios)")
		fmt.Fprintln(stderr, "       meshproof list --running    environments to run a scenario against with --attach")
	}
	if err := fs.Parse(args); err != nil {
		return parseExit(err)
	}
	if *running {
		if fs.NArg() > 0 {
			fs.Usage()
			return 2
		}
		return listRunning(ctx, stdout, stderr)
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

// runningEnv is one row of `list --running`, whichever backend runs it.
type runningEnv struct {
	runID, backend string
	services       int
	started        time.Time
	note           string
}

// listRunning prints the environments a scenario can attach to: the local
// backend's state files and the docker containers' run labels. A backend
// that cannot be asked is reported and skipped, so the other still lists.
func listRunning(ctx context.Context, stdout, stderr io.Writer) int {
	var rows []runningEnv
	code := 0
	lruns, err := local.New().Running()
	if err != nil {
		fmt.Fprintf(stderr, "meshproof: %v\n", err)
		code = 2
	}
	for _, r := range lruns {
		row := runningEnv{runID: r.RunID, backend: "local", services: len(r.Services), started: r.Started}
		switch {
		case !r.Ready:
			row.note = "still starting"
		case !r.Detached:
			row.note = "ends with the harness that started it"
		}
		rows = append(rows, row)
	}
	if run.DockerAvailable(ctx) {
		druns, err := docker.New().Runs(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "meshproof: docker: %v\n", err)
			code = 2
		}
		for _, r := range druns {
			row := runningEnv{runID: r.RunID, backend: "docker", services: len(r.Services), started: r.Started}
			if r.Running < len(r.Services) {
				row.note = fmt.Sprintf("%d of %d running", r.Running, len(r.Services))
			}
			if !r.Detached {
				row.note = strings.TrimPrefix(row.note+"; removed when its harness exits", "; ")
			}
			rows = append(rows, row)
		}
	}
	if len(rows) == 0 {
		fmt.Fprintln(stdout, "no environment is running; start one with `make up` (meshproof up --detach)")
		return code
	}
	printRunning(stdout, rows)
	return code
}

func printRunning(w io.Writer, rows []runningEnv) {
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].started.Before(rows[j].started) })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN ID\tBACKEND\tSERVICES\tSTARTED\tATTACH")
	for _, r := range rows {
		started := "-"
		if !r.started.IsZero() {
			started = r.started.Local().Format("2006-01-02 15:04:05")
		}
		attach := "meshproof run SCENARIO --attach " + r.runID
		if r.note != "" {
			attach += "  (" + r.note + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", r.runID, r.backend, r.services, started, attach)
	}
	_ = tw.Flush()
}
