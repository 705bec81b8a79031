package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// runState is what a run leaves on disk so that another harness process can
// clean up after it: the owner (pid + start time, since pids are reused),
// every process group, and every temp dir. Once Up has started every
// service it also records what Attach needs to reach and restart them.
// The file is 0600: launches carry the services' environments, passwords
// included.
type runState struct {
	RunID        string       `json:"run_id"`
	HarnessPID   int          `json:"harness_pid"`
	HarnessStart uint64       `json:"harness_start"`
	Detached     bool         `json:"detached,omitempty"`
	Groups       []groupState `json:"groups"`
	Dirs         []string     `json:"dirs"`
	// Started is when Up began; Compose the absolute compose file path.
	Started time.Time `json:"started,omitzero"`
	Compose string    `json:"compose,omitempty"`
	// Services is written when Up succeeded; empty while it is starting.
	Services []serviceRecord `json:"services,omitempty"`
}

// serviceRecord is one started service as Attach rebuilds it: where it
// listens, where it logs, and how to start it again after a Stop or Kill
// (a recipe is not re-run: initdb or a new Erlang cookie would clash with
// the data already there).
type serviceRecord struct {
	Name     string         `json:"name"`
	Kind     string         `json:"kind"`
	Runs     string         `json:"runs"`
	Version  string         `json:"version,omitempty"`
	Ready    time.Duration  `json:"ready_ns"`
	Ports    map[int]int    `json:"ports"` // container port -> host port
	LogFile  string         `json:"log_file"`
	Launches []launchRecord `json:"launches"` // helpers first, main last
}

// launchRecord is a launch in a form that survives JSON.
type launchRecord struct {
	Path    string              `json:"path"`
	Args    []string            `json:"args,omitempty"`
	Env     []string            `json:"env,omitempty"`
	Dir     string              `json:"dir,omitempty"`
	Cred    *syscall.Credential `json:"cred,omitempty"`
	Listens string              `json:"listens,omitempty"`
}

type groupState struct {
	Service string `json:"service"`
	PGID    int    `json:"pgid"`
	Start   uint64 `json:"start"`
}

func (b *Backend) statePath(runID string) string {
	return filepath.Join(b.stateDir, runID+".json")
}

// writeState replaces the state file atomically, so a reader never sees a
// torn file even if the harness dies mid-write.
func (b *Backend) writeState(st *runState) error {
	if err := os.MkdirAll(b.stateDir, 0o755); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	path := b.statePath(st.RunID)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}

