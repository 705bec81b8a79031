package faults

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/meshproof/meshproof/harness/environment"
)

// Links degrades the link to a service port through a proxy in front of it.
// A link is named by LinkKey ("service-c:50051"). Package faults/toxi
// implements it in-process (local backend) and over the toxiproxy HTTP API
// (a toxiproxy container, docker backend).
type Links interface {
	// Latency delays every response on the link by d (replacing any
	// latency already set).
	Latency(ctx context.Context, link string, d time.Duration) error
	// Drop stops all data on the link, in both directions, without closing
	// connections: a partition, where callers wait for their deadlines.
	Drop(ctx context.Context, link string) error
	// Heal removes whatever Latency and Drop added.
	Heal(ctx context.Context, link string) error
}

// Trigger tells Run when the load started and how far it has got.
type Trigger struct {
	// Start is the instant the load started (load.Result.Start, warm-up
	// included); at: offsets count from it. Zero means when Run is called.
	Start time.Time
	// Requests returns the live count of requests the load has completed
	// (warm-up included). Required when a step uses after:.
	Requests func() int64
	// Poll is how often Requests is read (default 10ms). An after: step
	// fires within Poll of the count being visible through Requests.
	Poll time.Duration
}

// Option changes how Run and Restore behave.
type Option func(*config)

type config struct {
	links Links
	log   *slog.Logger
}

// WithLinks supplies the proxies that latency and drop steps act on.
func WithLinks(l Links) Option { return func(c *config) { c.links = l } }

// WithLogger logs each step as it fires, completes and is undone (default:
// nothing is logged; the Timeline holds the same facts).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

func newConfig(opts []Option) config {
	c := config{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// Run executes the plan against env: each step waits for its trigger,
// acts, and — with for: — undoes its effect that long after. Steps on the
// same service never overlap and keep their planned order; steps on
// different services run independently. Run returns when every step and undo has finished, or as
// soon as ctx ends (the runner cancels it when the load is over): steps
// not yet triggered are recorded as not fired and effects not yet undone
// stay open in the Timeline — call Restore to end them.
//
// The error is for a plan Run cannot execute (a latency step without
// Links, an after: step without Trigger.Requests); failures of individual
// steps are in the Timeline (Timeline.Err).
func Run(ctx context.Context, env environment.Environment, plan *Plan, trig Trigger, opts ...Option) (Timeline, error) {
	if plan == nil || len(plan.Steps) == 0 {
		return nil, nil
	}
	cfg := newConfig(opts)
	for _, st := range plan.Steps {
		if effectOf(st.Action) == effLink {
			if st.Port == 0 {
				return nil, fmt.Errorf("%s: no port chosen for the link (call Plan.Bind)", st.Label())
			}
			if cfg.links == nil {
				return nil, fmt.Errorf("%s: no proxies to act on (run with faults.WithLinks)", st.Label())
			}
		}
		if st.After > 0 && trig.Requests == nil {
			return nil, fmt.Errorf("%s: after: needs Trigger.Requests", st.Label())
		}
	}
	if trig.Start.IsZero() {
		trig.Start = time.Now()
	}
	if trig.Poll <= 0 {
		trig.Poll = 10 * time.Millisecond
	}
	r := &runner{env: env, cfg: cfg, trig: trig, open: map[openKey]int{}, locks: map[string]chan struct{}{}}
	for _, st := range plan.Steps {
		r.events = append(r.events, Event{Step: st.Index, Name: st.Name, Service: st.Service, Action: st.Action, Link: st.Link()})
		if r.locks[st.Service] == nil {
			r.locks[st.Service] = make(chan struct{}, 1)
		}
	}
	turns, prev := queue(plan.Steps)
	var wg sync.WaitGroup
	for i, st := range plan.Steps {
		wg.Go(func() { r.step(ctx, i, st, prev[i], turns[i]) })
	}
	wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events), nil
}

type openKey struct {
	service string
	eff     effect
}

type runner struct {
	env  environment.Environment
	cfg  config
	trig Trigger

	mu     sync.Mutex
	events Timeline
	// open maps an effect left in place by a step without for: to that
	// step's event, so the step that ends it (start, unpause) closes it.
	open  map[openKey]int
	locks map[string]chan struct{}
}

// queue orders the steps of each service that share a kind of trigger —
// at: steps by offset, after: steps by count, ties in plan order — so a
// goroutine scheduled late cannot overtake the step planned before it on
// the same service. turns[i] is closed once step i has taken its service
// (or given up); prev[i] is the turn step i must wait for, nil if none.
func queue(steps []Step) (turns []chan struct{}, prev []chan struct{}) {
	turns = make([]chan struct{}, len(steps))
	prev = make([]chan struct{}, len(steps))
	order := make([]int, len(steps))
	for i := range steps {
		turns[i] = make(chan struct{})
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		x, y := steps[a], steps[b]
		if c := cmp.Compare(x.After, y.After); c != 0 {
			return c // at: steps (After 0) first, then by count
		}
		return cmp.Compare(x.At, y.At)
	})
	type lane struct {
		service  string
		counting bool
	}
	last := map[lane]int{}
	for _, i := range order {
		k := lane{steps[i].Service, steps[i].After > 0}
		if j, ok := last[k]; ok {
			prev[i] = turns[j]
		}
		last[k] = i
	}
	return turns, prev
}

