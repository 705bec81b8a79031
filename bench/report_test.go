package bench

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGoalVerdicts(t *testing.T) {
	cases := []struct {
		name  string
		value float64
		goal  *Goal
		want  string
	}{
		{"ratio above", 1.25, AtLeast(1.2), Met},
		{"ratio exactly at goal", 1.2, AtLeast(1.2), Met},
		{"ratio below", 1.19, AtLeast(1.2), Missed},
		{"strict bound at the limit", 200, Below(200), Missed},
		{"strict bound under", 199.9, Below(200), Met},
		{"inclusive bound", 10, AtMost(10), Met},
		{"NaN never meets a goal", math.NaN(), AtMost(10), Missed},
		{"no goal is info", 3, nil, Info},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, NewFigure("http", c.name, c.value, "x", c.goal, "").Verdict)
		})
	}
}

func TestRatiosAndStatistics(t *testing.T) {
	assert.InDelta(t, 1.5, Ratio(30, 20), 1e-12)
	assert.True(t, math.IsNaN(Ratio(30, 0)), "a failed reference gives no ratio")
	assert.InDelta(t, 0.1, RelErr(99, 110), 1e-12)
	assert.InDelta(t, 0.1, RelErr(121, 110), 1e-12)
	assert.Equal(t, 7.0, Best([]float64{3, 7, 5}))
	assert.Equal(t, 5.0, Median([]float64{7, 3, 5}))
	assert.Equal(t, 4.0, Median([]float64{3, 5}))
	assert.True(t, math.IsNaN(Median(nil)))

	vs := make([]float64, 100)
	for i := range vs {
		vs[i] = float64(100 - i) // 100..1, unsorted on purpose
	}
	assert.Equal(t, 99.0, Percentile(vs, 99))
	assert.Equal(t, 50.0, Percentile(vs, 50))
	assert.Equal(t, 100.0, Percentile(vs, 100))
	assert.Equal(t, 1.0, Percentile(vs, 0))
}

func TestStallLatencies(t *testing.T) {
	// 200/s for 10 s; the target stalls from 4 s to 5 s.
	const start, step = int64(1_000_000_000), int64(5_000_000)
	lat := StallLatenciesMs(start, step, 2000, start+4e9, start+5e9)
	require.Len(t, lat, 2000)
	assert.Equal(t, 0.0, lat[799], "due just before the stall")
	assert.Equal(t, 1000.0, lat[800], "due as the stall starts: waits all of it")
	assert.Equal(t, 5.0, lat[999], "due 5ms before the stall ends")
	assert.Equal(t, 0.0, lat[1000], "due as the stall ends")
	// 200 stalled requests of 2000 wait 5, 10 … 1000 ms: the 20 slowest
	// (1%) are above 900 ms, so p99 is 900 ms.
	assert.Equal(t, 900.0, Percentile(lat, 99))
	assert.Equal(t, 0.0, Percentile(lat, 50))
}

const heyOutput = `
Summary:
  Total:	2.0057 secs
  Slowest:	0.0497 secs
  Fastest:	0.0000 secs
  Average:	0.0025 secs
  Requests/sec:	19606.2818

  Total data:	78650 bytes
  Size/request:	2 bytes

Response time histogram:
  0.000 [1]	|
  0.005 [36858]	|■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■


Latency distribution:
  10%% in 0.0007 secs
  50%% in 0.0021 secs
  99%% in 0.0100 secs

Details (average, fastest, slowest):
  DNS+dialup:	0.0000 secs, 0.0000 secs, 0.0024 secs
  resp read:	0.0001 secs, 0.0000 secs, 0.0125 secs

Status code distribution:
  [200]	39325 responses
  [503]	5 responses

Error distribution:
  [2]	Get "http://127.0.0.1:1/": dial tcp: connection refused
`

