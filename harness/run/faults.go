package run

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshproof/meshproof/harness/assert/verdict"
	"github.com/meshproof/meshproof/harness/backend/images"
	"github.com/meshproof/meshproof/harness/environment"
	"github.com/meshproof/meshproof/harness/faults"
	"github.com/meshproof/meshproof/harness/faults/toxi"
	"github.com/meshproof/meshproof/harness/load"
	"github.com/meshproof/meshproof/harness/report"
)

// faultRunner applies a scenario's faults during its load. The runner calls,
// in order: upOptions (before Up), attach (after Up), loadOptions and start
// (just before the load), finish (after the load, before the drain), and
// close (always, after Down). With no faults every call is a no-op.
type faultRunner struct {
	plan *faults.Plan
	log  *slog.Logger
	// px is the in-process toxiproxy the local backend puts in front of
	// interposed ports; a docker environment runs its own (ToxiproxyAPI).
	px    *toxi.Server
	links faults.Links
	env   environment.Environment
	dir   string // the compose file's dir, where .env.offline lives

	// requests counts completed load requests (after: triggers); started
	// receives the load's own start instant (at: offsets count from it).
	requests atomic.Int64
	started  chan time.Time
	stop     context.CancelFunc
	done     chan struct{}

	mu       sync.Mutex
	origin   time.Time
	timeline faults.Timeline
	runErr   error
}

// newFaultRunner validates the scenario's faults against its topology; a
// bad fault is an input error at the fault's line.
func newFaultRunner(p *Prepared, out io.Writer) (*faultRunner, error) {
	sc := p.Scenario
	plan, err := faults.NewPlan(sc.Faults)
	if err == nil {
		err = plan.Bind(p.Topology)
	}
	if err != nil {
		if fes, ok := errors.AsType[faults.FieldErrors](err); ok {
			errs := make([]error, len(fes))
			for i, fe := range fes {
				errs[i] = sc.Errorf(fe.Field, "%s", fe.Msg)
			}
			return nil, &InputError{Err: errors.Join(errs...)}
		}
		return nil, inputErr("%s: faults: %w", sc.File, err)
	}
	if out == nil {
		out = io.Discard
	}
	f := &faultRunner{plan: plan, log: slog.New(stepHandler{w: out}), started: make(chan time.Time, 1)}
	if p.Topology != nil {
		f.dir = p.Topology.Dir
	}
	return f, nil
}

func (f *faultRunner) active() bool { return f != nil && len(f.plan.Steps) > 0 }

// upOptions asks the backend to put a proxy in front of every link a
// latency or drop step degrades.
func (f *faultRunner) upOptions(o *environment.Options) {
	if !f.active() {
		return
	}
	links := f.plan.Links()
	if len(links) == 0 {
		return
	}
	f.px = toxi.NewServer()
	o.Interpose, o.Proxy = links, f.px.Proxy
	o.ProxyImage = offlineVar(f.dir, "TOXIPROXY_IMAGE")
}

// attach picks the proxies the link steps act on: the environment's own
// toxiproxy when it runs one, else the in-process server.
func (f *faultRunner) attach(env environment.Environment) {
	if !f.active() {
		return
	}
	f.env = env
	if f.px != nil {
		f.links = f.px
	}
	if a, ok := env.(environment.ToxiproxyAPI); ok && a.ToxiproxyAPI() != "" {
		f.links = toxi.NewClient(a.ToxiproxyAPI())
	}
}

// loadOptions counts requests exactly and learns the load's start, rather
// than taking a progress callback, which the live line may also need (a
// later WithProgress replaces an earlier one).
func (f *faultRunner) loadOptions() []load.Option {
	if !f.active() {
		return nil
	}
	return []load.Option{
		load.WithCounter(&f.requests),
		load.WithStarted(func(t time.Time) { f.started <- t }),
	}
}

// start runs the plan in the background from the moment the load starts.
func (f *faultRunner) start(ctx context.Context) {
	if !f.active() {
		return
	}
	fctx, stop := context.WithCancel(ctx)
	f.stop = stop
	f.done = make(chan struct{})
	go func() {
		defer close(f.done)
		var origin time.Time
		select {
		case origin = <-f.started:
		case <-fctx.Done():
			return
		}
		f.mu.Lock()
		f.origin = origin
		f.mu.Unlock()
		tl, err := faults.Run(fctx, f.env, f.plan,
			faults.Trigger{Start: origin, Requests: f.requests.Load},
			faults.WithLinks(f.links), faults.WithLogger(f.log))
		f.mu.Lock()
		f.timeline, f.runErr = tl, err
		f.mu.Unlock()
	}()
}