func (r *runner) step(ctx context.Context, i int, st Step, prev, turn chan struct{}) {
	var once sync.Once
	myTurn := func() { once.Do(func() { close(turn) }) }
	defer myTurn()
	if !r.wait(ctx, st) {
		return
	}
	if prev != nil {
		select {
		case <-prev:
		case <-ctx.Done():
			return
		}
	}
	if !r.lock(ctx, st.Service) {
		return
	}
	myTurn()
	r.cfg.log.Info("fault step", "step", st.Label())
	start := time.Now()
	err := act(ctx, r.env, r.cfg.links, st)
	done := time.Now()

	// Record before releasing the service, so the step that lifts this
	// effect finds it open.
	eff := effectOf(st.Action)
	r.mu.Lock()
	e := &r.events[i]
	e.Fired, e.Start, e.Done = true, start, done
	switch {
	case err != nil:
		e.Err, e.End, e.Interrupted = err.Error(), done, ctx.Err() != nil
	case eff == noEffect:
		e.End = done
		r.closeOpen(st, done)
	case st.For == 0:
		r.open[openKey{st.Service, eff}] = i
	}
	r.mu.Unlock()
	r.unlock(st.Service)
	if err != nil {
		r.cfg.log.Warn("fault step failed", "step", st.Label(), "took", done.Sub(start), "err", err)
		return
	}
	r.cfg.log.Info("fault step done", "step", st.Label(), "took", done.Sub(start))
	if eff == noEffect || st.For == 0 {
		return
	}

	t := time.NewTimer(st.For)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return
	case <-t.C:
	}
	if !r.lock(ctx, st.Service) {
		return
	}
	err = undo(ctx, r.env, r.cfg.links, st.Action, st.Service, st.Link())
	end := time.Now()
	r.unlock(st.Service)
	r.mu.Lock()
	if err != nil {
		e.UndoErr, e.Interrupted = err.Error(), ctx.Err() != nil
	} else {
		e.End, e.EndedBy = end, undoOf(eff)
	}
	r.mu.Unlock()
	if err != nil {
		r.cfg.log.Warn("fault undo failed", "step", st.Label(), "err", err)
		return
	}
	r.cfg.log.Info("fault undone", "step", st.Label(), "by", undoOf(eff), "window", end.Sub(start))
}