func TestParseHey(t *testing.T) {
	r, err := ParseHey(heyOutput)
	require.NoError(t, err)
	assert.InDelta(t, 19606.2818, r.RPS, 1e-9)
	assert.InDelta(t, 2.1, r.PercentilesMs["50"], 1e-9)
	assert.InDelta(t, 10.0, r.PercentilesMs["99"], 1e-9)
	assert.Len(t, r.PercentilesMs, 3, "the histogram and details blocks are not percentiles")
	assert.Equal(t, int64(39332), r.Requests)
	assert.Equal(t, int64(7), r.Errors)

	_, err = ParseHey("Error: something broke\n")
	assert.Error(t, err)
}

func TestParseWrk(t *testing.T) {
	out := `Running 2s test @ http://127.0.0.1:41137/
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.72ms    8.12ms  86.99ms   93.68%
    Req/Sec    17.10k     8.48k   37.41k    65.00%
  68412 requests in 2.02s, 7.70MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  33803.80
Transfer/sec:      3.80MB
`
	r, err := ParseWrk(out)
	require.NoError(t, err)
	assert.InDelta(t, 33803.80, r.RPS, 1e-9)
	assert.Equal(t, int64(68412), r.Requests)
	assert.Equal(t, int64(7), r.Errors)
	_, err = ParseWrk("unable to connect to 127.0.0.1:1 Connection refused\n")
	assert.Error(t, err)
}

func TestParseGhz(t *testing.T) {
	out := `{"count":12699,"total":2000491853,"rps":6347.9,"statusCodeDistribution":{"OK":12649,"Unavailable":50},
	"latencyDistribution":[{"percentage":50,"latency":4584388},{"percentage":99.9,"latency":31541271}]}`
	r, err := ParseGhz([]byte(out))
	require.NoError(t, err)
	assert.InDelta(t, 6347.9, r.RPS, 1e-9)
	assert.Equal(t, int64(12699), r.Requests)
	assert.Equal(t, int64(50), r.Errors)
	assert.InDelta(t, 4.584388, r.PercentilesMs["50"], 1e-9)
	assert.InDelta(t, 31.541271, r.PercentilesMs["99.9"], 1e-9)
	_, err = ParseGhz([]byte(`{"count":0}`))
	assert.Error(t, err, "a run with no calls is no measurement")
}

func TestParseVegeta(t *testing.T) {
	// A real report of `vegeta report -type=json` (v12.13.0), errors trimmed.
	out := `{"latencies":{"total":295611817,"mean":5912236,"50th":5568355,"90th":10091673,"95th":10874080,"99th":12836603,"max":12836603,"min":517093},` +
		`"bytes_in":{"total":263589,"mean":5271.78},"bytes_out":{"total":0,"mean":0},"earliest":"2026-12-05T09:05:00.224984632Z",` +
		`"latest":"2026-12-05T09:05:01.185615841Z","end":"2026-12-05T09:05:01.189919345Z","duration":960631209,"wait":4303504,` +
		`"requests":50,"rate":52.04911055518289,"throughput":42.489921284446524,"success":0.82,"status_codes":{"0":9,"200":41},"errors":["connection refused"]}`
	r, err := ParseVegeta([]byte(out))
	require.NoError(t, err)
	assert.Equal(t, int64(50), r.Requests)
	assert.Equal(t, int64(41), r.OK)
	assert.Equal(t, int64(9), r.Errors)
	assert.InDelta(t, 42.4899, r.RPS, 1e-3, "the achieved rate is vegeta's throughput: answers that succeeded")
	assert.InDelta(t, 52.049, r.SendRate, 1e-3)
	assert.InDelta(t, 12.836603, r.PercentilesMs["99"], 1e-9)
	assert.InDelta(t, 5.568355, r.PercentilesMs["50"], 1e-9)
	assert.InDelta(t, 12.836603, r.PercentilesMs["max"], 1e-9)
	assert.Equal(t, int64(1796461500224984632), r.Earliest.UnixNano())
	assert.Equal(t, []string{"connection refused"}, r.ErrorTexts)
	_, err = ParseVegeta([]byte(`{"requests":0}`))
	assert.Error(t, err, "an attack with no requests is no measurement")
}

