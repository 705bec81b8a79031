package local

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/environment"
	"github.com/meshproof/meshproof/harness/topology"
	"github.com/meshproof/meshproof/internal/toolbin"
)

func requireProgram(t *testing.T, path string) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts real servers")
	}
	if _, err := os.Stat(path); err != nil {
		if _, err := exec.LookPath(path); err != nil {
			t.Skipf("%s is not installed", path)
		}
	}
}

// TestPostgresAndRabbitMQ runs the real Debian servers through their
// recipes and checks they answer with the fixtures applied.
func TestPostgresAndRabbitMQ(t *testing.T) {
	requireProgram(t, rabbitServer)
	_, err := postgresBin()
	if err != nil {
		t.Skip(err)
	}
	requireProgram(t, "epmd")
	topo := &topology.Topology{Dir: mustAbs(t, "testdata"), Services: map[string]*topology.Service{
		"db": {
			Name: "db", Ports: []int{5432},
			Environment: map[string]string{"POSTGRES_USER": "meshproof", "POSTGRES_PASSWORD": "secret", "POSTGRES_DB": "ledgerdb"},
			Meshproof: topology.Ext{Kind: topology.KindPostgres, Fixtures: "postgres",
				Probe: topology.Probe{Type: topology.ProbeSQL, Port: 5432, DSN: "postgres://meshproof:secret@db:5432/ledgerdb?sslmode=disable"}},
		},
		"mq": {
			Name: "mq", Ports: []int{5672, 15672},
			Meshproof: topology.Ext{Kind: topology.KindRabbitMQ, ReadyTimeout: 90 * time.Second,
				Probe: topology.Probe{Type: topology.ProbeAMQP, Port: 5672}},
		},
	}}
	b := newTestBackend(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e, err := b.Up(ctx, topo, environment.Options{RunID: "infra", LogDir: t.TempDir()})
	require.NoError(t, err)
	pgids := pgidsOf(t, e)
	defer func() {
		require.NoError(t, e.Down(context.Background()))
		for _, pg := range pgids {
			assert.False(t, groupAlive(pg), "group %d is gone (epmd included)", pg)
		}
	}()

	conn, err := pgx.Connect(ctx, e.Resolve("postgres://meshproof:secret@db:5432/ledgerdb?sslmode=disable"))
	require.NoError(t, err)
	var n int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM ledger").Scan(&n))
	assert.Equal(t, 2, n, "fixtures applied")
	_ = conn.Close(ctx)

	mq, err := e.Address("mq", 5672)
	require.NoError(t, err)
	ac, err := amqp.Dial("amqp://guest:guest@" + mq + "/")
	require.NoError(t, err)
	ch, err := ac.Channel()
	require.NoError(t, err)
	q, err := ch.QueueDeclare("probe.q", false, true, false, false, nil)
	require.NoError(t, err)
	assert.Equal(t, "probe.q", q.Name)
	require.NoError(t, ac.Close())

	mgmt, err := e.Address("mq", 15672)
	require.NoError(t, err)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+mgmt+"/api/overview", nil)
	req.SetBasicAuth("guest", "guest")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "management API on the mapped port")

	for _, si := range e.Services() {
		assert.NotEmpty(t, si.Version, si.Name)
	}
}

// TestJaegerAndPrometheus needs the cached Jaeger build (minutes when cold).
func TestJaegerAndPrometheus(t *testing.T) {
	requireProgram(t, "prometheus")
	if os.Getenv("MESHPROOF_TEST_JAEGER") == "" {
		// Do not trigger a 6-minute build implicitly; the cache may be warm.
		cache, err := toolbin.CacheDir()
		if err != nil || !fileExists(cache+"/jaeger-v1.76.0") {
			t.Skip("jaeger not built yet; set MESHPROOF_TEST_JAEGER=1 to build it")
		}
	}
	topo := smallTopology(t, "serve")
	topo.Services["jaeger"] = &topology.Service{Name: "jaeger", Ports: []int{16686, 4317, 4318},
		Meshproof: topology.Ext{Kind: topology.KindJaeger, Probe: topology.Probe{Type: topology.ProbeHTTP, Port: 16686, Path: "/"}}}
	topo.Services["prom"] = &topology.Service{Name: "prom", Ports: []int{9090}, DependsOn: []string{"app"},
		Meshproof: topology.Ext{Kind: topology.KindPrometheus, Probe: topology.Probe{Type: topology.ProbeHTTP, Port: 9090, Path: "/-/ready"}}}
	b := newTestBackend(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	e, err := b.Up(ctx, topo, environment.Options{RunID: "obs", LogDir: t.TempDir()})
	require.NoError(t, err)
	defer func() { assert.NoError(t, e.Down(context.Background())) }()

	// OTLP/HTTP JSON in, api_v3 out.
	otlp, err := e.Address("jaeger", 4318)
	require.NoError(t, err)
	traceID := "5b8efff798038103d269b633813fc60c"
	body := fmt.Sprintf(`{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"probe-svc"}}]},
	"scopeSpans":[{"spans":[{"traceId":"%s","spanId":"eee19b7ec3c1b174","name":"op","kind":2,
	"startTimeUnixNano":"%d","endTimeUnixNano":"%d"}]}]}]}`, traceID, time.Now().UnixNano(), time.Now().Add(time.Millisecond).UnixNano())
	resp, err := http.Post("http://"+otlp+"/v1/traces", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	query, err := e.Address("jaeger", 16686)
	require.NoError(t, err)
	assert.Eventually(t, func() bool {
		r, err := http.Get("http://" + query + "/api/v3/traces/" + traceID)
		if err != nil {
			return false
		}
		defer r.Body.Close()
		return r.StatusCode == http.StatusOK
	}, 10*time.Second, 200*time.Millisecond, "trace visible through api_v3")

	// Prometheus scrapes the app with the service label.
	prom, err := e.Address("prom", 9090)
	require.NoError(t, err)
	assert.Eventually(t, func() bool {
		r, err := http.Get("http://" + prom + "/api/v1/query?query=" + url.QueryEscape(`app_requests_total{service="app"}`))
		if err != nil {
			return false
		}
		defer r.Body.Close()
		var out struct {
			Data struct {
				Result []json.RawMessage `json:"result"`
			} `json:"data"`
		}
		return json.NewDecoder(r.Body).Decode(&out) == nil && len(out.Data.Result) == 1
	}, 15*time.Second, 250*time.Millisecond, "app scraped with service label")
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := os.Getwd()
	require.NoError(t, err)
	return a + "/" + p
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
