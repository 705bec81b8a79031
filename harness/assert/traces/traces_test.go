package traces

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/assert/expect"
	"github.com/meshproof/meshproof/harness/assert/verdict"
	"github.com/meshproof/meshproof/harness/scenario"
)

// designShape is the greeting mesh's full shape, as scenarios/fanout-load.yaml writes it.
const designShape = `gateway
  service-a
    service-b
      service-d
        ~> service-f
      service-e
        service-g
        service-h
    service-c
`

const (
	goodID       = "4bf92f3577b34da6a3ce929d0e0e4736"
	cUnderBID    = "5cf92f3577b34da6a3ce929d0e0e4737"
	noConsumerID = "6df92f3577b34da6a3ce929d0e0e4738"
)

func fixture(t testing.TB, name string) json.RawMessage {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	require.NoError(t, err)
	return b
}

func record(t testing.TB, id, file string) Record {
	return Record{ID: id, State: StateCovered, Polls: 1, Raw: fixture(t, file)}
}

func TestParseShapeDesignExample(t *testing.T) {
	s, err := ParseShape(designShape)
	require.NoError(t, err)
	assert.Equal(t, "gateway", s.Service)
	assert.Equal(t, 9, s.Size())
	a := s.Children[0]
	require.Len(t, a.Children, 2)
	d := a.Children[0].Children[0]
	assert.Equal(t, "service-d", d.Service)
	require.Len(t, d.Children, 1)
	assert.True(t, d.Children[0].Async)
	assert.Equal(t, "service-f", d.Children[0].Service)
	assert.Equal(t, designShape, s.String(), "String round-trips the shape")
}

func TestParseShapeOperationAndEllipsis(t *testing.T) {
	s, err := ParseShape("gateway: GET /api/greeting\n    service-a: greeting.v3.GreetingService/Greeting\n        ...\n")
	require.NoError(t, err)
	assert.Equal(t, "GET /api/greeting", s.Operation)
	assert.Equal(t, "greeting.v3.GreetingService/Greeting", s.Children[0].Operation)
	assert.True(t, s.Children[0].Open)
	assert.False(t, s.Open)
}

func TestParseShapeErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"", "shape is empty"},
		{"gateway\nservice-a\n", "shape line 2 \"service-a\": a second root"},
		{"...\n", "shape line 1: \"...\" needs a parent"},
		{"gateway\n\tservice-a\n", "shape line 2 \"service-a\": indent with spaces"},
		{"~> gateway\n", "shape line 1 \"~> gateway\": the root cannot be"},
		{"gateway\n  service a\n", "shape line 2"},
		{"gateway\n  service-a:\n", "shape line 2 \"service-a:\": empty operation"},
		{"gateway\n  : op\n", "shape line 2 \": op\": missing service name"},
	} {
		_, err := ParseShape(tc.text)
		if assert.Error(t, err, tc.text) {
			assert.Contains(t, err.Error(), tc.want)
		}
	}
}

func TestBuildTreeCollapsesGreetingTrace(t *testing.T) {
	spans, err := DecodeSpans(fixture(t, "greeting-trace.json"), true)
	require.NoError(t, err)
	assert.Len(t, spans, 23)
	tr := BuildTree(spans)
	require.Len(t, tr.Roots, 1, "the root's parent (the load's span) is absent, so it is the only root")
	root := tr.Roots[0]
	assert.Equal(t, "gateway", root.Service)
	assert.Equal(t, "GET /api/greeting", root.Operation)
	assert.Len(t, root.Spans, 2, "gateway server + its gRPC client span form one node")
	want := `gateway: GET /api/greeting (14ms)
  service-a: greeting.v3.GreetingService/Greeting (12.8ms)
    service-b: greeting.v3.GreetingService/Greeting (10.5ms)
      service-d: greeting.v3.GreetingService/Greeting (3.5ms)
        ~> service-f: service-d.greeting process (7.5ms)
      service-e: greeting.v3.GreetingService/Greeting (9.4ms)
        service-g: greeting.v3.GreetingService/Greeting (3.7ms)
        service-h: greeting.v3.GreetingService/Greeting (8.5ms)
    service-c: greeting.v3.GreetingService/Greeting (2.6ms)
`
	assert.Equal(t, want, tr.Draw())
	assert.Equal(t, "200", root.Entry.Attrs["http.response.status_code"], "int attributes read as text")
}

