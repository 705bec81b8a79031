package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// GC removes the containers and networks of runs whose harness is gone: a
// run is dead when its host label is this host and no process has its pid
// label. Runs of other hosts (a shared daemon) are left alone; SweepAll
// removes them too.
func (b *Backend) GC(ctx context.Context) ([]string, error) {
	return b.sweep(ctx, false, "")
}

// SweepAll removes everything labelled meshproof.managed=true except the
// environments this process still holds (`meshproof gc --all`).
func (b *Backend) SweepAll(ctx context.Context) ([]string, error) {
	return b.sweep(ctx, true, "")
}

// RemoveRun removes whatever carries the given run label, alive or not.
func (b *Backend) RemoveRun(ctx context.Context, runID string) ([]string, error) {
	return b.sweep(ctx, true, runID)
}

func (b *Backend) sweep(ctx context.Context, all bool, onlyRun string) ([]string, error) {
	cli, err := b.client()
	if err != nil {
		return nil, err
	}
	f := client.Filters{}.Add("label", LabelManaged+"=true")
	if onlyRun != "" {
		f = f.Add("label", LabelRun+"="+onlyRun)
	}
	host, _ := os.Hostname()
	doomed := func(labels map[string]string) bool {
		run := labels[LabelRun]
		if onlyRun != "" {
			return true
		}
		if b.isActive(run) {
			return false
		}
		return all || runIsDead(labels, host)
	}

	var removed []string
	var errs []error
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	for _, c := range cs.Items {
		if !doomed(c.Labels) {
			continue
		}
		name := c.ID[:12]
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		_, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		if err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove container %s: %w", name, err))
			continue
		}
		removed = append(removed, "container "+name)
	}
	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return removed, errors.Join(append(errs, fmt.Errorf("list networks: %w", err))...)
	}
	for _, n := range ns.Items {
		if !doomed(n.Labels) {
			continue
		}
		_, err := cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{})
		if err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove network %s: %w", n.Name, err))
			continue
		}
		removed = append(removed, "network "+n.Name)
	}
	sort.Strings(removed)
	return removed, errors.Join(errs...)
}

// runIsDead applies the GC rule to one object's labels.
func runIsDead(labels map[string]string, host string) bool {
	if labels[LabelHost] != host {
		return false // another machine's harness: not ours to judge
	}
	if labels[LabelPID] == DetachedPID {
		return false // left running on purpose; `meshproof down` removes it
	}
	pid, err := strconv.Atoi(labels[LabelPID])
	if err != nil || pid <= 0 {
		return true // unlabelled: nobody can own it
	}
	return !processAlive(pid)
}

// processAlive reports whether pid names a process (signal 0 probes without
// delivering anything; EPERM still means it exists).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// RunInfo describes a run whose containers are still there, for `meshproof
// list --running`.
type RunInfo struct {
	RunID string
	// Services are the compose services of the run (not its toxiproxy).
	Services []string
	// Running counts the containers that run now (services only).
	Running int
	// Started is when the run's first container was created.
	Started time.Time
	// Detached runs were left running on purpose (up --detach, run --keep).
	Detached bool
	// Host is the hostname of the harness that started it.
	Host string
}

// Runs lists every run with at least one running container, oldest first,
// from the labels of the containers alone: no state outside the daemon.
func (b *Backend) Runs(ctx context.Context) ([]RunInfo, error) {
	cli, err := b.client()
	if err != nil {
		return nil, err
	}
	f := client.Filters{}.Add("label", LabelManaged+"=true")
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	runs := map[string]*RunInfo{}
	for _, c := range cs.Items {
		id := c.Labels[LabelRun]
		if id == "" {
			continue
		}
		r := runs[id]
		if r == nil {
			r = &RunInfo{RunID: id, Detached: c.Labels[LabelPID] == DetachedPID, Host: c.Labels[LabelHost]}
			runs[id] = r
		}
		if created := time.Unix(c.Created, 0); r.Started.IsZero() || created.Before(r.Started) {
			r.Started = created
		}
		if svc := c.Labels[LabelService]; svc != "" && svc != proxyService {
			r.Services = append(r.Services, svc)
			if c.State == container.StateRunning {
				r.Running++
			}
		}
	}
	out := make([]RunInfo, 0, len(runs))
	for _, r := range runs {
		if r.Running == 0 {
			continue
		}
		sort.Strings(r.Services)
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Started.Equal(out[j].Started) {
			return out[i].Started.Before(out[j].Started)
		}
		return out[i].RunID < out[j].RunID
	})
	return out, nil
}
