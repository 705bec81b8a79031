package load_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/load"
)

var traceparentRE = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-01$`)

// recordingServer answers 200 and remembers every traceparent it saw.
type recordingServer struct {
	mu     sync.Mutex
	seen   map[string]int // trace id -> count
	bad    []string
	parent map[string]bool
	n      atomic.Int64
}

func newRecordingServer(t *testing.T) (*recordingServer, *httptest.Server) {
	rs := &recordingServer{seen: map[string]int{}, parent: map[string]bool{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs.n.Add(1)
		tp := r.Header.Get("traceparent")
		rs.mu.Lock()
		if m := traceparentRE.FindStringSubmatch(tp); m != nil {
			rs.seen[m[1]]++
			rs.parent[m[2]] = true
		} else {
			rs.bad = append(rs.bad, tp)
		}
		rs.mu.Unlock()
		_, _ = w.Write([]byte("hello"))
	}))
	t.Cleanup(srv.Close)
	return rs, srv
}

func TestClosedModelSendsExactlyRequests(t *testing.T) {
	rs, srv := newRecordingServer(t)
	res, err := load.Run(context.Background(), load.Config{
		Target: srv.URL + "/api/greeting", Model: load.Closed, Users: 10, Requests: 1000,
	})
	require.NoError(t, err)

	assert.EqualValues(t, 1000, rs.n.Load(), "requests the server received")
	assert.EqualValues(t, 1000, res.Requests)
	assert.EqualValues(t, 1000, res.OK)
	assert.Zero(t, res.Errors)
	assert.Equal(t, map[string]int64{"200": 1000}, res.Status)
	assert.EqualValues(t, 1000, res.Latency.Count)
	assert.Positive(t, res.Latency.P99Ms)
	assert.LessOrEqual(t, res.Latency.P50Ms, res.Latency.P99Ms)
	assert.Equal(t, 1000.0, res.Vars()["load.ok"])

	// Every request carried a well-formed traceparent with its own trace id
	// and parent span id, and the kept samples are those trace ids.
	rs.mu.Lock()
	defer rs.mu.Unlock()
	assert.Empty(t, rs.bad, "malformed traceparent headers")
	assert.Len(t, rs.seen, 1000, "distinct trace ids")
	assert.Len(t, rs.parent, 1000, "distinct parent span ids")
	require.Len(t, res.Traces, 1000)
	assert.EqualValues(t, 1000, res.TracesSeen)
	for _, tr := range res.Traces {
		assert.Equal(t, 1, rs.seen[tr.TraceID], "sampled trace %s was sent once", tr.TraceID)
		assert.True(t, tr.OK)
		assert.Equal(t, "200", tr.Status)
	}
}

func TestOpenModelCountsStallFromScheduledTime(t *testing.T) {
	// The server stalls every request for one second once the 1000th
	// request arrives (about 2 s into a 500 req/s run). A closed-loop tool
	// would send almost nothing during the stall and report a small p99;
	// measuring from the scheduled send time must show the stall.
	var n atomic.Int64
	gate := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1000 {
			once.Do(func() { time.AfterFunc(time.Second, func() { close(gate) }) })
		}
		if n.Load() >= 1000 {
			<-gate
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)

	res, err := load.Run(context.Background(), load.Config{
		Target: srv.URL, Model: load.Open, Rate: 500, Duration: 5 * time.Second,
	})
	require.NoError(t, err)

	t.Logf("p50 %.1fms p99 %.1fms max %.1fms late %d dropped %d", res.Latency.P50Ms, res.Latency.P99Ms, res.Latency.MaxMs, res.Late, res.Dropped)
	assert.EqualValues(t, 2500, res.Requests+res.Dropped, "every scheduled send is counted")
	assert.Zero(t, res.Dropped)
	assert.Zero(t, res.Errors)
	assert.GreaterOrEqual(t, res.Latency.P99Ms, 900.0, "p99 must show the 1 s stall")
	assert.Less(t, res.Latency.P50Ms, 500.0, "the stall is a minority of requests")
	assert.GreaterOrEqual(t, res.Latency.MaxMs, 950.0)
	assert.InDelta(t, 500, res.Throughput(), 60)
	assert.InDelta(t, 5, res.Duration().Seconds(), 0.5)
	assert.GreaterOrEqual(t, len(res.Series), 4, "one point per second")
}

func TestOpenModelRequestsAndWarmup(t *testing.T) {
	rs, srv := newRecordingServer(t)
	res, err := load.Run(context.Background(), load.Config{
		Target: srv.URL, Model: load.Open, Rate: 400, Warmup: 250 * time.Millisecond, Requests: 200,
	})
	require.NoError(t, err)
	// 100 warm-up sends (0.25 s × 400/s) plus exactly 200 measured ones.
	assert.EqualValues(t, 300, rs.n.Load())
	assert.EqualValues(t, 300, res.Requests)
	assert.EqualValues(t, 100, res.Warmup.Requests)
	assert.EqualValues(t, 100, res.Warmup.OK)
	assert.EqualValues(t, 200, res.Measured().Requests)
	assert.EqualValues(t, 200, res.Latency.Count, "warm-up is not in latency statistics")
	assert.EqualValues(t, 300, res.Vars()["load.ok"], "warm-up counts in load.ok")
	assert.True(t, res.MeasuredStart.Equal(res.Start.Add(250*time.Millisecond)))
}

func TestClosedModelErrorsAndStatuses(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%4 == 0 {
			http.Error(w, "nope", http.StatusServiceUnavailable)
			return
		}
		assert.Equal(t, "POST", r.Method)
		assert.Equal(t, "yes", r.Header.Get("X-Test"))
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	res, err := load.Run(context.Background(), load.Config{
		Target: srv.URL, Users: 4, Requests: 400, Body: []byte(`{"a":1}`),
		Headers: map[string]string{"X-Test": "yes"}, TraceSample: 50,
	})
	require.NoError(t, err)
	assert.EqualValues(t, 400, res.Requests)
	assert.EqualValues(t, 100, res.Errors)
	assert.Equal(t, map[string]int64{"200": 300, "503": 100}, res.Status)
	assert.Equal(t, map[string]int64{"HTTP 503 Service Unavailable": 100}, res.ErrorReasons)
	assert.InDelta(t, 0.25, res.ErrorRate(), 1e-9)
	assert.Len(t, res.Traces, 50, "trace ids are sampled down to TraceSample")
	assert.EqualValues(t, 400, res.TracesSeen)
}

func TestStagesRampUsers(t *testing.T) {
	var cur, peak atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := cur.Add(1)
		defer cur.Add(-1)
		for {
			p := peak.Load()
			if c <= p || peak.CompareAndSwap(p, c) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond) // simulated service time
	}))
	t.Cleanup(srv.Close)
	res, err := load.Run(context.Background(), load.Config{
		Target: srv.URL, Users: 1,
		Stages: []load.Stage{{Duration: 500 * time.Millisecond, Target: 6}, {Duration: 500 * time.Millisecond, Target: 6}},
	})
	require.NoError(t, err)
	assert.EqualValues(t, 6, peak.Load(), "concurrency reaches the last stage's users")
	assert.Positive(t, res.Requests)
	assert.InDelta(t, 1, res.Duration().Seconds(), 0.3)
}

func TestProgressIsReported(t *testing.T) {
	_, srv := newRecordingServer(t)
	var mu sync.Mutex
	var snaps []load.Snapshot
	res, err := load.Run(context.Background(), load.Config{Target: srv.URL, Users: 2, Duration: 350 * time.Millisecond},
		load.WithInterval(100*time.Millisecond),
		load.WithProgress(func(s load.Snapshot) { mu.Lock(); snaps = append(snaps, s); mu.Unlock() }))
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	require.GreaterOrEqual(t, len(snaps), 3)
	last := snaps[len(snaps)-1]
	assert.Equal(t, res.Requests, last.Requests, "the final snapshot has the totals")
	assert.Contains(t, last.String(), "req/s")
	var sum int64
	for _, p := range res.Series {
		sum += p.Requests
	}
	assert.Equal(t, res.Requests, sum, "the series accounts for every request")
}

func TestResultJSONRoundTripKeepsPercentiles(t *testing.T) {
	_, srv := newRecordingServer(t)
	res, err := load.Run(context.Background(), load.Config{Target: srv.URL, Users: 3, Requests: 300})
	require.NoError(t, err)
	b, err := json.Marshal(res)
	require.NoError(t, err)
	var back load.Result
	require.NoError(t, json.Unmarshal(b, &back))
	for _, p := range []float64{0, 50, 90, 99, 99.9, 100} {
		want, err := res.Percentile(p)
		require.NoError(t, err)
		got, err := back.Percentile(p)
		require.NoError(t, err)
		assert.Equal(t, want, got, "p(%v)", p)
	}
	assert.Equal(t, res.Vars(), back.Vars())
	assert.Equal(t, res.Latency, back.Latency)
	require.NotEmpty(t, res.Bodies)
	assert.Equal(t, res.Bodies, back.Bodies)
	assert.Len(t, back.Traces, 300)
	assert.Contains(t, string(b), `"histogram":"HIST`, "HdrHistogram V2 base64 form")
}

func TestPreflightFailsFastOnClosedPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())

	for _, target := range []string{"http://" + addr + "/api/greeting", "grpc://" + addr} {
		cfg := load.Config{Target: target, Users: 1, Requests: 1}
		if strings.HasPrefix(target, "grpc") {
			cfg.GRPC = &load.GRPCCall{Method: "greeting.v3.GreetingService/Greeting"}
		}
		start := time.Now()
		err := load.Preflight(context.Background(), cfg)
		require.Error(t, err, target)
		assert.Contains(t, err.Error(), target, "the error names the target")
		assert.Contains(t, err.Error(), "refused")
		assert.Less(t, time.Since(start), 2*time.Second, "fails fast")
	}
}

func TestPreflightPassesOnLiveTarget(t *testing.T) {
	rs, srv := newRecordingServer(t)
	require.NoError(t, load.Preflight(context.Background(), load.Config{Target: srv.URL, Users: 1, Requests: 1}))
	assert.Zero(t, rs.n.Load(), "preflight sends no load request (it would change the target's data)")
}

func TestConfigErrors(t *testing.T) {
	for name, cfg := range map[string]load.Config{
		"no target":      {Users: 1, Requests: 1},
		"bad scheme":     {Target: "ftp://x:1", Users: 1, Requests: 1},
		"no length":      {Target: "http://127.0.0.1:1", Users: 1},
		"no users":       {Target: "http://127.0.0.1:1", Requests: 1},
		"no rate":        {Target: "http://127.0.0.1:1", Model: load.Open, Requests: 1},
		"grpc no method": {Target: "grpc://127.0.0.1:1", Users: 1, Requests: 1},
		"bad model":      {Target: "http://127.0.0.1:1", Model: "zigzag", Users: 1, Requests: 1},
	} {
		_, err := load.Run(context.Background(), cfg)
		assert.Error(t, err, name)
	}
}

func TestCancelEndsRunPromptly(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers while the client waits
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := load.Run(ctx, load.Config{Target: srv.URL, Users: 5, Duration: time.Minute})
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 3*time.Second)
	assert.Zero(t, res.Requests, "requests cut short by the abort are not counted as target errors")
}

// TestCounterAndStarted checks the hooks a fault schedule runs on: the
// counter ends at exactly the completed requests, and the start instant is
// the Result's own origin, reported before the first request.
func TestCounterAndStarted(t *testing.T) {
	rs, srv := newRecordingServer(t)
	var n atomic.Int64
	var started time.Time
	var served int64 = -1
	res, err := load.Run(context.Background(), load.Config{
		Target: srv.URL, Model: load.Closed, Users: 4, Requests: 200,
	}, load.WithCounter(&n), load.WithStarted(func(t0 time.Time) {
		started = t0
		served = rs.n.Load()
	}))
	require.NoError(t, err)
	assert.EqualValues(t, 200, n.Load())
	assert.Equal(t, res.Requests, n.Load())
	assert.True(t, res.Start.Equal(started), "started %s, result start %s", started, res.Start)
	assert.Zero(t, served, "WithStarted must run before the first request")
}