func TestDecodeSpansAcceptsEnumNamesAndStreamedChunks(t *testing.T) {
	chunk := `{"result":{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"x"}}]},"scopeSpans":[{"spans":[{"traceId":"t","spanId":"%s","parentSpanId":%s,"name":"n","kind":"SPAN_KIND_%s","startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}}`
	data := fmt.Sprintf(chunk, "a", `null`, "SERVER") + "\n" + fmt.Sprintf(chunk, "b", `"a"`, "CONSUMER")
	spans, err := DecodeSpans([]byte(data), false)
	require.NoError(t, err)
	require.Len(t, spans, 2)
	assert.Equal(t, KindServer, spans[0].Kind)
	assert.Equal(t, "", spans[0].ParentID)
	assert.Equal(t, KindConsumer, spans[1].Kind)

	_, err = DecodeSpans([]byte(`{"error":{"httpCode":500,"message":"boom"}}`), false)
	assert.ErrorContains(t, err, "500 boom")
}

func evidence(recs ...Record) Evidence { return Evidence{Traces: recs} }

func TestJudgeDesignShapeMatchesGreetingTrace(t *testing.T) {
	spec := scenario.TraceAssertion{Name: "every request crosses the whole mesh", Of: "load", Require: "100%", Shape: designShape}
	rs := Judge(spec, evidence(record(t, goodID, "greeting-trace.json")), nil)
	require.Len(t, rs, 1)
	assert.Equal(t, verdict.Pass, rs[0].Status, rs[0].Detail)
	assert.Equal(t, "traces", rs[0].Kind)
	assert.Equal(t, "every request crosses the whole mesh", rs[0].Name)
	assert.Equal(t, "1/1 traces match (100%)", rs[0].Measured)
}

func TestJudgeMismatchShowsTreesSideBySide(t *testing.T) {
	spec := scenario.TraceAssertion{Shape: designShape}
	ev := evidence(record(t, goodID, "greeting-trace.json"), record(t, cUnderBID, "greeting-c-under-b.json"))
	rs := Judge(spec, ev, nil)
	require.Len(t, rs, 1)
	r := rs[0]
	assert.Equal(t, verdict.Fail, r.Status)
	assert.Equal(t, "trace shape from gateway (9 services)", r.Name)
	assert.Equal(t, "1/2 traces match (50%), 1 mismatch", r.Measured)
	assert.Contains(t, r.Detail, "actual, trace "+cUnderBID)
	assert.Contains(t, r.Detail, "      service-c: greeting.v3.GreetingService/Greeting", "c drawn under b")
	assert.Regexp(t, `(?m)^    service-c +\| `, r.Detail, "expected tree on the left, c under a")

	// require: 50% lets the same evidence pass.
	spec.Require = "50%"
	assert.Equal(t, verdict.Pass, Judge(spec, ev, nil)[0].Status)
}

