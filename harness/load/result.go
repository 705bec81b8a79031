package load

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/meshproof/meshproof/harness/assert/expect"
)

// Result is what a run measured. It is saved as load.json and read back by
// `meshproof eval`, so everything a threshold may ask is in it, including
// the full latency histogram (any p(N) can be answered after reload).
type Result struct {
	Target string `json:"target"`
	Model  Model  `json:"model"`
	// Start is when the first request was due (warm-up included).
	Start time.Time `json:"start"`
	// MeasuredStart..MeasuredEnd is the window after warm-up, up to the last
	// response; throughput and load.duration come from it.
	MeasuredStart time.Time `json:"measured_start"`
	MeasuredEnd   time.Time `json:"measured_end"`

	// Requests, OK and Errors count every completed request, warm-up
	// included: warm-up requests change the target's data like any other.
	Requests int64 `json:"requests"`
	OK       int64 `json:"ok"`
	Errors   int64 `json:"errors"`
	// Warmup is the warm-up share of the counts above.
	Warmup Counts `json:"warmup"`
	// Late counts open-model sends that started more than LateAfter after
	// their scheduled time; Dropped counts sends never made because
	// MaxInflight requests were already outstanding.
	Late    int64 `json:"late"`
	Dropped int64 `json:"dropped"`

	// Status counts outcomes by HTTP status code or gRPC code name;
	// transport failures count under "error".
	Status map[string]int64 `json:"status"`
	// ErrorReasons counts failed requests by reason.
	ErrorReasons map[string]int64 `json:"error_reasons,omitempty"`
	// Bodies holds, per status of Status, the first MaxBodySamples
	// answers' bodies, each cut to MaxBodyBytes: what a failure said, for
	// assertions such as body(503) contains 'service-e'. A gRPC failure's
	// body is its status message (a success has none: replies are not
	// decoded); a request with no answer ("error") keeps its reason.
	Bodies map[string][]string `json:"bodies,omitempty"`

	// Latency summarises Histogram (measured requests only).
	Latency   Latency    `json:"latency"`
	Histogram *Histogram `json:"histogram"`
	// Series has one point per second of the run, warm-up included.
	Series []Point `json:"series"`
	// Traces is a uniform sample of the requests' trace ids, at most
	// Config.TraceSample of TracesSeen.
	Traces     []TraceSample `json:"traces"`
	TracesSeen int64         `json:"traces_seen"`
}

// LateAfter is how far behind schedule an open-model send may start before
// it counts as late.
const LateAfter = 10 * time.Millisecond

// Counts of completed requests.
type Counts struct {
	Requests int64 `json:"requests"`
	OK       int64 `json:"ok"`
	Errors   int64 `json:"errors"`
}