// finish stops the steps still waiting, ends every effect still in place
// (Restore) so the drain sees a whole environment, and returns the
// timeline events for the report.
func (f *faultRunner) finish(ctx context.Context) []report.Event {
	if !f.active() || f.done == nil {
		return nil
	}
	f.stop()
	<-f.done
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.runErr != nil {
		f.log.Warn("faults not run", "err", f.runErr)
	}
	if f.timeline != nil {
		// Restore must finish even when the run was interrupted.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		tl, err := faults.Restore(rctx, f.env, f.timeline, faults.WithLinks(f.links), faults.WithLogger(f.log))
		f.timeline = tl
		if err != nil {
			f.log.Warn("faults not restored", "err", err)
		}
	}
	return timelineEvents(f.timeline, f.origin)
}

// record is the faults timeline, saved with the evidence so that `eval`
// knows the fault windows too.
func (f *faultRunner) record() faults.Timeline {
	if !f.active() {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.timeline == nil && f.runErr != nil {
		// Nothing ran: record every step as not fired, with the reason.
		for _, st := range f.plan.Steps {
			f.timeline = append(f.timeline, faults.Event{Step: st.Index, Name: st.Name, Service: st.Service, Action: st.Action, Link: st.Link(), Err: f.runErr.Error()})
		}
	}
	return f.timeline
}

func (f *faultRunner) close() {
	if f != nil && f.px != nil {
		_ = f.px.Close()
	}
}

// timelineEvents draws each step on the report's timeline, relative to
// the load's start: when it began and when its effect ended.
func timelineEvents(tl faults.Timeline, origin time.Time) []report.Event {
	var out []report.Event
	for _, e := range tl {
		label := fmt.Sprintf("faults[%d] %s %s", e.Step, e.Action, e.Service)
		if e.Name != "" {
			label += " (" + e.Name + ")"
		}
		switch {
		case !e.Fired:
			continue
		case e.Err != "":
			out = append(out, report.Event{At: e.Start.Sub(origin), What: label + " failed: " + e.Err})
			continue
		}
		out = append(out, report.Event{At: e.Start.Sub(origin), What: fmt.Sprintf("%s (took %s)", label, e.Done.Sub(e.Start).Round(time.Millisecond))})
		if !e.End.IsZero() && !e.End.Equal(e.Done) {
			out = append(out, report.Event{At: e.End.Sub(origin), What: fmt.Sprintf("faults[%d] over: %s by %s after %s", e.Step, e.Service, e.EndedBy, e.End.Sub(e.Start).Round(time.Millisecond))})
		}
		if e.UndoErr != "" {
			out = append(out, report.Event{At: e.Done.Sub(origin), What: fmt.Sprintf("faults[%d] undo failed: %s", e.Step, e.UndoErr)})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At < out[j].At })
	return out
}

// faultResults turns each planned step into a verdict: a scenario whose
// fault did not happen (it failed, or the load ended before its trigger)
// did not test what it says, so it must not pass.
func faultResults(tl faults.Timeline) []verdict.Result {
	var out []verdict.Result
	for _, e := range tl {
		name := fmt.Sprintf("faults[%d] %s %s", e.Step, e.Action, e.Service)
		if e.Name != "" {
			name = e.Name
		}
		r := verdict.Result{Kind: "faults", Name: name, Expected: "applied and undone", Status: verdict.Pass}
		switch {
		case e.Interrupted:
			// Not the environment's fault, but the scenario did not test
			// what it says: give the fault time to finish within the load.
			r.Status, r.Detail = verdict.Fail, "cut short because the load ended: "+e.Err+e.UndoErr
		case e.Err != "":
			r.Status, r.Detail = verdict.Fail, e.Err
		case e.UndoErr != "":
			r.Status, r.Detail = verdict.Fail, "undo: "+e.UndoErr
		case !e.Fired:
			r.Status, r.Detail = verdict.Fail, "never fired: the load ended before its trigger"
		case e.Open():
			r.Status, r.Detail = verdict.Fail, "its effect was never ended"
		default:
			r.Measured = fmt.Sprintf("window %s", e.End.Sub(e.Start).Round(time.Millisecond))
		}
		out = append(out, r)
	}
	return out
}

// offlineVar reads a variable from the environment or, failing that, from
// the .env.offline `meshproof images` wrote beside the compose file.
func offlineVar(dir, name string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	if dir == "" {
		return ""
	}
	fh, err := os.Open(filepath.Join(dir, images.OfflineEnvFile))
	if err != nil {
		return ""
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// stepHandler prints fault log records as progress lines ("  ⚡ fault step
// faults[0] kill service-e"), in the run's output.
type stepHandler struct {
	w     io.Writer
	attrs []slog.Attr
}

var outMu sync.Mutex

func (h stepHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h stepHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString("  ⚡ ")
	b.WriteString(r.Message)
	add := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	b.WriteString("\n")
	outMu.Lock()
	defer outMu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h stepHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return stepHandler{w: h.w, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h stepHandler) WithGroup(string) slog.Handler { return h }