// closeOpen ends the effect a start/restart/unpause step lifts. Called with
// r.mu held.
func (r *runner) closeOpen(st Step, at time.Time) {
	var eff effect
	switch st.Action {
	case ActStart, ActRestart:
		eff = effDown
	case ActUnpause:
		eff = effPaused
	default:
		return
	}
	k := openKey{st.Service, eff}
	if j, ok := r.open[k]; ok {
		r.events[j].End = at
		r.events[j].EndedBy = fmt.Sprintf("faults[%d]", st.Index)
		delete(r.open, k)
	}
}

// wait blocks until the step's trigger; false when ctx ended first.
func (r *runner) wait(ctx context.Context, st Step) bool {
	if st.After > 0 {
		tick := time.NewTicker(r.trig.Poll)
		defer tick.Stop()
		for r.trig.Requests() < st.After {
			select {
			case <-ctx.Done():
				return false
			case <-tick.C:
			}
		}
		return ctx.Err() == nil
	}
	t := time.NewTimer(time.Until(r.trig.Start.Add(st.At)))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (r *runner) lock(ctx context.Context, service string) bool {
	select {
	case r.locks[service] <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (r *runner) unlock(service string) { <-r.locks[service] }

// act performs one step's action.
func act(ctx context.Context, env environment.Environment, links Links, st Step) error {
	var err error
	switch st.Action {
	case ActKill:
		err = env.Kill(ctx, st.Service)
	case ActStop:
		err = env.Stop(ctx, st.Service)
	case ActStart:
		err = env.Start(ctx, st.Service)
	case ActRestart:
		if rs, ok := env.(environment.Restarter); ok {
			err = rs.Restart(ctx, st.Service)
		} else if err = env.Stop(ctx, st.Service); err == nil {
			err = env.Start(ctx, st.Service)
		}
	case ActPause:
		err = env.Pause(ctx, st.Service)
	case ActUnpause:
		err = env.Unpause(ctx, st.Service)
	case ActLatency:
		err = links.Latency(ctx, st.Link(), st.Latency)
	case ActDrop:
		err = links.Drop(ctx, st.Link())
	default:
		err = fmt.Errorf("unknown action %q", st.Action)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", st.Action, st.Service, err)
	}
	return nil
}

// undo ends the effect of an action.
func undo(ctx context.Context, env environment.Environment, links Links, action, service, link string) error {
	var err error
	switch effectOf(action) {
	case effDown:
		err = env.Start(ctx, service)
	case effPaused:
		err = env.Unpause(ctx, service)
	case effLink:
		if links == nil {
			return fmt.Errorf("heal %s: no proxies (WithLinks)", link)
		}
		err = links.Heal(ctx, link)
	default:
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", undoOf(effectOf(action)), service, err)
	}
	return nil
}

// Restore ends every effect still open in tl — a kill that nothing
// restarted, a pause whose for: was cut short when the load ended, latency
// with no for: — so the drain and the data assertions see a whole
// environment. It returns tl with those windows closed (EndedBy
// "restore"); an undo that fails is recorded in UndoErr and returned.
func Restore(ctx context.Context, env environment.Environment, tl Timeline, opts ...Option) (Timeline, error) {
	cfg := newConfig(opts)
	out := slices.Clone(tl)
	ended := map[openKey]time.Time{}
	var errs []error
	for i := range out {
		e := &out[i]
		if !e.Open() {
			continue
		}
		k := openKey{e.Service, effectOf(e.Action)}
		if at, ok := ended[k]; ok { // an earlier event of the same kind, already lifted
			e.End, e.EndedBy = at, "restore"
			continue
		}
		if err := undo(ctx, env, cfg.links, e.Action, e.Service, e.Link); err != nil {
			e.UndoErr = err.Error()
			errs = append(errs, fmt.Errorf("restore faults[%d]: %w", e.Step, err))
			cfg.log.Warn("fault restore failed", "step", e.Step, "err", err)
			continue
		}
		e.End, e.EndedBy = time.Now(), "restore"
		ended[k] = e.End
		cfg.log.Info("fault restored", "step", e.Step, "service", e.Service, "action", e.Action)
	}
	return out, errors.Join(errs...)
}