// Latency is the distribution of measured requests in milliseconds.
type Latency struct {
	Count  int64   `json:"count"`
	MinMs  float64 `json:"min_ms"`
	MaxMs  float64 `json:"max_ms"`
	AvgMs  float64 `json:"avg_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P90Ms  float64 `json:"p90_ms"`
	P95Ms  float64 `json:"p95_ms"`
	P99Ms  float64 `json:"p99_ms"`
	P999Ms float64 `json:"p99_9_ms"`
}

// Point is one second of the run.
type Point struct {
	// T is the end of the interval, in seconds since Start.
	T        float64 `json:"t"`
	Warmup   bool    `json:"warmup,omitempty"`
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	RPS      float64 `json:"rps"`
	P50Ms    float64 `json:"p50_ms"`
	P90Ms    float64 `json:"p90_ms"`
	P99Ms    float64 `json:"p99_ms"`
}

// TraceSample is one request's trace id and outcome.
type TraceSample struct {
	TraceID   string    `json:"trace_id"`
	Start     time.Time `json:"start"`
	LatencyMs float64   `json:"latency_ms"`
	Status    string    `json:"status"`
	OK        bool      `json:"ok"`
	Warmup    bool      `json:"warmup,omitempty"`
}

// Measured counts the requests after warm-up.
func (r *Result) Measured() Counts {
	return Counts{
		Requests: r.Requests - r.Warmup.Requests,
		OK:       r.OK - r.Warmup.OK,
		Errors:   r.Errors - r.Warmup.Errors,
	}
}

// Duration is the measured window.
func (r *Result) Duration() time.Duration {
	if r.MeasuredEnd.Before(r.MeasuredStart) {
		return 0
	}
	return r.MeasuredEnd.Sub(r.MeasuredStart)
}

// Throughput is measured requests per second over the measured window.
func (r *Result) Throughput() float64 {
	d := r.Duration().Seconds()
	if d <= 0 {
		return 0
	}
	return float64(r.Measured().Requests) / d
}

// ErrorRate is the share of failed requests, warm-up included.
func (r *Result) ErrorRate() float64 {
	if r.Requests == 0 {
		return 0
	}
	return float64(r.Errors) / float64(r.Requests)
}

// Percentile is the latency at percentile p (0–100) of measured requests.
func (r *Result) Percentile(p float64) (time.Duration, error) {
	if r.Histogram == nil || r.Histogram.h == nil || r.Histogram.h.TotalCount() == 0 {
		return 0, errors.New("no latency samples")
	}
	return r.Histogram.Percentile(p), nil
}

// Vars are the run variables assertions may name.
func (r *Result) Vars() expect.Vars {
	return expect.Vars{
		"load.requests": float64(r.Requests),
		"load.ok":       float64(r.OK),
		"load.errors":   float64(r.Errors),
		"load.duration": r.Duration().Seconds(),
		"load.rps":      r.Throughput(),
		"load.dropped":  float64(r.Dropped),
	}
}

// Histogram holds latencies in microseconds. In JSON it is HdrHistogram's
// V2 compressed base64 form, readable by any HdrHistogram implementation.
type Histogram struct {
	h *hdr.Histogram
}

// NewHistogram returns an empty latency histogram with the engine's
// geometry (1µs to 1h, 3 significant digits), for tests and tools that
// build a Result by hand.
func NewHistogram() *Histogram { return &Histogram{h: hdr.New(1, histMaxUs, histDigits)} }

// Record adds one latency, clamped to the histogram's range.
func (h *Histogram) Record(d time.Duration) {
	_ = h.h.RecordValue(max(1, min(int64(d/time.Microsecond), histMaxUs)))
}

// Percentile is the latency at percentile p (0–100).
func (h *Histogram) Percentile(p float64) time.Duration {
	return time.Duration(h.h.ValueAtPercentile(p)) * time.Microsecond
}

// Count of recorded values.
func (h *Histogram) Count() int64 { return h.h.TotalCount() }

// Min, Max and Mean latency.
func (h *Histogram) Min() time.Duration { return time.Duration(h.h.Min()) * time.Microsecond }

// Max latency.
func (h *Histogram) Max() time.Duration { return time.Duration(h.h.Max()) * time.Microsecond }

// Mean latency.
func (h *Histogram) Mean() time.Duration {
	return time.Duration(h.h.Mean() * float64(time.Microsecond))
}

// MarshalJSON encodes the histogram as a base64 string.
func (h *Histogram) MarshalJSON() ([]byte, error) {
	if h == nil || h.h == nil {
		return []byte("null"), nil
	}
	b, err := h.h.Encode(hdr.V2CompressedEncodingCookieBase)
	if err != nil {
		return nil, fmt.Errorf("encode histogram: %w", err)
	}
	return json.Marshal(string(b))
}

// UnmarshalJSON decodes what MarshalJSON wrote.
func (h *Histogram) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("histogram: %w", err)
	}
	d, err := hdr.Decode([]byte(s))
	if err != nil {
		return fmt.Errorf("decode histogram: %w", err)
	}
	h.h = d
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// summarize fills r.Latency from r.Histogram.
func (r *Result) summarize() {
	h := r.Histogram
	if h == nil || h.Count() == 0 {
		return
	}
	r.Latency = Latency{
		Count:  h.Count(),
		MinMs:  ms(h.Min()),
		MaxMs:  ms(h.Max()),
		AvgMs:  ms(h.Mean()),
		P50Ms:  ms(h.Percentile(50)),
		P90Ms:  ms(h.Percentile(90)),
		P95Ms:  ms(h.Percentile(95)),
		P99Ms:  ms(h.Percentile(99)),
		P999Ms: ms(h.Percentile(99.9)),
	}
}