// readState reads the state file of one run.
func (b *Backend) readState(runID string) (*runState, error) {
	if runID == "" || strings.ContainsAny(runID, `/\`) {
		return nil, fmt.Errorf("bad run id %q", runID)
	}
	data, err := os.ReadFile(b.statePath(runID))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no local run %s in %s (see `meshproof list --running`)", runID, b.stateDir)
	}
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", runID, err)
	}
	var st runState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("run %s: state file %s: %w", runID, b.statePath(runID), err)
	}
	return &st, nil
}

func (b *Backend) readStates() ([]*runState, error) {
	files, err := filepath.Glob(filepath.Join(b.stateDir, "*.json"))
	if err != nil {
		return nil, err
	}
	var out []*runState
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var st runState
		if json.Unmarshal(data, &st) != nil || st.RunID == "" {
			continue
		}
		out = append(out, &st)
	}
	return out, nil
}

// ownerAlive reports whether the harness that wrote st still runs.
func (st *runState) ownerAlive() bool {
	return st.HarnessPID > 0 && sameProcess(st.HarnessPID, st.HarnessStart)
}

// GC stops the runs whose harness is gone (killed, crashed) and removes
// their temp dirs and state files. Detached runs are left alone: their
// owner exits on purpose; DownRuns stops them.
func (b *Backend) GC(ctx context.Context) ([]string, error) {
	states, err := b.readStates()
	if err != nil {
		return nil, fmt.Errorf("local gc: %w", err)
	}
	var removed []string
	var errs []error
	for _, st := range states {
		if st.Detached || st.ownerAlive() {
			continue
		}
		if err := b.reap(ctx, st); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, "local run "+st.RunID)
	}
	return removed, errors.Join(errs...)
}

// DownRuns stops the named runs (or, with all, every recorded run) whatever
// their owner's state: `meshproof down` for environments left running by
// `up --detach` or `run --keep`.
func (b *Backend) DownRuns(ctx context.Context, runIDs []string, all bool) ([]string, error) {
	states, err := b.readStates()
	if err != nil {
		return nil, fmt.Errorf("local down: %w", err)
	}
	want := map[string]bool{}
	for _, id := range runIDs {
		want[id] = true
	}
	var removed []string
	var errs []error
	for _, st := range states {
		if !all && !want[st.RunID] {
			continue
		}
		delete(want, st.RunID)
		if err := b.reap(ctx, st); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, "local run "+st.RunID)
	}
	return removed, errors.Join(errs...)
}

// reap kills the recorded groups and removes the dirs and the state file.
// A group is signalled only while its leader is the recorded process or
// has exited (a group id cannot be reused while members remain), so a
// recycled pid is never hit.
func (b *Backend) reap(ctx context.Context, st *runState) error {
	var errs []error
	for _, g := range st.Groups {
		if _, err := procStart(g.PGID); err == nil && !sameProcess(g.PGID, g.Start) {
			continue // the leader's pid now names another process
		}
		if err := killGroup(ctx, g.PGID, b.grace); err != nil {
			errs = append(errs, fmt.Errorf("run %s: stop %s: %w", st.RunID, g.Service, err))
		}
	}
	for _, d := range st.Dirs {
		if !safeToRemove(d) {
			continue
		}
		killEscaped(d)
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, fmt.Errorf("run %s: remove %s: %w", st.RunID, d, err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := os.Remove(b.statePath(st.RunID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("run %s: %w", st.RunID, err)
	}
	return nil
}

// safeToRemove guards RemoveAll against a corrupted state file: only the
// run dirs this package creates are removed.
func safeToRemove(dir string) bool {
	return filepath.IsAbs(dir) && strings.HasPrefix(filepath.Base(dir), runDirPrefix)
}

// RunInfo describes an environment a local run left running, for
// `meshproof list --running`.
type RunInfo struct {
	RunID    string
	Services []string
	Started  time.Time
	// Compose is the compose file the run was started from.
	Compose string
	// Detached runs outlive their harness (up --detach, run --keep).
	Detached bool
	// Ready is false while Up is still starting it (Attach refuses it).
	Ready bool
}

// Running lists the runs with at least one live process whose harness is
// still there or that were left running on purpose, oldest first.
func (b *Backend) Running() ([]RunInfo, error) {
	states, err := b.readStates()
	if err != nil {
		return nil, fmt.Errorf("local runs: %w", err)
	}
	var out []RunInfo
	for _, st := range states {
		if !st.Detached && !st.ownerAlive() || !st.anyAlive() {
			continue
		}
		ri := RunInfo{RunID: st.RunID, Started: st.Started, Compose: st.Compose, Detached: st.Detached, Ready: len(st.Services) > 0}
		for _, s := range st.Services {
			ri.Services = append(ri.Services, s.Name)
		}
		if !ri.Ready {
			seen := map[string]bool{}
			for _, g := range st.Groups {
				if !seen[g.Service] {
					seen[g.Service] = true
					ri.Services = append(ri.Services, g.Service)
				}
			}
		}
		sort.Strings(ri.Services)
		out = append(out, ri)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Started.Equal(out[j].Started) {
			return out[i].Started.Before(out[j].Started)
		}
		return out[i].RunID < out[j].RunID
	})
	return out, nil
}

// anyAlive reports whether a recorded group still has its leader.
func (st *runState) anyAlive() bool {
	for _, g := range st.Groups {
		if g.alive() {
			return true
		}
	}
	return false
}

// alive reports whether the group still has members: its leader is the
// recorded process (not a recycled pid), or the leader exited and members
// remain (a group id cannot be reused while they do).
func (g groupState) alive() bool {
	if g.PGID <= 1 {
		return false
	}
	if _, err := procStart(g.PGID); err == nil {
		return sameProcess(g.PGID, g.Start)
	}
	return groupAlive(g.PGID)
}