func TestNotMeasuredGoalCountsAsMissed(t *testing.T) {
	unmeasured := Unmeasured("mesh-local", "mesh throughput at 20 users", AtLeast(2), "not measured in this change")
	unmeasured.Unit = "x"
	rep := &Report{Figures: []Figure{
		NewFigure("grpc", "met", 2, "x", AtLeast(1.5), ""),
		unmeasured,
		Unmeasured("startup-docker", "no goal", nil, "no Docker daemon"),
	}}
	assert.Equal(t, 1, rep.Missed())
	var md strings.Builder
	require.NoError(t, rep.WriteMarkdown(&md))
	assert.Contains(t, md.String(), "- **MISSED** — `mesh-local` mesh throughput at 20 users >= 2×: — — not measured: not measured in this change")
	assert.Contains(t, md.String(), "- met — `grpc` met >= 1.5×: 2.00×")
}

func TestParsePprofTopAndGroups(t *testing.T) {
	out := `File: bench
Type: cpu
Duration: 2.01s, Total samples = 2.03s (101.02%)
Showing nodes accounting for 1.80s, 88.67% of 2.03s total
      flat  flat%   sum%        cum   cum%
     0.53s 26.11% 26.11%      0.53s 26.11%  internal/runtime/syscall/linux.Syscall6
     0.09s  4.43% 30.54%      0.09s  4.43%  runtime.unlock2
     0.03s  1.48% 32.02%      0.05s  2.46%  net/http.readTransfer
     0.01s  0.49% 32.51%      0.67s 33.00%  github.com/meshproof/meshproof/harness/load.(*engine).send
     0.01s  0.49% 33.00%      0.02s  0.99%  main.(*thing).do (inline)
`
	entries, err := ParsePprofTop(out)
	require.NoError(t, err)
	require.Len(t, entries, 5)
	assert.Equal(t, ProfileEntry{Flat: "0.53s", FlatPct: 26.11, Cum: "0.53s", CumPct: 26.11, Function: "internal/runtime/syscall/linux.Syscall6"}, entries[0])
	assert.Equal(t, "main.(*thing).do (inline)", entries[4].Function)
	assert.InDelta(t, 33.0, CumPct(entries, "github.com/meshproof/meshproof/harness/load.(*engine).send"), 1e-9)
	assert.Zero(t, CumPct(entries, "absent"))

	groups := GroupProfile(entries)
	require.NotEmpty(t, groups)
	assert.Equal(t, GroupShare{Group: "syscalls", Pct: 26.11}, groups[0])
	byName := map[string]float64{}
	for _, g := range groups {
		byName[g.Group] = g.Pct
	}
	assert.InDelta(t, 4.43, byName["Go runtime (scheduler, GC, memory)"], 1e-9)
	assert.InDelta(t, 0.49, byName["engine (harness/load)"], 1e-9)
	assert.InDelta(t, 0.49, byName["other"], 1e-9)

	_, err = ParsePprofTop("no profile here")
	assert.Error(t, err)
}

