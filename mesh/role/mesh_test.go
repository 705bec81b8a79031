package role_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/meshproof/meshproof/mesh/config"
	"github.com/meshproof/meshproof/mesh/gateway"
	"github.com/meshproof/meshproof/mesh/role"
	"github.com/meshproof/meshproof/mesh/telemetry"
	greetingv3 "github.com/meshproof/meshproof/proto/greeting/v3"
)

// syncBuffer collects one role's log lines; roles log from many goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// mesh is the whole call graph on loopback, without stores.
type mesh struct {
	t        *testing.T
	recorder *tracetest.SpanRecorder
	cfgs     map[config.Role]*config.Config
	inst     map[config.Role]*role.Instance
	logs     map[config.Role]*syncBuffer
}

// startOrder starts callees before callers so every address is known.
var startOrder = []config.Role{"service-g", "service-h", "service-c", "service-d", "service-e", "service-b", "service-a", config.Gateway}

func startMesh(t *testing.T) *mesh {
	t.Helper()
	m := &mesh{t: t, recorder: tracetest.NewSpanRecorder(),
		cfgs: map[config.Role]*config.Config{}, inst: map[config.Role]*role.Instance{}, logs: map[config.Role]*syncBuffer{}}
	noEnv := func(string) (string, bool) { return "", false }
	for _, r := range startOrder {
		cfg, err := config.Load(r, noEnv)
		require.NoError(t, err)
		cfg = cfg.WithoutSinks()
		cfg.Listen, cfg.MetricsListen = "127.0.0.1:0", "127.0.0.1:0"
		cfg.CallTimeout = 2 * time.Second
		for i, p := range cfg.Peers {
			require.Contains(t, m.inst, p.Role, "peer %s must start before %s", p.Role, r)
			cfg.Peers[i].Addr = m.inst[p.Role].Addr()
		}
		m.cfgs[r] = cfg
		m.start(r)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, in := range m.inst {
			assert.NoError(t, in.Stop(ctx))
		}
	})
	return m
}

func (m *mesh) start(r config.Role) {
	m.t.Helper()
	if m.logs[r] == nil {
		m.logs[r] = &syncBuffer{}
	}
	in, err := role.Start(context.Background(), m.cfgs[r], role.WithTelemetry(
		telemetry.WithSpanProcessor(m.recorder), telemetry.WithLogOutput(m.logs[r])))
	require.NoError(m.t, err, "start %s", r)
	m.cfgs[r].Listen = in.Addr() // a restart binds the same address
	m.inst[r] = in
}

func (m *mesh) get(t *testing.T, header http.Header) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+m.inst[config.Gateway].Addr()+"/api/greeting", nil)
	require.NoError(t, err)
	maps.Copy(req.Header, header)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

func services(t *testing.T, body []byte) []string {
	t.Helper()
	var resp struct {
		Greeting []struct{ Service, Message, ID string }
	}
	require.NoError(t, json.Unmarshal(body, &resp), string(body))
	var out []string
	for _, g := range resp.Greeting {
		out = append(out, g.Service)
	}
	return out
}

var wantOrder = []string{"Service A", "Service B", "Service D", "Service E", "Service G", "Service H", "Service C"}

// wantEdges is the service-level tree gateway → a → {b → {d, e → {g, h}}, c}.
var wantEdges = []string{
	"gateway>service-a", "service-a>service-b", "service-a>service-c", "service-b>service-d",
	"service-b>service-e", "service-e>service-g", "service-e>service-h",
}

// spansPerRequest: gateway HTTP server + client; a, b, e: server + 2 clients; c, d, g, h: server.
const spansPerRequest = 2 + 3*3 + 4

func serviceOf(s sdktrace.ReadOnlySpan) string {
	for _, kv := range s.Resource().Attributes() {
		if kv.Key == semconv.ServiceNameKey {
			return kv.Value.AsString()
		}
	}
	return ""
}

// traceOf waits (bounded) until the request's spans have all ended.
func (m *mesh) traceOf(t *testing.T, traceID string) []sdktrace.ReadOnlySpan {
	t.Helper()
	var spans []sdktrace.ReadOnlySpan
	require.Eventually(t, func() bool {
		spans = spans[:0]
		for _, s := range m.recorder.Ended() {
			if s.SpanContext().TraceID().String() == traceID {
				spans = append(spans, s)
			}
		}
		return len(spans) >= spansPerRequest
	}, 5*time.Second, 10*time.Millisecond, "spans of trace %s", traceID)
	return spans
}

// serviceEdges collapses spans into caller>callee service edges, and
// returns the spans whose parent is not in the trace (roots).
func serviceEdges(spans []sdktrace.ReadOnlySpan) (edges []string, roots []sdktrace.ReadOnlySpan) {
	byID := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byID[s.SpanContext().SpanID().String()] = s
	}
	seen := map[string]bool{}
	for _, s := range spans {
		p, ok := byID[s.Parent().SpanID().String()]
		if !s.Parent().IsValid() || !ok {
			roots = append(roots, s)
			continue
		}
		if serviceOf(p) != serviceOf(s) {
			e := serviceOf(p) + ">" + serviceOf(s)
			if !seen[e] {
				seen[e] = true
				edges = append(edges, e)
			}
		}
	}
	sort.Strings(edges)
	return edges, roots
}