func TestJudgeMissingConsumerIsIncomplete(t *testing.T) {
	spec := scenario.TraceAssertion{Name: "mesh", Shape: designShape}
	rec := record(t, noConsumerID, "greeting-no-consumer.json")
	rec.State, rec.Polls = StateDeadline, 12
	rs := Judge(spec, evidence(record(t, goodID, "greeting-trace.json"), rec), nil)
	r := rs[0]
	assert.Equal(t, verdict.Incomplete, r.Status, r.Detail)
	assert.Equal(t, "1/2 traces match (50%), 1 incomplete", r.Measured)
	assert.Contains(t, r.Detail, "stopped polling: deadline after 12 polls")
	assert.Contains(t, r.Detail, noConsumerID)

	// A mismatch in the same run makes it a failure, not incomplete.
	rs = Judge(spec, evidence(rec, record(t, cUnderBID, "greeting-c-under-b.json")), nil)
	assert.Equal(t, verdict.Fail, rs[0].Status)
	assert.Equal(t, "0/2 traces match (0%), 1 incomplete, 1 mismatch", rs[0].Measured)

	// A trace Jaeger never returned is incomplete too.
	rs = Judge(spec, evidence(Record{ID: "feed", State: StateDeadline, Polls: 3}), nil)
	assert.Equal(t, verdict.Incomplete, rs[0].Status)
}

func TestJudgeSubsetMatch(t *testing.T) {
	ev := evidence(record(t, goodID, "greeting-trace.json"))
	partial := "gateway\n  service-a\n    service-c\n"
	exact := Judge(scenario.TraceAssertion{Shape: partial}, ev, nil)[0]
	assert.Equal(t, verdict.Fail, exact.Status, "exact: service-b is an extra child of service-a")

	subset := Judge(scenario.TraceAssertion{Shape: partial, Match: "subset"}, ev, nil)[0]
	assert.Equal(t, verdict.Pass, subset.Status, subset.Detail)

	ellipsis := Judge(scenario.TraceAssertion{Shape: "gateway\n  service-a\n    service-c\n    ...\n"}, ev, nil)[0]
	assert.Equal(t, verdict.Pass, ellipsis.Status, "... allows extra children in exact mode")

	ops := "gateway: GET /api/greeting\n  service-a: greeting.v3.GreetingService/Greeting\n    ...\n"
	assert.Equal(t, verdict.Pass, Judge(scenario.TraceAssertion{Shape: ops}, ev, nil)[0].Status)
	wrongOp := "gateway: POST /api/greeting\n  ...\n"
	assert.Equal(t, verdict.Fail, Judge(scenario.TraceAssertion{Shape: wrongOp}, ev, nil)[0].Status)

	syncF := strings.Replace(designShape, "~> service-f", "service-f", 1)
	assert.Equal(t, verdict.Fail, Judge(scenario.TraceAssertion{Shape: syncF}, ev, nil)[0].Status, "f is reached through RabbitMQ, not a call")

	// In subset mode service-c under b still leaves service-a without its c.
	ev2 := evidence(record(t, cUnderBID, "greeting-c-under-b.json"))
	assert.Equal(t, verdict.Fail, Judge(scenario.TraceAssertion{Shape: designShape, Match: "subset"}, ev2, nil)[0].Status)
}