func TestWriteFiles(t *testing.T) {
	dir := t.TempDir()
	rep := &Report{
		Machine: Machine{CPUModel: "Test CPU | 2 GHz", Cores: 2, MemoryBytes: 4 << 30, GoVersion: "go1.26.8", LoadAvg: "0.1 0.2 0.3"},
		Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Took:    90 * time.Second,
		Tools:   map[string]string{"hey": "v0.1.5"},
		Figures: []Figure{
			NewFigure("http", "HTTP throughput ours ÷ hey", 1.1, "x", AtLeast(1.2), "ours 33k req/s, hey 30k req/s"),
			NewFigure("footprint", "engine peak RSS, 1M requests", 26.2, "MB", Below(200), ""),
			Unmeasured("startup-docker", "docker backend: all services ready", nil, "no Docker daemon"),
		},
		Details: map[string]any{"x": 1},
		Profile: []ProfileEntry{{Flat: "1s", FlatPct: 50, Cum: "1s", CumPct: 50, Function: "runtime.futex"}},
	}
	require.NoError(t, rep.WriteFiles(dir))

	raw, err := os.ReadFile(filepath.Join(dir, "results.json"))
	require.NoError(t, err)
	var back struct {
		Machine Machine `json:"machine"`
		Figures []struct {
			Name    string   `json:"name"`
			Value   *float64 `json:"value"`
			Verdict string   `json:"verdict"`
			Goal    *Goal    `json:"goal"`
			Note    string   `json:"note"`
		} `json:"figures"`
	}
	require.NoError(t, json.Unmarshal(raw, &back), "NaN must not break the JSON")
	require.Len(t, back.Figures, 3)
	assert.Equal(t, Missed, back.Figures[0].Verdict)
	require.NotNil(t, back.Figures[0].Value)
	assert.InDelta(t, 1.1, *back.Figures[0].Value, 1e-12)
	assert.Equal(t, &Goal{Op: ">=", Target: 1.2}, back.Figures[0].Goal)
	assert.Nil(t, back.Figures[2].Value, "an unmeasured figure has no value")
	assert.Equal(t, "no Docker daemon", back.Figures[2].Note)
	assert.Equal(t, 2, back.Machine.Cores)

	md, err := os.ReadFile(filepath.Join(dir, "RESULTS.md"))
	require.NoError(t, err)
	s := string(md)
	assert.Contains(t, s, "| cores | 2 |")
	assert.Contains(t, s, "| memory | 4.0 GiB |")
	assert.Contains(t, s, `Test CPU \| 2 GHz`, "a pipe in a cell is escaped")
	assert.Contains(t, s, "2026-01-02T03:04:05Z")
	assert.Contains(t, s, "## Goals (1 missed)")
	assert.Contains(t, s, "- **MISSED** — `http` HTTP throughput ours ÷ hey >= 1.2×: 1.10×")
	assert.Contains(t, s, "| http | HTTP throughput ours ÷ hey | 1.10× | >= 1.2× | **MISSED** |")
	assert.Contains(t, s, "| footprint | engine peak RSS, 1M requests | 26.2 MB | < 200 MB | met |")
	assert.Contains(t, s, "| startup-docker | docker backend: all services ready | — |  | not measured | no Docker daemon |")
	assert.Contains(t, s, "`runtime.futex`")

	var table strings.Builder
	require.NoError(t, rep.WriteTable(&table))
	assert.Contains(t, table.String(), "MISSED")
	assert.Equal(t, 1, rep.Missed())
}

func TestMachineParsing(t *testing.T) {
	assert.Equal(t, "Intel(R) Xeon(R) Processor", CPUModel([]byte("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Processor\n")))
	assert.Equal(t, uint64(24684032*1024), MemTotal([]byte("MemTotal:       24684032 kB\nMemFree: 1 kB\n")))
	assert.Zero(t, MemTotal([]byte("garbage")))
	assert.Equal(t, int64(26780*1024), VmHWM([]byte("Name:\tbench\nVmPeak:\t 1300000 kB\nVmHWM:\t   26780 kB\nVmRSS:\t 20000 kB\n")))
	assert.Zero(t, VmHWM([]byte("Name:\tzombie\n")))
}

func TestFormatValue(t *testing.T) {
	assert.Equal(t, "41,235 req/s", FormatValue(Figure{Value: 41234.6, Unit: "req/s"}))
	assert.Equal(t, "0.69 s", FormatValue(Figure{Value: 0.6851, Unit: "s"}))
	assert.Equal(t, "2.5%", FormatValue(Figure{Value: 2.46, Unit: "%"}))
	assert.Equal(t, "—", FormatValue(Figure{Value: math.NaN(), Unit: "x"}))
}
