package local

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/meshproof/meshproof/harness/environment"
	"github.com/meshproof/meshproof/harness/topology"
)

var _ environment.Attacher = (*Backend)(nil)

// record writes what Attach needs into the run's state file once every
// service is up: ports, log files and the launches that restart a service.
// Until then the state holds only what GC needs, and Attach refuses the run.
func (e *env) record(started time.Time) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.state.Started = started
	if abs, err := filepath.Abs(e.topo.File); err == nil {
		e.state.Compose = abs
	} else {
		e.state.Compose = e.topo.File
	}
	e.state.Services = e.state.Services[:0]
	for _, name := range sortedKeys(e.svcs) {
		s := e.svcs[name]
		rec := serviceRecord{
			Name: name, Kind: s.info.Kind, Runs: s.info.Runs, Version: s.info.Version,
			Ready: s.info.Ready, Ports: map[int]int{}, LogFile: s.info.LogFile,
		}
		maps.Copy(rec.Ports, e.ports[name])
		if s.plan != nil {
			for _, l := range append(append([]launch(nil), s.plan.helpers...), s.plan.main) {
				rec.Launches = append(rec.Launches, launchRecord{
					Path: l.path, Args: l.args, Env: l.env, Dir: l.dir, Cred: l.cred, Listens: l.listens,
				})
			}
		}
		e.state.Services = append(e.state.Services, rec)
	}
	if err := e.b.writeState(&e.state); err != nil {
		return fmt.Errorf("record run %s for attach: %w", e.runID, err)
	}
	return nil
}

// Attach reaches the local run runID that an earlier harness started (up
// --detach, run --keep) from its state file. The processes keep writing to
// their original log files, so ServiceInfo.LogFile names those growing
// files and opts.LogDir is not used. Faults work as on the run's own
// environment: Stop and Kill signal the recorded process groups, Start
// relaunches the recorded command lines — detached, so a service restarted
// here outlives this harness like the rest of the run. Down releases the
// attachment's log handles and leaves every service running.
func (b *Backend) Attach(ctx context.Context, topo *topology.Topology, runID string, opts environment.AttachOptions) (environment.Environment, error) {
	if topo == nil {
		return nil, errors.New("local attach: nil topology")
	}
	st, err := b.readState(runID)
	if err != nil {
		return nil, fmt.Errorf("local attach: %w", err)
	}
	if len(st.Services) == 0 {
		return nil, fmt.Errorf("local attach %s: the run is still starting (or failed to start); nothing to attach to yet", runID)
	}
	if !st.Detached && !st.ownerAlive() {
		return nil, fmt.Errorf("local attach %s: its harness exited and the run was not left running (use up --detach or run --keep)", runID)
	}
	if !st.anyAlive() {
		return nil, fmt.Errorf("local attach %s: no process of the run is left (stop the remains with `meshproof down %s`)", runID, runID)
	}
	// Services restarted through the attachment must outlive it.
	nb := *b
	nb.detached = true
	e := &env{
		b: &nb, topo: topo, runID: runID, over: nil,
		ports: map[string]map[int]int{}, proxied: map[string]string{}, svcs: map[string]*service{},
		state: *st,
	}
	if len(st.Dirs) > 0 {
		e.runDir = st.Dirs[0]
	}
	a := &attached{env: e}
	for _, rec := range st.Services {
		if err := a.adopt(rec, st.Groups); err != nil {
			_ = a.Down(ctx)
			return nil, fmt.Errorf("local attach %s: %w", runID, err)
		}
	}
	return a, nil
}

// attached is an environment reached by Attach: everything but Down acts
// like the run's own environment.
type attached struct {
	*env
}

// adopt rebuilds one service of the run from its record and its live
// process groups; a service whose processes are gone counts as stopped, so
// Start brings it back.
func (a *attached) adopt(rec serviceRecord, groups []groupState) error {
	spec, ok := a.topo.Services[rec.Name]
	if !ok {
		return fmt.Errorf("service %s of the run is not in %s: attach with the compose file the run was started from", rec.Name, a.topo.File)
	}
	if len(rec.Launches) == 0 {
		return fmt.Errorf("service %s: the state file records no command line", rec.Name)
	}
	f, err := os.OpenFile(rec.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("service %s: log: %w", rec.Name, err)
	}
	s := &service{spec: spec, log: f, plan: &plan{version: rec.Version}}
	s.info = environment.ServiceInfo{
		Name: rec.Name, Kind: rec.Kind, Runs: rec.Runs, Version: rec.Version, Ready: rec.Ready,
		Ports: map[int]string{}, LogFile: rec.LogFile,
	}
	ports := map[int]int{}
	for cp, hp := range rec.Ports {
		ports[cp] = hp
		s.info.Ports[cp] = "127.0.0.1:" + strconv.Itoa(hp)
	}
	for i, l := range rec.Launches {
		ln := launch{path: l.Path, args: l.Args, env: l.Env, dir: l.Dir, cred: l.Cred, listens: l.Listens}
		if i == len(rec.Launches)-1 {
			s.plan.main = ln
		} else {
			s.plan.helpers = append(s.plan.helpers, ln)
		}
	}
	for _, g := range groups {
		if g.Service == rec.Name && g.alive() {
			// Not our child: done never closes, and nothing here waits on it.
			s.procs = append(s.procs, &proc{pid: g.PGID, start: g.Start, done: make(chan struct{})})
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ports[rec.Name] = ports
	a.svcs[rec.Name] = s
	return nil
}

// Down ends the attachment: it closes the log handles Attach opened and
// stops nothing. Later spawns through it are refused. Idempotent.
func (a *attached) Down(context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	for _, s := range a.svcs {
		if s.log != nil {
			_ = s.log.Close()
			s.log = nil
		}
	}
	return nil
}