func TestJudgeDurationsAndAttributes(t *testing.T) {
	ev := evidence(record(t, goodID, "greeting-trace.json"), record(t, cUnderBID, "greeting-c-under-b.json"))
	yes, no := true, false
	grpc := "grpc"
	spec := scenario.TraceAssertion{
		Name:      "mesh",
		Durations: []string{"service-a p(99) < 50ms", "service-h max < 5ms", "service-f avg <= 7.5ms", "service-z p(50) < 1s", "service-a p(99) < load.p99"},
		Attributes: []scenario.AttributeCheck{
			{Service: "service-f", Span: "INSERT greeting_ledger", Key: "db.system", Equals: new("postgresql")},
			{Service: "service-a", Key: "rpc.system", Equals: &grpc},
			{Service: "gateway", Key: "http.response.status_code", Exists: &yes},
			{Service: "service-c", Key: "error", Exists: &no},
			{Service: "service-h", Key: "aws.s3.bucket", Exists: &yes},
		},
	}
	rs := Judge(spec, ev, expect.Vars{"load.p99": 0.010})
	require.Len(t, rs, 10)
	byName := map[string]verdict.Result{}
	for _, r := range rs {
		byName[r.Name] = r
	}
	r := byName["mesh / service-a p(99) < 50ms"]
	assert.Equal(t, verdict.Pass, r.Status)
	assert.Equal(t, "service-a p(99) = 12.8ms over 2 spans", r.Measured)
	r = byName["mesh / service-h max < 5ms"]
	assert.Equal(t, verdict.Fail, r.Status)
	assert.Equal(t, "service-h max = 8.5ms over 2 spans", r.Measured)
	assert.Equal(t, verdict.Pass, byName["mesh / service-f avg <= 7.5ms"].Status)
	assert.Equal(t, verdict.Error, byName["mesh / service-z p(50) < 1s"].Status)
	assert.Equal(t, verdict.Fail, byName["mesh / service-a p(99) < load.p99"].Status, "run variables work in duration checks")

	r = byName[`mesh / service-f INSERT greeting_ledger db.system == "postgresql"`]
	assert.Equal(t, verdict.Pass, r.Status, r.Detail)
	assert.Equal(t, "2/2 spans satisfy", r.Measured)
	r = byName[`mesh / service-a rpc.system == "grpc"`]
	assert.Equal(t, verdict.Pass, r.Status, r.Detail)
	assert.Equal(t, "6/6 spans satisfy", r.Measured)
	assert.Equal(t, verdict.Pass, byName["mesh / service-c error absent"].Status)
	r = byName["mesh / service-h aws.s3.bucket exists"]
	assert.Equal(t, verdict.Fail, r.Status, "only the S3 span carries the bucket")
	assert.Equal(t, "2/6 spans satisfy", r.Measured)
	assert.Contains(t, r.Detail, "aws.s3.bucket is absent")
}

func TestParseDurationErrors(t *testing.T) {
	for _, s := range []string{"service-a < 5ms", "service-a p(101) < 5ms", "service-a mean < 5ms", "service-a p(99) ~ 5ms"} {
		_, err := ParseDuration(s)
		assert.Error(t, err, s)
	}
}

func TestSampleIDsSpreadsOverTheRun(t *testing.T) {
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprint(i)
	}
	got := SampleIDs(ids, 4)
	assert.Equal(t, []string{"0", "250", "500", "750"}, got)
	assert.Len(t, SampleIDs(ids[:3], 4), 3)
}

// fakeJaeger serves api_v3 like Jaeger does while spans are still arriving:
// 404 for the first `missing` polls, then the trace without its consumer
// span for `partial` polls, then the whole trace.
type fakeJaeger struct {
	full, partial   json.RawMessage
	missing, phases int
	polls           map[string]*atomic.Int32
}

func (f *fakeJaeger) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/api/v3/traces/")
	c, ok := f.polls[id]
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":{"httpCode":404,"message":"trace not found"}}`))
		return
	}
	n := int(c.Add(1))
	switch {
	case n <= f.missing:
		w.WriteHeader(http.StatusNotFound)
	case n <= f.missing+f.phases:
		_, _ = w.Write(f.partial)
	default:
		_, _ = w.Write(f.full)
	}
}

func TestFetchPollsUntilShapeCovered(t *testing.T) {
	fj := &fakeJaeger{
		full: fixture(t, "greeting-trace.json"), partial: fixture(t, "greeting-no-consumer.json"),
		missing: 1, phases: 2, polls: map[string]*atomic.Int32{goodID: {}},
	}
	srv := httptest.NewServer(fj)
	defer srv.Close()
	shape, err := ParseShape(designShape)
	require.NoError(t, err)

	ev, err := Fetch(context.Background(), NewJaegerClient(srv.URL, nil), []string{goodID, "absent"}, []*Shape{shape},
		FetchOptions{Poll: 10 * time.Millisecond, QuietPolls: 5, Deadline: 500 * time.Millisecond})
	require.NoError(t, err)
	require.Len(t, ev.Traces, 2)
	got := ev.Traces[0]
	assert.Equal(t, StateCovered, got.State)
	assert.Equal(t, 4+coveredQuiet, got.Polls, "404, partial, partial, full, then quiet polls for late spans")
	assert.Equal(t, 23, got.Spans)
	assert.Equal(t, StateDeadline, ev.Traces[1].State)
	assert.Nil(t, ev.Traces[1].Raw)

	// Evidence survives JSON (what eval reads back) and judges the same.
	b, err := json.Marshal(ev)
	require.NoError(t, err)
	var back Evidence
	require.NoError(t, json.Unmarshal(b, &back))
	r := Judge(scenario.TraceAssertion{Shape: designShape}, back, nil)[0]
	assert.Equal(t, verdict.Incomplete, r.Status)
	assert.Equal(t, "1/2 traces match (50%), 1 incomplete", r.Measured)
}

