package traces

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// JaegerClient reads traces from Jaeger's stable query API (api_v3 over
// HTTP), not the UI's internal /api/traces, whose format is not a contract.
type JaegerClient struct {
	base string
	http *http.Client
}

// NewJaegerClient talks to the query endpoint at base, e.g. http://127.0.0.1:16686.
func NewJaegerClient(base string, hc *http.Client) *JaegerClient {
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	return &JaegerClient{base: strings.TrimRight(base, "/"), http: hc}
}

// errNotFound is Jaeger answering 404: the trace has no stored spans yet.
var errNotFound = fmt.Errorf("trace not found")

// GetTrace returns the raw api_v3 answer for one trace id.
func (c *JaegerClient) GetTrace(ctx context.Context, id string) (json.RawMessage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/v3/traces/"+url.PathEscape(id), nil)
	if err != nil {
		return nil, fmt.Errorf("get trace %s: %w", id, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get trace %s: %w", id, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("get trace %s: read: %w", id, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, errNotFound
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("get trace %s: HTTP %d: %s", id, resp.StatusCode, bytes.TrimSpace(body[:min(len(body), 200)]))
	}
	return body, nil
}

// Trace states recorded by Fetch: why polling that trace stopped.
const (
	StateCovered  = "covered"  // every wanted shape is matched or surely mismatched
	StateQuiet    = "quiet"    // span count stopped changing for QuietPolls polls
	StateDeadline = "deadline" // still changing (or absent) when time ran out
	StateError    = "error"    // Jaeger answered with an error
)

// Record is one fetched trace as saved in the run's artifacts.
type Record struct {
	ID    string `json:"id"`
	State string `json:"state"`
	Polls int    `json:"polls"`
	Spans int    `json:"spans"`
	Error string `json:"error,omitempty"`
	// Raw is Jaeger's answer, kept verbatim so eval can re-judge it.
	Raw json.RawMessage `json:"raw,omitempty"`
}

// Evidence is everything trace judging needs; it is JSON-serialisable.
type Evidence struct {
	FetchedAt time.Time     `json:"fetched_at"`
	Elapsed   time.Duration `json:"elapsed_ns"`
	Traces    []Record      `json:"traces"`
}

// FetchOptions tune Fetch; zero values take the defaults.
type FetchOptions struct {
	// Concurrency bounds parallel requests to Jaeger (default 8).
	Concurrency int
	// Poll is the pause between rounds (default 500ms).
	Poll time.Duration
	// QuietPolls: a trace whose span count has not changed for this many
	// polls is taken as finished (default 3).
	QuietPolls int
	// Deadline bounds the whole fetch (default 30s).
	Deadline time.Duration
}

func (o FetchOptions) withDefaults() FetchOptions {
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.Poll <= 0 {
		o.Poll = 500 * time.Millisecond
	}
	if o.QuietPolls <= 0 {
		o.QuietPolls = 3
	}
	if o.Deadline <= 0 {
		o.Deadline = 30 * time.Second
	}
	return o
}

type pending struct {
	rec    Record
	last   int // span count at the previous poll
	stable int // polls in a row with that count
}

// Fetch reads the traces ids from Jaeger, polling each until every shape in
// want is covered (each expected node has arrived, wherever it sits), or the
// trace has been quiet, or opts.Deadline passes. Waiting for coverage rather
// than a fixed delay keeps fast runs fast and slow consumers judged fairly. The error is only for
// a cancelled ctx; per-trace problems are recorded in the evidence.
func Fetch(ctx context.Context, c *JaegerClient, ids []string, want []*Shape, opts FetchOptions) (Evidence, error) {
	opts = opts.withDefaults()
	began := time.Now()
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, opts.Deadline)
	defer cancel()

	open := make([]*pending, len(ids))
	for i, id := range ids {
		open[i] = &pending{rec: Record{ID: id, State: StateDeadline}}
	}
	all := append([]*pending(nil), open...)
	for len(open) > 0 {
		pollRound(ctx, c, open, opts.Concurrency)
		var still []*pending
		for _, p := range open {
			if ctx.Err() != nil {
				still = append(still, p)
				continue
			}
			if p.rec.State == StateError || settled(p, want, opts.QuietPolls) {
				continue
			}
			still = append(still, p)
		}
		open = still
		if len(open) == 0 {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(opts.Poll):
		}
		if ctx.Err() != nil {
			break
		}
	}
	ev := Evidence{FetchedAt: time.Now(), Elapsed: time.Since(began), Traces: make([]Record, len(all))}
	for i, p := range all {
		ev.Traces[i] = p.rec
	}
	// The fetch's own deadline is expected; only the caller's cancellation is an error.
	if parent.Err() != nil {
		return ev, fmt.Errorf("fetch traces: %w", parent.Err())
	}
	return ev, nil
}

// pollRound fetches every open trace once, at most conc at a time.
func pollRound(ctx context.Context, c *JaegerClient, open []*pending, conc int) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, conc)
	for _, p := range open {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Add(1)
		go func(p *pending) {
			defer wg.Done()
			defer func() { <-sem }()
			raw, err := c.GetTrace(ctx, p.rec.ID)
			p.rec.Polls++
			switch {
			case err == errNotFound:
				p.rec.Raw, p.rec.Spans = nil, 0
			case err != nil && ctx.Err() != nil:
				// Deadline mid-request: keep the last answer.
			case err != nil:
				p.rec.Error = err.Error()
			default:
				p.rec.Raw, p.rec.Error = raw, ""
			}
		}(p)
	}
	wg.Wait()
}

// coveredQuiet is how many polls a covered trace's span count must hold
// before it is judged: one settle window for late, unexpected spans.
const coveredQuiet = 2

// settled decides whether polling p can stop, and records why.
func settled(p *pending, want []*Shape, quiet int) bool {
	if p.rec.Error != "" && p.rec.Raw == nil {
		// A transient error: try again next round (the deadline bounds it).
		p.rec.State = StateDeadline
		return false
	}
	var spans []Span
	if p.rec.Raw != nil {
		var err error
		if spans, err = DecodeSpans(p.rec.Raw, false); err != nil {
			p.rec.State, p.rec.Error = StateError, err.Error()
			return true
		}
	}
	n := len(spans)
	if n == p.last {
		p.stable++
	} else {
		p.last, p.stable = n, 0
	}
	p.rec.Spans = n
	if n == 0 {
		p.rec.State = StateDeadline
		return false
	}
	if len(want) > 0 {
		t := BuildTree(spans)
		covered := true
		for _, s := range want {
			if Classify(t, s, true) == Incomplete {
				covered = false
				break
			}
		}
		// Covering the shape early is not enough: spans of an unexpected
		// service may still arrive, and they must be judged too.
		if covered && p.stable >= coveredQuiet {
			p.rec.State = StateCovered
			return true
		}
	}
	if p.stable >= quiet {
		p.rec.State = StateQuiet
		return true
	}
	p.rec.State = StateDeadline
	return false
}
