package load

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Snapshot is the live state passed to a progress callback about once a
// second.
type Snapshot struct {
	Elapsed time.Duration
	Warmup  bool
	// Requests and Errors so far, warm-up included.
	Requests int64
	Errors   int64
	// RPS, P50 and P99 describe the last interval only.
	RPS float64
	P50 time.Duration
	P99 time.Duration
}

// Option changes how Run behaves.
type Option func(*options)

type options struct {
	progress func(Snapshot)
	interval time.Duration
	counter  *atomic.Int64
	started  func(time.Time)
}

// WithProgress calls fn about once a second with the run's live state, from
// a goroutine of its own; fn must return quickly.
func WithProgress(fn func(Snapshot)) Option { return func(o *options) { o.progress = fn } }

// WithCounter adds one to n as each request completes (warm-up included),
// for callers that act on exact request counts — a fault "after: 500" —
// where the once-a-second progress snapshot would be up to a second late.
func WithCounter(n *atomic.Int64) Option { return func(o *options) { o.counter = n } }

// WithStarted calls fn with Result.Start as the run begins, before the
// first request, so a caller can time things from the load's own origin.
func WithStarted(fn func(time.Time)) Option { return func(o *options) { o.started = fn } }

// WithInterval changes the series and progress interval (default 1s).
func WithInterval(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.interval = d
		}
	}
}

// Run drives the configured load until its duration or request count is
// reached (or ctx ends), waits for outstanding requests and returns what it
// measured. An error means the run could not start (bad config, a gRPC
// method that cannot be resolved); failed requests are in the Result.
func Run(ctx context.Context, cfg Config, opts ...Option) (*Result, error) {
	cfg, kind, err := cfg.normalized()
	if err != nil {
		return nil, err
	}
	o := options{interval: time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	concurrency := int(math.Ceil(cfg.peak()))
	if cfg.Model == Open {
		concurrency = cfg.MaxInflight
	}
	tr, err := newTransport(ctx, cfg, kind, max(1, concurrency))
	if err != nil {
		return nil, err
	}
	defer tr.close()

	e := &engine{
		cfg:     cfg,
		tr:      tr,
		rec:     newRecorder(max(4, 2*runtime.GOMAXPROCS(0)), cfg.TraceSample, cfg.Warmup),
		base:    time.Now(),
		counter: o.counter,
	}
	if o.started != nil {
		o.started(e.base)
	}
	res := &Result{Target: cfg.Target, Model: cfg.Model, Start: e.base, MeasuredStart: e.base.Add(cfg.Warmup)}

	tickDone := make(chan struct{})
	tickStop := make(chan struct{})
	go func() {
		defer close(tickDone)
		e.tick(o, tickStop, res)
	}()
	if cfg.Model == Open {
		e.runOpen(ctx)
	} else {
		e.runClosed(ctx)
	}
	close(tickStop)
	<-tickDone
	res.Late = e.late.Load()
	res.Dropped = e.dropped.Load()
	e.rec.fill(res, e.base, cfg.TraceSample)
	return res, nil
}

func newTransport(ctx context.Context, cfg Config, kind transportKind, concurrency int) (transport, error) {
	if kind == kindGRPC {
		return newGRPCTransport(ctx, cfg, concurrency)
	}
	return newHTTPTransport(cfg, concurrency)
}

type engine struct {
	cfg     Config
	tr      transport
	rec     *recorder
	base    time.Time
	late    atomic.Int64
	dropped atomic.Int64
	counter *atomic.Int64 // WithCounter, may be nil
}

func (e *engine) now() int64 { return int64(time.Since(e.base)) }

// end is the offset at which no new request starts.
func (e *engine) end() int64 {
	if e.cfg.Duration == 0 {
		return math.MaxInt64
	}
	return int64(e.cfg.Warmup + e.cfg.Duration)
}

// worker is one sender: a client with its own reusable request and
// traceparent buffer.
type worker struct {
	id int
	c  client
	tp *traceparent
}

func (e *engine) newWorker(id int) *worker {
	return &worker{id: id, c: e.tr.newClient(), tp: newTraceparent()}
}

// send makes one request due at dueNs and records it.
func (e *engine) send(ctx context.Context, w *worker, dueNs int64) {
	id, tp := w.tp.next()
	o := w.c.do(ctx, tp)
	if !o.ok && ctx.Err() != nil {
		return // the run was aborted; this failure says nothing about the target
	}
	e.rec.record(w.id, id, dueNs, e.now(), o)
	if e.counter != nil {
		e.counter.Add(1)
	}
}

// runClosed runs users that each send, wait for the answer, think, repeat.
// With stages, users above the current level wait until the ramp reaches
// them.
func (e *engine) runClosed(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n := int(math.Ceil(e.cfg.peak()))
	var tickets atomic.Int64 // measured requests handed out, for Requests
	ctl := newUserControl(e.cfg)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			e.user(ctx, e.newWorker(i), i, ctl, &tickets)
		})
	}
	if len(e.cfg.Stages) > 0 {
		go ctl.ramp(ctx, e)
	}
	wg.Wait()
}