func TestFetchStopsOnQuietTrace(t *testing.T) {
	fj := &fakeJaeger{
		full: fixture(t, "greeting-no-consumer.json"), partial: fixture(t, "greeting-no-consumer.json"),
		polls: map[string]*atomic.Int32{noConsumerID: {}},
	}
	srv := httptest.NewServer(fj)
	defer srv.Close()
	shape, err := ParseShape(designShape)
	require.NoError(t, err)
	began := time.Now()
	ev, err := Fetch(context.Background(), NewJaegerClient(srv.URL, nil), []string{noConsumerID}, []*Shape{shape},
		FetchOptions{Poll: 10 * time.Millisecond, QuietPolls: 3, Deadline: 5 * time.Second})
	require.NoError(t, err)
	assert.Less(t, time.Since(began), 2*time.Second, "a quiet trace does not wait for the deadline")
	assert.Equal(t, StateQuiet, ev.Traces[0].State)
	assert.Equal(t, 4, ev.Traces[0].Polls, "first sight + 3 unchanged polls")
}

func TestFetchHonoursCancellation(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := Fetch(ctx, NewJaegerClient(srv.URL, nil), []string{"a"}, nil, FetchOptions{Poll: 10 * time.Millisecond, Deadline: 10 * time.Second})
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

// benchEvidence is n copies of the greeting trace (23 spans each) under
// distinct ids, as Fetch would save them.
func benchEvidence(b testing.TB, n int) Evidence {
	raw := fixture(b, "greeting-trace.json")
	var compact bytes.Buffer
	require.NoError(b, json.Compact(&compact, raw))
	ev := Evidence{Traces: make([]Record, n)}
	for i := range ev.Traces {
		id := fmt.Sprintf("%032x", i+1)
		ev.Traces[i] = Record{ID: id, State: StateCovered, Raw: bytes.ReplaceAll(compact.Bytes(), []byte(goodID), []byte(id))}
	}
	return ev
}

// BenchmarkJudge10k is issue 8's target: 10,000 traces judged (decoded,
// built into trees, matched) in under a second.
func BenchmarkJudge10k(b *testing.B) {
	ev := benchEvidence(b, 10000)
	spec := scenario.TraceAssertion{Shape: designShape, Sample: 10000, Durations: []string{"service-a p(99) < 50ms"}}
	b.ResetTimer()
	for b.Loop() {
		rs := Judge(spec, ev, nil)
		if rs[0].Status != verdict.Pass {
			b.Fatal(rs[0].Measured)
		}
	}
}

// BenchmarkMatch10k measures matching alone on trees already built.
func BenchmarkMatch10k(b *testing.B) {
	ev := benchEvidence(b, 10000)
	shape, err := ParseShape(designShape)
	require.NoError(b, err)
	trees := make([]*Tree, len(ev.Traces))
	for i, r := range ev.Traces {
		spans, err := DecodeSpans(r.Raw, false)
		require.NoError(b, err)
		trees[i] = BuildTree(spans)
	}
	b.ResetTimer()
	for b.Loop() {
		for _, t := range trees {
			if Classify(t, shape, false) != Match {
				b.Fatal("no match")
			}
		}
	}
}
