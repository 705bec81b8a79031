package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// PeerResult is what a peer tool (hey, wrk, ghz) reported for one run.
type PeerResult struct {
	RPS      float64 `json:"rps"`
	Requests int64   `json:"requests"`
	// Errors counts non-2xx answers (hey), socket errors and non-2xx (wrk)
	// or non-OK calls (ghz).
	Errors int64 `json:"errors"`
	// PercentilesMs maps "50", "99"… to milliseconds, where the tool prints them.
	PercentilesMs map[string]float64 `json:"percentiles_ms,omitempty"`
}

// ParseHey reads hey's default text summary ("Requests/sec:", the
// "Latency distribution" block and "Status code distribution").
func ParseHey(out string) (PeerResult, error) {
	r := PeerResult{PercentilesMs: map[string]float64{}}
	sc := bufio.NewScanner(strings.NewReader(out))
	section := ""
	found := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "Requests/sec:"):
			v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, "Requests/sec:")), 64)
			if err != nil {
				return r, fmt.Errorf("hey: requests/sec %q: %w", line, err)
			}
			r.RPS, found = v, true
		case strings.HasSuffix(line, ":") && !strings.Contains(line, "\t"):
			section = line
		case section == "Latency distribution:" && strings.Contains(line, " in "):
			// "99%% in 0.0100 secs" — hey prints the percent sign doubled.
			pct, rest, _ := strings.Cut(line, " in ")
			pct = strings.TrimRight(pct, "%")
			f := strings.Fields(rest)
			if len(f) == 0 {
				continue
			}
			secs, err := strconv.ParseFloat(f[0], 64)
			if err != nil {
				return r, fmt.Errorf("hey: latency line %q: %w", line, err)
			}
			r.PercentilesMs[pct] = secs * 1000
		case section == "Status code distribution:" && strings.HasPrefix(line, "["):
			// "[200]	39325 responses"
			code, rest, _ := strings.Cut(strings.TrimPrefix(line, "["), "]")
			f := strings.Fields(rest)
			if len(f) == 0 {
				continue
			}
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return r, fmt.Errorf("hey: status line %q: %w", line, err)
			}
			r.Requests += n
			if !strings.HasPrefix(code, "2") {
				r.Errors += n
			}
		case section == "Error distribution:" && strings.HasPrefix(line, "["):
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(strings.Fields(line)[0], "["), "]"), 10, 64)
			if err == nil {
				r.Requests += n
				r.Errors += n
			}
		}
	}
	if !found {
		return r, fmt.Errorf("hey: no Requests/sec line in its output: %.200q", out)
	}
	return r, nil
}

// ParseWrk reads wrk's summary ("N requests in Xs", "Requests/sec:",
// "Socket errors:", "Non-2xx or 3xx responses:").
func ParseWrk(out string) (PeerResult, error) {
	var r PeerResult
	found := false
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "Requests/sec:") && len(f) == 2:
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return r, fmt.Errorf("wrk: requests/sec %q: %w", line, err)
			}
			r.RPS, found = v, true
		case len(f) >= 3 && f[1] == "requests" && f[2] == "in":
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err == nil {
				r.Requests = n
			}
		case strings.HasPrefix(line, "Non-2xx or 3xx responses:") && len(f) == 5:
			n, _ := strconv.ParseInt(f[4], 10, 64)
			r.Errors += n
		case strings.HasPrefix(line, "Socket errors:"):
			// "Socket errors: connect 0, read 0, write 0, timeout 0"
			for part := range strings.SplitSeq(strings.TrimPrefix(line, "Socket errors:"), ",") {
				pf := strings.Fields(part)
				if len(pf) == 2 {
					n, _ := strconv.ParseInt(pf[1], 10, 64)
					r.Errors += n
				}
			}
		}
	}
	if !found {
		return r, fmt.Errorf("wrk: no Requests/sec line in its output: %.200q", out)
	}
	return r, nil
}

// ParseGhz reads ghz's --format json report.
func ParseGhz(out []byte) (PeerResult, error) {
	var g struct {
		Count    int64            `json:"count"`
		RPS      float64          `json:"rps"`
		Statuses map[string]int64 `json:"statusCodeDistribution"`
		Lat      []struct {
			Percentage float64 `json:"percentage"`
			LatencyNs  float64 `json:"latency"`
		} `json:"latencyDistribution"`
	}
	if err := json.Unmarshal(out, &g); err != nil {
		return PeerResult{}, fmt.Errorf("ghz: decode report: %w", err)
	}
	if g.Count == 0 {
		return PeerResult{}, fmt.Errorf("ghz: the report counts no calls")
	}
	r := PeerResult{RPS: g.RPS, Requests: g.Count, PercentilesMs: map[string]float64{}}
	for code, n := range g.Statuses {
		if code != "OK" {
			r.Errors += n
		}
	}
	for _, l := range g.Lat {
		r.PercentilesMs[strconv.FormatFloat(l.Percentage, 'f', -1, 64)] = l.LatencyNs / 1e6
	}
	return r, nil
}

// VegetaReport is what `vegeta report -type=json` says of one attack.
type VegetaReport struct {
	PeerResult
	// OK counts successful answers (vegeta reports their share).
	OK int64 `json:"ok"`
	// SendRate is requests started per second, first send to last send;
	// PeerResult.RPS is successful answers per second from the first send
	// to the last answer (vegeta's "throughput"): the achieved rate.
	SendRate float64 `json:"send_rate"`
	// Earliest is when the first request was sent.
	Earliest time.Time `json:"earliest"`
	// ErrorTexts are the distinct errors vegeta saw, as it prints them.
	ErrorTexts []string `json:"error_texts,omitempty"`
}

// ParseVegeta reads `vegeta report -type=json`. Latencies are nanoseconds,
// taken from each request's actual send (vegeta does not know when a late
// request was due).
func ParseVegeta(out []byte) (VegetaReport, error) {
	var v struct {
		Lat        map[string]float64 `json:"latencies"`
		Earliest   time.Time          `json:"earliest"`
		Requests   int64              `json:"requests"`
		Rate       float64            `json:"rate"`
		Throughput float64            `json:"throughput"`
		Success    float64            `json:"success"`
		Errors     []string           `json:"errors"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		return VegetaReport{}, fmt.Errorf("vegeta: decode report: %w", err)
	}
	if v.Requests == 0 {
		return VegetaReport{}, fmt.Errorf("vegeta: the report counts no requests")
	}
	ok := int64(math.Round(v.Success * float64(v.Requests)))
	r := VegetaReport{
		PeerResult: PeerResult{RPS: v.Throughput, Requests: v.Requests, Errors: v.Requests - ok, PercentilesMs: map[string]float64{}},
		OK:         ok, SendRate: v.Rate, Earliest: v.Earliest, ErrorTexts: v.Errors,
	}
	for k, ns := range v.Lat {
		if p, found := strings.CutSuffix(k, "th"); found {
			r.PercentilesMs[p] = ns / 1e6
		} else if k == "max" || k == "min" || k == "mean" {
			r.PercentilesMs[k] = ns / 1e6
		}
	}
	return r, nil
}
