package main

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Item names: what `-items` selects, what the log says and what a figure's
// item column shows. Names rather than numbers, so adding an item never
// renumbers the others in flags, scripts and old RESULTS.md files.
const (
	itemHTTP          = "http"
	itemGRPC          = "grpc"
	itemOpenModel     = "open-model"
	itemOmission      = "omission"
	itemAccuracy      = "accuracy"
	itemFootprint     = "footprint"
	itemTraces        = "traces"
	itemJaeger        = "jaeger"
	itemMeshLocal     = "mesh-local"
	itemStartupDocker = "startup-docker"
)

// benchItem is one measurement the bench can run.
type benchItem struct {
	name string
	what string
	// prepare: the item starts helper binaries (Jaeger, the mesh) that
	// are built once, outside the timed budget.
	prepare bool
	run     func(*runner, context.Context) error
}

// benchItems in running order, which follows cost: the engine-only items
// first, then those that need Jaeger or a whole environment. The report
// lists figures in this order too.
var benchItems = []benchItem{
	{itemHTTP, "HTTP throughput, ours vs hey and wrk", false, (*runner).itemThroughputHTTP},
	{itemGRPC, "gRPC throughput, ours (replies decoded and not) vs ghz", false, (*runner).itemThroughputGRPC},
	{itemOpenModel, "open model at fixed rates and max sustainable rate, ours vs vegeta", false, (*runner).itemOpenModel},
	{itemOmission, "p99 under a 1s stall vs the true p99, ours, hey and vegeta", false, (*runner).itemCoordinatedOmission},
	{itemAccuracy, "p50 ours vs hey on a 2ms handler", false, (*runner).itemAccuracy},
	{itemFootprint, "CPU and peak RSS for 100k and 1M requests", false, (*runner).itemFootprint},
	{itemTraces, "judging real fanout-load traces, one core", false, (*runner).itemTraceJudging},
	{itemJaeger, "fetching 2k traces back from Jaeger", true, (*runner).jaegerFetch},
	{itemMeshLocal, "local backend start-up and mesh latency at 20 users", true, (*runner).itemLocalEnvironment},
	{itemStartupDocker, "docker backend start-up", true, (*runner).itemDockerStartup},
}

// allItems is every item's name, comma-separated: the -items default.
func allItems() string {
	names := make([]string, len(benchItems))
	for i, it := range benchItems {
		names[i] = it.name
	}
	return strings.Join(names, ",")
}

// itemsHelp lists the items for -h.
func itemsHelp() string {
	var b strings.Builder
	b.WriteString("comma-separated items to run:")
	for _, it := range benchItems {
		fmt.Fprintf(&b, "\n  %-15s %s", it.name, it.what)
	}
	return b.String()
}

// parseItems turns -items into a set, refusing names it does not know.
func parseItems(list string) (map[string]bool, error) {
	known := map[string]bool{}
	for _, it := range benchItems {
		known[it.name] = true
	}
	want := map[string]bool{}
	for s := range strings.SplitSeq(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !known[s] {
			return nil, fmt.Errorf("-items: unknown item %q (known: %s)", s, allItems())
		}
		want[s] = true
	}
	if len(want) == 0 {
		return nil, fmt.Errorf("-items: no item named (known: %s)", allItems())
	}
	return want, nil
}

// needsPrepare reports whether a wanted item starts helper binaries.
func needsPrepare(want map[string]bool) bool {
	for _, it := range benchItems {
		if want[it.name] && it.prepare {
			return true
		}
	}
	return false
}

// runItems runs the wanted items in order until ctx ends; an item's
// failure is logged (its figures say "not measured") and the next one runs.
func (r *runner) runItems(ctx context.Context, want map[string]bool) {
	for _, it := range benchItems {
		if !want[it.name] {
			continue
		}
		if ctx.Err() != nil {
			return
		}
		began := time.Now()
		if err := it.run(r, ctx); err != nil {
			r.logf("item %s: %v", it.name, err)
		}
		r.logf("item %s done in %s", it.name, time.Since(began).Round(100*time.Millisecond))
	}
}
