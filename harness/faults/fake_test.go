package faults_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/meshproof/meshproof/harness/environment"
)

// call is one fault primitive the fake saw.
type call struct {
	Op, Target string
	At         time.Time
	// N is the load's request count when the call was made.
	N int64
}

// recorder logs calls in order; shared by the fake env and fake links.
type recorder struct {
	mu    sync.Mutex
	calls []call
	count func() int64 // the fake load's counter, when there is one
}

func (r *recorder) add(op, target string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := call{Op: op, Target: target, At: time.Now()}
	if r.count != nil {
		c.N = r.count()
	}
	r.calls = append(r.calls, c)
}

func (r *recorder) all() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]call(nil), r.calls...)
}

// ops lists "op target" in call order.
func (r *recorder) ops() []string {
	var out []string
	for _, c := range r.all() {
		out = append(out, c.Op+" "+c.Target)
	}
	return out
}

func (r *recorder) find(op, target string) (call, bool) {
	for _, c := range r.all() {
		if c.Op == op && c.Target == target {
			return c, true
		}
	}
	return call{}, false
}

// fakeEnv is an environment whose fault primitives only record themselves
// (pure scheduling logic needs nothing more). took delays an op, fail
// makes it fail, block makes it wait for its ctx.
type fakeEnv struct {
	*recorder
	took  map[string]time.Duration
	fail  map[string]error
	block map[string]bool
}

func newFakeEnv() *fakeEnv {
	return &fakeEnv{recorder: &recorder{}, took: map[string]time.Duration{}, fail: map[string]error{}, block: map[string]bool{}}
}

var _ environment.Environment = (*fakeEnv)(nil)

func (f *fakeEnv) op(ctx context.Context, op, svc string) error {
	f.add(op, svc)
	if f.block[op] {
		<-ctx.Done()
		return ctx.Err()
	}
	if d := f.took[op]; d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return f.fail[op]
}

func (f *fakeEnv) RunID() string { return "fake" }
func (f *fakeEnv) Address(s string, p int) (string, error) {
	return "", fmt.Errorf("fake has no addresses")
}
func (f *fakeEnv) Resolve(s string) string                            { return s }
func (f *fakeEnv) Services() []environment.ServiceInfo                { return nil }
func (f *fakeEnv) Endpoint(string) (string, error)                    { return "", nil }
func (f *fakeEnv) Usage(context.Context) map[string]environment.Usage { return nil }
func (f *fakeEnv) Stop(ctx context.Context, s string) error           { return f.op(ctx, "stop", s) }
func (f *fakeEnv) Start(ctx context.Context, s string) error          { return f.op(ctx, "start", s) }
func (f *fakeEnv) Kill(ctx context.Context, s string) error           { return f.op(ctx, "kill", s) }
func (f *fakeEnv) Pause(ctx context.Context, s string) error          { return f.op(ctx, "pause", s) }
func (f *fakeEnv) Unpause(ctx context.Context, s string) error        { return f.op(ctx, "unpause", s) }
func (f *fakeEnv) Down(context.Context) error                         { return nil }

// restartEnv also has a native restart, like the docker backend.
type restartEnv struct{ *fakeEnv }

func (r restartEnv) Restart(ctx context.Context, s string) error { return r.op(ctx, "restart", s) }

// fakeLinks records link operations in the same log as the env.
type fakeLinks struct{ *recorder }

func (l fakeLinks) Latency(_ context.Context, link string, d time.Duration) error {
	l.add("latency "+d.String(), link)
	return nil
}
func (l fakeLinks) Drop(_ context.Context, link string) error { l.add("drop", link); return nil }
func (l fakeLinks) Heal(_ context.Context, link string) error { l.add("heal", link); return nil }