func (e *engine) user(ctx context.Context, w *worker, i int, ctl *userControl, tickets *atomic.Int64) {
	var think *time.Timer
	if e.cfg.ThinkTime > 0 {
		think = time.NewTimer(time.Hour)
		defer think.Stop()
	}
	end := e.end()
	for {
		if !ctl.wait(ctx, i) {
			return
		}
		start := e.now()
		if start >= end {
			return
		}
		if e.cfg.Requests > 0 && start >= int64(e.cfg.Warmup) {
			if tickets.Add(1) > int64(e.cfg.Requests) {
				ctl.finish() // wakes users idled by a ramp
				return
			}
		}
		e.send(ctx, w, start)
		if think != nil {
			think.Reset(e.cfg.ThinkTime)
			select {
			case <-ctx.Done():
				return
			case <-think.C:
			}
		}
	}
}

// userControl tells closed-model users whether they are active. The level
// only changes with stages; then a ramp goroutine updates it every 50ms and
// wakes the users waiting for it.
type userControl struct {
	mu      sync.Mutex
	active  int
	done    bool
	changed chan struct{}
}

func newUserControl(cfg Config) *userControl {
	return &userControl{active: int(math.Round(cfg.level(0))), changed: make(chan struct{})}
}

// wait blocks until user i is active; false when the run is over.
func (c *userControl) wait(ctx context.Context, i int) bool {
	for {
		c.mu.Lock()
		active, done, ch := c.active, c.done, c.changed
		c.mu.Unlock()
		if done {
			return false
		}
		if i < active {
			return ctx.Err() == nil
		}
		select {
		case <-ctx.Done():
			return false
		case <-ch:
		}
	}
}

// finish ends the run for every user, waiting or not.
func (c *userControl) finish() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.done {
		c.done = true
		close(c.changed)
	}
}

func (c *userControl) set(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n == c.active || c.done {
		return
	}
	c.active = n
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *userControl) ramp(ctx context.Context, e *engine) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := e.now()
			if now >= e.end() {
				c.finish()
				return
			}
			c.set(int(math.Round(e.cfg.level(time.Duration(now)))))
		}
	}
}

// runOpen starts requests on schedule, whatever the target does. A pool of
// workers grows on demand up to MaxInflight; a send due when all of them are
// busy is dropped and counted. Latency counts from the scheduled time, so a
// send that starts late carries its lateness.
func (e *engine) runOpen(ctx context.Context) {
	jobs := make(chan int64)
	var wg sync.WaitGroup
	workers := 0
	spawn := func(first int64) {
		w := e.newWorker(workers)
		workers++
		wg.Go(func() {
			due := first
			for {
				if lag := e.now() - due; lag > int64(LateAfter) {
					e.late.Add(1)
				}
				e.send(ctx, w, due)
				var ok bool
				if due, ok = <-jobs; !ok {
					return
				}
			}
		})
	}
	e.schedule(ctx, func(due int64) {
		select {
		case jobs <- due:
		default:
			if workers < e.cfg.MaxInflight {
				spawn(due)
			} else {
				e.dropped.Add(1)
			}
		}
	})
	close(jobs)
	wg.Wait()
}

