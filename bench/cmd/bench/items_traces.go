package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/meshproof/meshproof/bench"
	"github.com/meshproof/meshproof/harness/assert/traces"
	"github.com/meshproof/meshproof/harness/backend/local"
	"github.com/meshproof/meshproof/harness/environment"
	"github.com/meshproof/meshproof/harness/scenario"
	"github.com/meshproof/meshproof/harness/topology"
)

// jaegerTrace is how many traces the jaeger item exports and fetches back.
const jaegerTrace = 2_000

// jaegerFetch starts Jaeger through the local backend, exports 2,000
// traces to it over OTLP/HTTP JSON and times traces.Fetch reading them back.
func (r *runner) jaegerFetch(ctx context.Context) error {
	name := fmt.Sprintf("Jaeger fetch throughput, %s traces", humanCount(jaegerTrace))
	fail := func(err error) error {
		r.add(bench.Unmeasured(itemJaeger, name, nil, err.Error()))
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	env, err := r.startJaeger(ctx)
	if err != nil {
		return fail(err)
	}
	defer func() {
		dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer dcancel()
		if err := env.Down(dctx); err != nil {
			r.logf("  jaeger down: %v", err)
		}
	}()
	otlp, err := env.Address("jaeger", 4318)
	if err != nil {
		return fail(err)
	}
	query, err := env.Address("jaeger", 16686)
	if err != nil {
		return fail(err)
	}

	ts := bench.GenerateGreetingTraces(jaegerTrace, time.Now().UnixNano(), 2)
	ids := make([]string, len(ts))
	for i, t := range ts {
		ids[i] = t.TraceID
	}
	began := time.Now()
	if err := exportOTLP(ctx, otlp, ts); err != nil {
		return fail(err)
	}
	ingest := time.Since(began)
	client := traces.NewJaegerClient("http://"+query, nil)
	shape, err := traces.ParseShape(bench.GreetingShape)
	if err != nil {
		return fail(err)
	}
	// Jaeger's batch processor stores spans a little after the export
	// returns; wait until the last trace is whole, so the timed fetch below
	// measures reading rather than Jaeger's ingestion delay.
	if err := waitTrace(ctx, client, ids[len(ids)-1], bench.GreetingSpanCount); err != nil {
		return fail(err)
	}
	stored := time.Since(began)
	r.logf("  exported %d traces in %s, all stored after %s", len(ts), ingest.Round(time.Millisecond), stored.Round(time.Millisecond))

	fetchBegan := time.Now()
	ev, err := traces.Fetch(ctx, client, ids, []*traces.Shape{shape}, traces.FetchOptions{Deadline: time.Minute})
	took := time.Since(fetchBegan)
	if err != nil {
		return fail(err)
	}
	states := map[string]int{}
	for _, t := range ev.Traces {
		states[t.State]++
	}
	vs := traces.Judge(scenario.TraceAssertion{Name: "bench", Require: "100%", Shape: bench.GreetingShape, Sample: jaegerTrace}, ev, nil)
	judged := "not judged"
	if len(vs) > 0 {
		judged = string(vs[0].Status) + ": " + vs[0].Measured
	}
	r.details["jaeger"] = map[string]any{
		"traces": jaegerTrace, "export_seconds": ingest.Seconds(), "stored_after_seconds": stored.Seconds(),
		"fetch_seconds": took.Seconds(), "states": states, "judged": judged,
	}
	r.add(bench.NewFigure(itemJaeger, name, float64(jaegerTrace)/took.Seconds(), "traces/s", nil,
		fmt.Sprintf("traces.Fetch (8 parallel GETs of /api/v3/traces/{id}) took %.2f s; states %v; %s; export over OTLP/HTTP took %.2f s",
			took.Seconds(), states, judged, ingest.Seconds())))
	return nil
}

// startJaeger starts Jaeger alone through the local backend. Its log goes
// under the output directory, cleared first so that it holds this run only.
func (r *runner) startJaeger(ctx context.Context) (environment.Environment, error) {
	topo, err := topology.Load(ctx, filepath.Join(r.root, "docker-compose.yml"))
	if err != nil {
		return nil, fmt.Errorf("load topology: %w", err)
	}
	r.logf("item %s: starting jaeger (local backend)", itemJaeger)
	logDir := filepath.Join(r.outDir, "out", "logs", "jaeger")
	_ = os.RemoveAll(logDir)
	env, err := local.New().Up(ctx, topo, environment.Options{Services: []string{"jaeger"}, LogDir: logDir})
	if err != nil {
		return nil, fmt.Errorf("start jaeger: %w", err)
	}
	return env, nil
}

// exportOTLP sends the traces to the OTLP/HTTP receiver at otlp (host:port)
// in batches of 100, so that no single request grows with the trace count.
func exportOTLP(ctx context.Context, otlp string, ts []bench.SyntheticTrace) error {
	const batch = 100
	for i := 0; i < len(ts); i += batch {
		if err := postOTLP(ctx, "http://"+otlp+"/v1/traces", bench.OTLPRequest(ts[i:min(i+batch, len(ts))])); err != nil {
			return err
		}
	}
	return nil
}

func postOTLP(ctx context.Context, url string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("otlp export: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("otlp export: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 500))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("otlp export: HTTP %d: %s", resp.StatusCode, msg)
	}
	return nil
}

// waitTrace polls Jaeger until the trace has want spans.
func waitTrace(ctx context.Context, c *traces.JaegerClient, id string, want int) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if raw, err := c.GetTrace(ctx, id); err == nil {
			if spans, err := traces.DecodeSpans(raw, false); err == nil && len(spans) >= want {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("trace %s not stored in Jaeger with %d spans: %w", id, want, ctx.Err())
		case <-tick.C:
		}
	}
}

// loadAvg1 is the 1-minute load average, "?" when unreadable.
func loadAvg1() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

func humanCount(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}
