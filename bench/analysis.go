package bench

import (
	"bufio"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// StallLatenciesMs is the true latency of every request of an open-model
// schedule — n sends, the first due at startNs, one every intervalNs — when
// the target stalls every request that arrives in [stallStartNs, stallEndNs)
// until stallEndNs and answers the others at once. A request due inside the
// stall waits for the rest of it, whether or not the load tool managed to
// send it; that is the figure coordinated omission hides. Times are unix
// nanoseconds; the result is in milliseconds, in schedule order.
func StallLatenciesMs(startNs, intervalNs int64, n int, stallStartNs, stallEndNs int64) []float64 {
	out := make([]float64, n)
	for i := range out {
		due := startNs + int64(i)*intervalNs
		if due >= stallStartNs && due < stallEndNs {
			out[i] = float64(stallEndNs-due) / 1e6
		}
	}
	return out
}

// ParsePprofTop reads the table of `go tool pprof -top`: after the header
// line "flat  flat%   sum%        cum   cum%", one function per line.
func ParsePprofTop(out string) ([]ProfileEntry, error) {
	var entries []ProfileEntry
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	inTable := false
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if !inTable {
			inTable = len(f) == 5 && f[0] == "flat" && f[1] == "flat%"
			continue
		}
		if len(f) < 6 {
			continue
		}
		flatPct, err1 := strconv.ParseFloat(strings.TrimSuffix(f[1], "%"), 64)
		cumPct, err2 := strconv.ParseFloat(strings.TrimSuffix(f[4], "%"), 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("pprof top: unexpected line %q", line)
		}
		entries = append(entries, ProfileEntry{
			Flat: f[0], FlatPct: flatPct, Cum: f[3], CumPct: cumPct,
			Function: strings.Join(f[5:], " "),
		})
	}
	if !inTable {
		return nil, fmt.Errorf("pprof top: no table header in %.200q", out)
	}
	return entries, nil
}

// profileGroups name where CPU time goes, first match wins. The engine's
// own code is separated from the standard library it drives, so the
// profile answers "is the engine the bottleneck, or the kernel and
// net/http it calls?".
var profileGroups = []struct{ name, prefix string }{
	{"engine (harness/load)", "github.com/meshproof/meshproof/harness/load"},
	{"HDR histograms", "github.com/HdrHistogram/"},
	{"syscalls", "syscall."},
	{"syscalls", "internal/runtime/syscall"},
	{"syscalls", "internal/poll."},
	{"net/http", "net/http."},
	{"net, bufio, io", "net."},
	{"net, bufio, io", "bufio."},
	{"net, bufio, io", "io."},
	{"gRPC and HTTP/2", "google.golang.org/grpc"},
	{"gRPC and HTTP/2", "golang.org/x/net/http2"},
	{"Go runtime (scheduler, GC, memory)", "runtime."},
	{"Go runtime (scheduler, GC, memory)", "internal/runtime/"},
	{"Go runtime (scheduler, GC, memory)", "sync."},
	{"Go runtime (scheduler, GC, memory)", "internal/sync."},
	{"Go runtime (scheduler, GC, memory)", "internal/"},
}

// GroupShare is a share of flat CPU time.
type GroupShare struct {
	Group string  `json:"group"`
	Pct   float64 `json:"pct"`
}

// GroupProfile sums flat CPU shares by group, largest first. Functions no
// group claims count as "other".
func GroupProfile(entries []ProfileEntry) []GroupShare {
	sums := map[string]float64{}
	for _, e := range entries {
		g := "other"
		for _, pg := range profileGroups {
			if strings.HasPrefix(e.Function, pg.prefix) {
				g = pg.name
				break
			}
		}
		sums[g] += e.FlatPct
	}
	out := make([]GroupShare, 0, len(sums))
	for g, p := range sums {
		out = append(out, GroupShare{Group: g, Pct: p})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Pct != out[j].Pct {
			return out[i].Pct > out[j].Pct
		}
		return out[i].Group < out[j].Group
	})
	return out
}

// CumPct is the cumulative CPU share of the named function, 0 when the
// profile does not show it.
func CumPct(entries []ProfileEntry, function string) float64 {
	for _, e := range entries {
		if e.Function == function {
			return e.CumPct
		}
	}
	return 0
}
