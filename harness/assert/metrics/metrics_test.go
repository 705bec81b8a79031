package metrics

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/assert/expect"
	"github.com/meshproof/meshproof/harness/assert/verdict"
	"github.com/meshproof/meshproof/harness/scenario"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startPrometheus runs the real Debian prometheus (v2) scraping target
// every second, and waits until it is ready.
func startPrometheus(t *testing.T, target string) *Client {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus not installed (apt-get install prometheus)")
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: test\n    static_configs:\n      - targets: [%q]\n", target)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644))
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		_ = logf.Close()
	})
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "prometheus.log"))
			t.Fatalf("prometheus not ready after 30s:\n%s", log)
		}
		time.Sleep(100 * time.Millisecond) // polling a readiness endpoint
	}
	return NewClient(base, nil)
}

func TestCollectAgainstRealPrometheus(t *testing.T) {
	reg := prometheus.NewRegistry()
	consumed := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "greeting_messages_consumed_total", Help: "test"}, []string{"service"})
	reg.MustRegister(consumed)
	consumed.WithLabelValues("service-f").Add(5)
	consumed.WithLabelValues("service-x").Add(1)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	c := startPrometheus(t, u.Host)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	specs := []scenario.MetricAssertion{
		{Name: "consumed", Delta: `sum(greeting_messages_consumed_total{service="service-f"})`, Expect: "== load.ok"},
		{Name: "consumed off by one", Delta: `sum(greeting_messages_consumed_total{service="service-f"})`, Expect: "== load.ok + 1"},
		{Name: "increase", PromQL: `sum(increase(greeting_messages_consumed_total{service="service-f"}[$__range]))`, Expect: "> 0"},
		{Name: "absent", Delta: `sum(no_such_metric_total)`, Expect: "== 0"},
		{Name: "two series", PromQL: `greeting_messages_consumed_total`, Expect: "> 0"},
	}
	start := time.Now()
	require.NoError(t, WaitScrape(ctx, c, start, ScrapeWait))
	base, err := Begin(ctx, c, specs, time.Now())
	require.NoError(t, err)
	assert.Equal(t, 5.0, base.Readings[specs[0].Delta].Value)

	consumed.WithLabelValues("service-f").Add(7)
	end := time.Now()
	require.NoError(t, WaitScrape(ctx, c, end, ScrapeWait))
	ev, err := Collect(ctx, c, specs, base, Window{Start: start, End: end})
	require.NoError(t, err)
	assert.Len(t, ev.Samples, 4, "the shared delta query is read once")
	assert.Regexp(t, `^\d+s$`, ev.Range)

	vars := expect.Vars{"load.ok": 7}
	r := Judge(specs[0], ev, vars)
	assert.Equal(t, verdict.Pass, r.Status, r.Detail)
	assert.Equal(t, "7 (5 → 12)", r.Measured)
	r = Judge(specs[1], ev, vars)
	assert.Equal(t, verdict.Fail, r.Status)
	assert.Equal(t, "7 (5 → 12)", r.Measured)
	assert.Contains(t, r.Detail, "want == load.ok + 1 (8)")
	r = Judge(specs[2], ev, vars)
	assert.Equal(t, verdict.Pass, r.Status, r.Detail)
	assert.Equal(t, "metrics", r.Kind)
	r = Judge(specs[3], ev, vars)
	assert.Equal(t, verdict.Error, r.Status)
	assert.Contains(t, r.Detail, "returned no series")
	r = Judge(specs[4], ev, vars)
	assert.Equal(t, verdict.Error, r.Status)
	assert.Contains(t, r.Detail, "returned 2 series")
}

func TestWaitScrapeNamesLateTargets(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"status":"success","data":{"activeTargets":[{"scrapeUrl":"http://127.0.0.1:9464/metrics","health":"up","lastScrape":"2020-01-01T00:00:00Z"}]}}`)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := WaitScrape(ctx, NewClient(srv.URL, nil), time.Now(), ScrapeWait)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "http://127.0.0.1:9464/metrics")
}

func TestJudgeDeltaFromAbsentCounter(t *testing.T) {
	spec := scenario.MetricAssertion{Delta: "sum(x_total)", Expect: "== load.ok"}
	ev := Evidence{Samples: []Sample{{Kind: "delta", Expr: "sum(x_total)", Query: "sum(x_total)",
		Start: &Reading{Series: 0}, End: Reading{Value: 100, Series: 1}}}}
	r := Judge(spec, ev, expect.Vars{"load.ok": 100})
	assert.Equal(t, verdict.Pass, r.Status, r.Detail)
	assert.Equal(t, "delta sum(x_total)", r.Name)
	assert.Contains(t, r.Measured, "start: no series, taken as 0")

	assert.Equal(t, verdict.Error, Judge(scenario.MetricAssertion{Delta: "a", PromQL: "b", Expect: "> 0"}, ev, nil).Status)
	assert.Equal(t, verdict.Error, Judge(scenario.MetricAssertion{Delta: "sum(x_total)", Expect: "== load.nope"}, ev, nil).Status)
}

func TestPromDuration(t *testing.T) {
	assert.Equal(t, "37s", PromDuration(36100*time.Millisecond))
	assert.Equal(t, "1s", PromDuration(0))
}