func TestMeshAnswersInOrderWithOneTrace(t *testing.T) {
	m := startMesh(t)

	resp, body := m.get(t, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	assert.Equal(t, wantOrder, services(t, body))

	// Find the trace by the gateway's root span.
	var traceID string
	require.Eventually(t, func() bool {
		for _, s := range m.recorder.Ended() {
			if serviceOf(s) == "gateway" && s.Name() == "GET /api/greeting" {
				traceID = s.SpanContext().TraceID().String()
				return true
			}
		}
		return false
	}, 5*time.Second, 10*time.Millisecond)
	spans := m.traceOf(t, traceID)
	assert.Len(t, spans, spansPerRequest, "every span of the request is in the one trace")
	edges, roots := serviceEdges(spans)
	want := append([]string(nil), wantEdges...)
	sort.Strings(want)
	assert.Equal(t, want, edges)
	require.Len(t, roots, 1)
	assert.Equal(t, "gateway", serviceOf(roots[0]))
	var serverSpan bool
	for _, s := range spans {
		if serviceOf(s) == "service-a" && s.Name() == "greeting.v3.GreetingService/Greeting" {
			serverSpan = true
		}
	}
	assert.True(t, serverSpan, "service-a has the otelgrpc server span")

	// The happy path logs no error line, and every request line names its trace.
	for r, buf := range m.logs {
		for line := range strings.SplitSeq(strings.TrimSpace(buf.String()), "\n") {
			var rec map[string]any
			require.NoError(t, json.Unmarshal([]byte(line), &rec), "%s logs JSON lines", r)
			assert.NotEqual(t, "ERROR", rec["level"], "%s: %s", r, line)
			assert.Equal(t, string(r), rec["service"])
			assert.Contains(t, rec, "source")
			if rec["msg"] == "greeting handled" {
				assert.Equal(t, traceID, rec["trace_id"], "%s: %s", r, line)
			}
		}
	}
}

func TestMeshContinuesB3Trace(t *testing.T) {
	m := startMesh(t)
	const traceID, parent = "463ac35c9f6413ad48485a3953bb6124", "a2fb4a1d1a96d312"
	resp, body := m.get(t, http.Header{
		"X-B3-Traceid": {traceID}, "X-B3-Spanid": {parent}, "X-B3-Sampled": {"1"}, "X-Request-Id": {"req-1"},
	})
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	spans := m.traceOf(t, traceID)
	edges, roots := serviceEdges(spans)
	assert.Len(t, edges, len(wantEdges))
	require.Len(t, roots, 1)
	assert.Equal(t, "gateway", serviceOf(roots[0]))
	assert.Equal(t, parent, roots[0].Parent().SpanID().String(), "the gateway span is a child of the caller's B3 span")
}

func TestMeshSurvivesAStoppedService(t *testing.T) {
	m := startMesh(t)
	resp, body := m.get(t, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, m.inst["service-e"].Stop(ctx))

	resp, body = m.get(t, nil)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var eb gateway.ErrorBody
	require.NoError(t, json.Unmarshal(body, &eb), string(body))
	assert.Equal(t, "service-e", eb.Service, string(body))
	assert.Contains(t, eb.Error, "service-e")

	// service-a is still up and healthy: peers never affect health.
	conn, err := grpc.NewClient(m.inst["service-a"].Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	hc, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	assert.Equal(t, healthpb.HealthCheckResponse_SERVING, hc.GetStatus())
	_, err = greetingv3.NewGreetingServiceClient(conn).Greeting(ctx, &greetingv3.GreetingRequest{})
	assert.ErrorContains(t, err, "service-e", "service-a answers, with the failing service named")

	// service-e comes back on its address; b reconnects within its 1 s backoff cap.
	m.start("service-e")
	require.Eventually(t, func() bool {
		resp, _ := m.get(t, nil)
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 50*time.Millisecond, "gateway answers again once service-e is back")
	resp, body = m.get(t, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, wantOrder, services(t, body))
}

func TestMetricsAreLabelledAndStartAtZero(t *testing.T) {
	m := startMesh(t)
	resp, body := m.get(t, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+m.inst["service-a"].MetricsAddr()+"/metrics", nil)
	require.NoError(t, err)
	mr, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer mr.Body.Close()
	text, err := io.ReadAll(mr.Body)
	require.NoError(t, err)
	for _, want := range []string{
		`grpc_server_handled_total{grpc_code="OK",grpc_method="Greeting",grpc_service="greeting.v3.GreetingService",grpc_type="unary",service="service-a"} 1`,
		`grpc_server_handling_seconds_bucket{`,
		`grpc_client_handled_total{grpc_code="OK",grpc_method="Greeting",grpc_service="greeting.v3.GreetingService",grpc_type="unary",service="service-a"} 2`,
		`greeting_messages_consumed_total{service="service-a"} 0`,
		`greeting_messages_published_total{service="service-a"} 0`,
		`greeting_otel_spans_dropped_total{service="service-a"} 0`,
		`greeting_build_info{`,
	} {
		assert.Contains(t, string(text), want)
	}
	for line := range strings.SplitSeq(string(text), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			assert.Contains(t, line, `service="service-a"`)
		}
	}
}
