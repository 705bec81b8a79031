// Package local runs a compose topology as plain child processes on
// 127.0.0.1 — the backend for machines without Docker. Each service gets
// free loopback ports for its declared container ports, references to other
// services in its environment and arguments are rewritten to those
// addresses, and the program that runs is picked by the service's explicit
// x-meshproof kind (never guessed from its name).
//
// Teardown has to hold when the harness does not: every process runs in its
// own process group with a parent-death signal, and every run writes a state
// file (pgids, temp dirs, owner pid) that GC — called first by every Up —
// uses to reap runs whose owner died.
package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/meshproof/meshproof/harness/environment"
	"github.com/meshproof/meshproof/harness/topology"
	"github.com/meshproof/meshproof/internal/toolbin"
)

// Backend starts environments as local processes.
type Backend struct {
	stateDir string
	grace    time.Duration
	detached bool
	tool     func(ctx context.Context, name string) (string, error)
}

var _ environment.Backend = (*Backend)(nil)

// Option configures a Backend.
type Option func(*Backend)

// WithStateDir sets where run state files live (default
// $MESHPROOF_STATE_DIR, else $XDG_RUNTIME_DIR/meshproof/local, else
// <tmp>/meshproof/local).
func WithStateDir(dir string) Option { return func(b *Backend) { b.stateDir = dir } }

// WithGrace sets how long a process group gets between SIGTERM and SIGKILL
// (default 5s, so a Ctrl-C is done well within 15 s).
func WithGrace(d time.Duration) Option { return func(b *Backend) { b.grace = d } }

// WithDetached makes the processes outlive the harness (`up --detach`,
// `run --keep`): no parent-death signal, and GC leaves the run alone; stop
// it with DownRuns.
func WithDetached() Option { return func(b *Backend) { b.detached = true } }

// New returns a local backend.
func New(opts ...Option) *Backend {
	b := &Backend{grace: 5 * time.Second, tool: toolbin.Path}
	for _, o := range opts {
		o(b)
	}
	if b.stateDir == "" {
		b.stateDir = defaultStateDir()
	}
	return b
}

func defaultStateDir() string {
	if d := os.Getenv("MESHPROOF_STATE_DIR"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "meshproof", "local")
	}
	return filepath.Join(os.TempDir(), "meshproof", "local")
}

// Name is "local".
func (b *Backend) Name() string { return "local" }

// defaultReadyTimeout bounds a service's probe when x-meshproof does not.
const defaultReadyTimeout = 60 * time.Second

// Up starts opts.Services (all when empty) in dependency order, each layer
// in parallel, and waits for every probe. When ctx ends or a service fails,
// everything started is stopped before Up returns.
func (b *Backend) Up(ctx context.Context, topo *topology.Topology, opts environment.Options) (environment.Environment, error) {
	begin := time.Now()
	// Reap what crashed harnesses left; a failure here must not block a run.
	_, _ = b.GC(ctx)

	names := opts.Services
	if len(names) == 0 {
		names = topo.Names()
	}
	layers, err := topo.Order(names)
	if err != nil {
		return nil, fmt.Errorf("local up: %w", err)
	}
	e, err := newEnv(ctx, b, topo, opts, names)
	if err != nil {
		return nil, fmt.Errorf("local up: %w", err)
	}
	fail := func(err error) (environment.Environment, error) {
		downCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.grace+15*time.Second)
		defer cancel()
		return nil, errors.Join(fmt.Errorf("local up: %w", err), e.Down(downCtx))
	}
	for _, layer := range layers {
		if err := e.startLayer(ctx, layer, opts.Progress); err != nil {
			return fail(err)
		}
	}
	// Only a run that is completely up can be attached to (Attach).
	if err := e.record(begin); err != nil {
		return fail(err)
	}
	return e, nil
}

func (e *env) startLayer(ctx context.Context, layer []string, progress func(string, time.Duration)) error {
	var wg sync.WaitGroup
	errs := make([]error, len(layer))
	for i, name := range layer {
		wg.Go(func() {
			errs[i] = e.startService(ctx, name, true)
			if errs[i] == nil && progress != nil {
				progress(name, e.readyTime(name))
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func newRunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return time.Now().UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
