package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/meshproof/meshproof/bench"
	"github.com/meshproof/meshproof/harness/load"
)

// engineSummary is what `bench engine` prints: the figures of one run of
// the load engine in a process of its own.
type engineSummary struct {
	Requests int64   `json:"requests"`
	OK       int64   `json:"ok"`
	Errors   int64   `json:"errors"`
	Seconds  float64 `json:"seconds"`
	RPS      float64 `json:"rps"`
	P50Ms    float64 `json:"p50_ms"`
	P90Ms    float64 `json:"p90_ms"`
	P99Ms    float64 `json:"p99_ms"`
	MaxMs    float64 `json:"max_ms"`
	// OKRPS is successful answers per second over the measured window,
	// from the first scheduled send to the last answer: the open model's
	// achieved rate.
	OKRPS float64 `json:"ok_rps"`
	// Late and Dropped are the open model's sends that started behind
	// schedule or were never made.
	Late    int64 `json:"late"`
	Dropped int64 `json:"dropped"`
	// Traces is how many trace ids the result kept.
	Traces int `json:"traces"`
	// PeakRSSBytes is the process's own VmHWM when the run ended.
	PeakRSSBytes int64 `json:"peak_rss_bytes"`
}

// cmdEngine runs the load engine once, in its own process, so that the
// parent can read its CPU time and peak RSS from rusage and so that the
// engine competes with hey and wrk for the CPU the same way they do.
func cmdEngine(args []string) error {
	fs := flag.NewFlagSet("engine", flag.ContinueOnError)
	target := fs.String("target", "", "http://… or grpc://…")
	users := fs.Int("users", 50, "closed-model users")
	duration := fs.Duration("duration", 0, "measured duration")
	requests := fs.Int("requests", 0, "measured request count")
	method := fs.String("grpc-method", "", "package.Service/Method for grpc targets")
	data := fs.String("grpc-data", "{}", "request message as protojson")
	decode := fs.Bool("grpc-decode", false, "decode every reply into dynamicpb; a reply that does not decode fails the call")
	model := fs.String("model", "closed", "closed or open")
	rate := fs.Float64("rate", 0, "open-model arrivals per second")
	profile := fs.String("cpuprofile", "", "write a CPU profile of the run here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := load.Config{
		Target: *target, Model: load.Model(*model), Users: *users, Rate: *rate,
		Duration: *duration, Requests: *requests, Timeout: 10 * time.Second,
	}
	if *method != "" {
		cfg.GRPC = &load.GRPCCall{Method: *method, Data: *data, Decode: *decode}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	res, err := load.Run(ctx, cfg)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	m := res.Measured()
	status, _ := os.ReadFile("/proc/self/status")
	return json.NewEncoder(os.Stdout).Encode(engineSummary{
		Requests: m.Requests, OK: m.OK, Errors: m.Errors,
		Seconds: res.Duration().Seconds(), RPS: res.Throughput(),
		P50Ms: res.Latency.P50Ms, P90Ms: res.Latency.P90Ms, P99Ms: res.Latency.P99Ms, MaxMs: res.Latency.MaxMs,
		OKRPS: okRate(res), Late: res.Late, Dropped: res.Dropped, Traces: len(res.Traces),
		PeakRSSBytes: bench.VmHWM(status),
	})
}

// okRate is successful answers per second over the measured window.
func okRate(res *load.Result) float64 {
	d := res.Duration().Seconds()
	if d <= 0 {
		return 0
	}
	return float64(res.Measured().OK) / d
}
