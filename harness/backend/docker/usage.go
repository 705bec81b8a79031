package docker

import (
	"context"
	"encoding/json"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/meshproof/meshproof/harness/environment"
)

// startSampler samples every container's memory and CPU until Down, so the
// peak survives even where the kernel keeps no maximum (cgroup v2 reports
// only current usage through the stats API).
func (e *env) startSampler() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	e.mu.Lock()
	e.stopSamp = cancel
	e.sampDone = done
	e.mu.Unlock()
	go func() {
		defer close(done)
		t := time.NewTicker(e.b.cfg.sampleEvery)
		defer t.Stop()
		for {
			e.sample(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// sample takes one-shot stats of every container and folds them into the
// per-service peaks. Stopped or removed containers are skipped.
func (e *env) sample(ctx context.Context) {
	e.mu.Lock()
	ids := make(map[string]string, len(e.svcs))
	for name, s := range e.svcs {
		ids[name] = s.id
	}
	e.mu.Unlock()
	for name, id := range ids {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, ok := oneStats(sctx, e.cli, id)
		cancel()
		if !ok {
			continue
		}
		mem := st.MemoryStats.MaxUsage // cgroup v1 keeps the peak itself
		if cur := workingSet(st.MemoryStats); cur > mem {
			mem = cur
		}
		cpu := float64(st.CPUStats.CPUUsage.TotalUsage) / 1e9
		e.mu.Lock()
		if s := e.svcs[name]; s != nil {
			if mem > s.usage.PeakRSSBytes {
				s.usage.PeakRSSBytes = mem
			}
			// CPU time only grows, except when a restart resets the cgroup;
			// keep the largest seen so a restart does not hide earlier work.
			if cpu > s.usage.CPUSeconds {
				s.usage.CPUSeconds = cpu
			}
		}
		e.mu.Unlock()
	}
}

func oneStats(ctx context.Context, cli *client.Client, id string) (container.StatsResponse, bool) {
	var st container.StatsResponse
	res, err := cli.ContainerStats(ctx, id, client.ContainerStatsOptions{Stream: false})
	if err != nil {
		return st, false
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		return st, false
	}
	return st, st.MemoryStats.Usage > 0 || st.CPUStats.CPUUsage.TotalUsage > 0
}

// workingSet is usage minus reclaimable page cache, as `docker stats` shows.
func workingSet(m container.MemoryStats) uint64 {
	cache := m.Stats["total_inactive_file"] // cgroup v1
	if v, ok := m.Stats["inactive_file"]; ok {
		cache = v // cgroup v2
	}
	if cache > m.Usage {
		return m.Usage
	}
	return m.Usage - cache
}

// Usage samples now and returns the peaks so far per service.
func (e *env) Usage(ctx context.Context) map[string]environment.Usage {
	e.mu.Lock()
	down := e.down
	e.mu.Unlock()
	if !down {
		e.sample(ctx)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]environment.Usage, len(e.svcs))
	for name, s := range e.svcs {
		out[name] = s.usage
	}
	return out
}
