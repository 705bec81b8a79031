// Package metrics judges Prometheus queries against a run: a `delta:` query
// is read at load start and after the drain and compared as end − start
// (exact for counters, where increase() extrapolates), a `promql:` query is
// read once after the drain with $__range set to the load window.
//
// Collecting (Begin, Collect, WaitScrape) talks to Prometheus and returns
// JSON-serialisable Evidence; Judge is pure, so `meshproof eval` can re-judge
// a finished run's saved samples.
package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client is a minimal Prometheus HTTP API client: the two endpoints the
// harness needs do not justify a dependency on the full API module.
type Client struct {
	base string
	http *http.Client
}

// NewClient talks to the Prometheus at base, e.g. http://127.0.0.1:9090.
func NewClient(base string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	return &Client{base: strings.TrimRight(base, "/"), http: hc}
}

// Value is one instant-query answer reduced to a number.
type Value struct {
	// Value is the single series' value (NaN never leaves Query).
	Value float64 `json:"value"`
	// Series is how many series the query returned; 0 means "no data".
	Series int `json:"series"`
	// Labels of the single series, for the report.
	Labels map[string]string `json:"labels,omitempty"`
}

type apiResponse struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
}

func (c *Client) get(ctx context.Context, path string, q url.Values, into any) error {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	var ar apiResponse
	if err := json.Unmarshal(body, &ar); err != nil {
		return fmt.Errorf("%s: HTTP %d: %.200s", path, resp.StatusCode, body)
	}
	if ar.Status != "success" {
		return fmt.Errorf("%s: %s: %s", path, ar.ErrorType, ar.Error)
	}
	return json.Unmarshal(ar.Data, into)
}

// Query evaluates expr at time at. A vector must hold at most one series
// (aggregate with sum() otherwise): comparing "the" value of several series
// with one expectation would silently pick one.
func (c *Client) Query(ctx context.Context, expr string, at time.Time) (Value, error) {
	q := url.Values{"query": {expr}, "time": {strconv.FormatFloat(float64(at.UnixNano())/1e9, 'f', 3, 64)}}
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := c.get(ctx, "/api/v1/query", q, &data); err != nil {
		return Value{}, fmt.Errorf("query %q: %w", expr, err)
	}
	switch data.ResultType {
	case "scalar":
		var pair [2]json.RawMessage
		if err := json.Unmarshal(data.Result, &pair); err != nil {
			return Value{}, fmt.Errorf("query %q: scalar: %w", expr, err)
		}
		v, err := sampleValue(pair[1])
		return Value{Value: v, Series: 1}, err
	case "vector":
		var vec []struct {
			Metric map[string]string  `json:"metric"`
			Value  [2]json.RawMessage `json:"value"`
		}
		if err := json.Unmarshal(data.Result, &vec); err != nil {
			return Value{}, fmt.Errorf("query %q: vector: %w", expr, err)
		}
		switch len(vec) {
		case 0:
			return Value{}, nil
		case 1:
			v, err := sampleValue(vec[0].Value[1])
			return Value{Value: v, Series: 1, Labels: vec[0].Metric}, err
		}
		return Value{Series: len(vec)}, fmt.Errorf("query %q returned %d series; aggregate it (sum(...)) to one", expr, len(vec))
	}
	return Value{}, fmt.Errorf("query %q: result type %q, want an instant vector or scalar", expr, data.ResultType)
}

func sampleValue(raw json.RawMessage) (float64, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, fmt.Errorf("sample value %s: %w", raw, err)
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("sample value %q: %w", s, err)
	}
	if math.IsNaN(v) {
		return 0, fmt.Errorf("sample value is NaN (a ratio or quantile over no data?)")
	}
	return v, nil
}

// Target is one scrape target's state.
type Target struct {
	ScrapeURL  string    `json:"scrapeUrl"`
	Health     string    `json:"health"`
	LastScrape time.Time `json:"lastScrape"`
	LastError  string    `json:"lastError"`
}

// Targets lists the active scrape targets.
func (c *Client) Targets(ctx context.Context) ([]Target, error) {
	var data struct {
		ActiveTargets []Target `json:"activeTargets"`
	}
	if err := c.get(ctx, "/api/v1/targets", url.Values{"state": {"active"}}, &data); err != nil {
		return nil, fmt.Errorf("targets: %w", err)
	}
	return data.ActiveTargets, nil
}

// ScrapeWait bounds WaitScrape: a few scrape intervals of the generated
// config, with room for a busy machine. A run must never hang on a
// Prometheus that scrapes nothing.
const ScrapeWait = 30 * time.Second

// WaitScrape waits until Prometheus has scraped every active target after
// `after`, successfully (health "up"), so values written up to then are
// queryable. A target that is down has no fresh values: counting it as
// scraped would judge stale numbers. Polling the targets' lastScrape beats
// sleeping a scrape interval: it is as short as possible and still right
// when a scrape runs late.
func WaitScrape(ctx context.Context, c *Client, after time.Time, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var late []string
	var lastErr error
	for {
		ts, err := c.Targets(ctx)
		if err == nil {
			late = lateTargets(ts, after)
			if len(late) == 0 {
				return nil
			}
		} else if ctx.Err() == nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if len(late) == 0 {
				return fmt.Errorf("wait for a scrape within %s: %w (last error: %v)", limit, ctx.Err(), lastErr)
			}
			return fmt.Errorf("no successful scrape after %s within %s: %s", after.Format(time.RFC3339Nano), limit, strings.Join(late, "; "))
		case <-tick.C:
		}
	}
}

// lateTargets lists the targets not yet scraped successfully after `after`.
func lateTargets(ts []Target, after time.Time) []string {
	if len(ts) == 0 {
		return []string{"(no active targets: does any started service declare x-meshproof.metrics?)"}
	}
	var late []string
	for _, t := range ts {
		switch {
		case t.Health != "up":
			late = append(late, fmt.Sprintf("%s is %s (%s)", t.ScrapeURL, t.Health, t.LastError))
		case !t.LastScrape.After(after):
			late = append(late, t.ScrapeURL+" not scraped yet")
		}
	}
	return late
}
