package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/meshproof/meshproof/harness/environment"
	"github.com/meshproof/meshproof/harness/topology"
)

var _ environment.Attacher = (*Backend)(nil)

// Attach reaches the containers of run runID that an earlier harness
// started (up --detach, run --keep), found by their run label. Published
// ports are read from the daemon; each service's output is followed from
// now into opts.LogDir/<service>.log, so log assertions see only the new
// run's lines. Faults act on the same containers (Restart included) and the
// run's toxiproxy, when it had one, is reached at its published API port.
// Down ends the followers and the sampler and leaves every container
// running.
func (b *Backend) Attach(ctx context.Context, topo *topology.Topology, runID string, opts environment.AttachOptions) (environment.Environment, error) {
	disableRyuk()
	if topo == nil {
		return nil, errors.New("docker attach: nil topology")
	}
	if runID == "" {
		return nil, errors.New("docker attach: empty run id")
	}
	since := time.Now()
	cli, err := b.client()
	if err != nil {
		return nil, err
	}
	f := client.Filters{}.Add("label", LabelManaged+"=true").Add("label", LabelRun+"="+runID)
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("docker attach %s: list containers: %w", runID, err)
	}
	if len(cs.Items) == 0 {
		return nil, fmt.Errorf("docker attach: no containers of run %s (see `meshproof list --running`)", runID)
	}
	if opts.LogDir != "" {
		if err := os.MkdirAll(opts.LogDir, 0o755); err != nil {
			return nil, fmt.Errorf("docker attach %s: log dir: %w", runID, err)
		}
	}
	e := newEnv(b, cli, topo, environment.Options{RunID: runID, LogDir: opts.LogDir})
	a := &attached{env: e}
	if err := a.adopt(ctx, cs.Items, since); err != nil {
		_ = a.Down(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("docker attach %s: %w", runID, err)
	}
	b.setActive(runID, true)
	e.startSampler()
	return a, nil
}

// attached is an environment reached by Attach: everything but Down acts
// like the run's own environment.
type attached struct {
	*env
}

// adopt registers the run's containers (the toxiproxy one as the run's
// proxy), reads the published ports of those running and starts their log
// followers. A stopped container counts as a stopped service: Start brings
// it back.
func (a *attached) adopt(ctx context.Context, items []container.Summary, since time.Time) error {
	sort.Slice(items, func(i, j int) bool { return items[i].Labels[LabelService] < items[j].Labels[LabelService] })
	var names []string
	for _, c := range items {
		name := c.Labels[LabelService]
		if name == proxyService {
			if err := a.adoptProxy(ctx, c); err != nil {
				return err
			}
			continue
		}
		svc, ok := a.topo.Services[name]
		if !ok {
			return fmt.Errorf("container %s runs service %q, which is not in %s: attach with the compose file the run was started from", containerLabelName(c), name, a.topo.File)
		}
		a.addContainer(name, svc, c.ID)
		names = append(names, name)
	}
	a.opts.Services = names
	for _, c := range items {
		name := c.Labels[LabelService]
		if name == proxyService || c.State != container.StateRunning {
			continue
		}
		if err := a.refreshPorts(ctx, name); err != nil {
			return err
		}
	}
	for _, name := range names {
		a.followLogsSince(name, since)
	}
	return nil
}

// adoptProxy records the run's toxiproxy container and, when it runs, its
// published API address.
func (a *attached) adoptProxy(ctx context.Context, c container.Summary) error {
	a.mu.Lock()
	a.proxyID = c.ID
	a.mu.Unlock()
	if c.State != container.StateRunning {
		return nil
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	api, err := a.proxyAPIAddr(pctx)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.proxyAPI = api
	a.mu.Unlock()
	return nil
}

// Down ends the attachment: the sampler and log followers stop, every
// container keeps running. Idempotent.
func (a *attached) Down(context.Context) error {
	a.mu.Lock()
	if a.down {
		a.mu.Unlock()
		return nil
	}
	a.down = true
	stop, done := a.stopSamp, a.sampDone
	var followers []*logFollower
	for _, s := range a.svcs {
		followers = append(followers, s.logs)
	}
	a.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	for _, lf := range followers {
		lf.close()
	}
	a.b.setActive(a.opts.RunID, false)
	return nil
}

func containerLabelName(c container.Summary) string {
	if len(c.Names) > 0 {
		return strings.TrimPrefix(c.Names[0], "/")
	}
	return c.ID[:12]
}