// schedule calls dispatch for each due send, in order, at (or as soon as
// possible after) its time.
func (e *engine) schedule(ctx context.Context, dispatch func(due int64)) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	end := e.end()
	warm := int64(e.cfg.Warmup)
	measured := 0
	var next int64
	for next < end && ctx.Err() == nil {
		if e.cfg.Requests > 0 && measured >= e.cfg.Requests {
			return
		}
		if wait := next - e.now(); wait > 0 {
			timer.Reset(time.Duration(wait))
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
			continue
		}
		rate := e.cfg.level(time.Duration(next))
		if rate <= 0 {
			next += int64(10 * time.Millisecond) // ramping up from zero
			continue
		}
		dispatch(next)
		if next >= warm {
			measured++
		}
		next += int64(float64(time.Second) / rate)
	}
}

// tick closes an interval every o.interval: a series point and a progress
// callback. The final partial interval is closed when stop is closed.
func (e *engine) tick(o options, stop <-chan struct{}, res *Result) {
	t := time.NewTicker(o.interval)
	defer t.Stop()
	acc := hdr.New(1, histMaxUs, intervalDigits)
	last := int64(0)
	closeInterval := func() {
		now := e.now()
		req, errs, total := e.rec.drainInterval(acc)
		secs := float64(now-last) / float64(time.Second)
		last = now
		p := Point{
			T:        float64(now) / float64(time.Second),
			Warmup:   now <= int64(e.cfg.Warmup),
			Requests: req,
			Errors:   errs,
			P50Ms:    float64(acc.ValueAtPercentile(50)) / 1000,
			P90Ms:    float64(acc.ValueAtPercentile(90)) / 1000,
			P99Ms:    float64(acc.ValueAtPercentile(99)) / 1000,
		}
		if secs > 0 {
			p.RPS = float64(req) / secs
		}
		if req > 0 || secs > 0.05 {
			res.Series = append(res.Series, p)
		}
		if o.progress != nil {
			o.progress(Snapshot{
				Elapsed: time.Duration(now), Warmup: p.Warmup,
				Requests: total.Requests, Errors: total.Errors, RPS: p.RPS,
				P50: time.Duration(p.P50Ms * float64(time.Millisecond)),
				P99: time.Duration(p.P99Ms * float64(time.Millisecond)),
			})
		}
	}
	for {
		select {
		case <-stop:
			closeInterval()
			return
		case <-t.C:
			closeInterval()
		}
	}
}

// Preflight checks that the target answers before a run starts, so an
// environment problem is reported as such ("target X unreachable") instead
// of as a run full of errors. It connects without sending a load request:
// a real request would change the target's data and break assertions such
// as "count == load.ok". For gRPC it also resolves the method, which proves
// the server speaks gRPC (and reflection, when used).
func Preflight(ctx context.Context, cfg Config) error {
	cfg, kind, err := cfg.normalized()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, min(cfg.Timeout, 5*time.Second))
	defer cancel()
	if err := dialTCP(ctx, cfg.Target); err != nil {
		return err
	}
	if kind != kindGRPC {
		return nil
	}
	conn, err := dialGRPC(cfg.Target)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	if err := waitReady(ctx, conn, cfg.Target); err != nil {
		return err
	}
	if _, err := resolveMethod(ctx, conn, cfg); err != nil {
		return fmt.Errorf("load target %s: %w", cfg.Target, err)
	}
	return nil
}
