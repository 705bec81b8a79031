// Package data reads the stores a scenario asserts on — MongoDB document
// counts, RabbitMQ queue depth, a Postgres scalar, S3 object counts — after
// the load. Asynchronous consumers catch up after the last request, so a
// value is judged only once it has settled: unchanged over a quiet window.
// A first read that happens to satisfy the expectation proves nothing — a
// bound can still be overshot by a late double write.
//
// Collect talks to the stores and saves one Reading per distinct target;
// Judge is pure, so `meshproof eval` can re-judge a finished run's readings.
package data

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/meshproof/meshproof/harness/assert/expect"
	"github.com/meshproof/meshproof/harness/assert/verdict"
	"github.com/meshproof/meshproof/harness/scenario"
)

// Reading is what Collect saw of one target.
type Reading struct {
	// Kind is mongo, rabbitmq, postgres or s3; Target says what was read.
	// Together they key the reading, so eval of a variant that reads
	// something else finds no reading instead of judging the wrong one.
	Kind   string `json:"kind"`
	Target string `json:"target"`
	// Value is the last value read (valid when Reads > 0).
	Value   float64       `json:"value"`
	Reads   int           `json:"reads"`
	Elapsed time.Duration `json:"elapsed_ns"`
	// Settled says the value stayed unchanged over the quiet window before
	// Within ran out; SettledAfter is when it took that value for good.
	Settled      bool          `json:"settled"`
	SettledAfter time.Duration `json:"settled_after_ns"`
	// Values are the distinct values seen in order (bounded), so a report
	// shows a count climbing, or overshooting and coming back.
	Values []float64 `json:"values,omitempty"`
	// Error is the last read's error, when it failed.
	Error string `json:"error,omitempty"`
	// Quiet is how long the value had to stay unchanged to settle.
	Quiet time.Duration `json:"quiet_ns,omitempty"`
	// Counted says what a queue depth counts: ready messages plus
	// unacknowledged ones, or ready ones only when the broker declares no
	// management API. Empty for other stores.
	Counted string `json:"counted,omitempty"`
	// Baseline is the value at load start, when the environment held data
	// before the run (attached or external): the judged value is then
	// Value − Baseline, the run's own change.
	Baseline *float64 `json:"baseline,omitempty"`
}

// Judged is the value an expectation is compared with.
func (r Reading) Judged() float64 {
	if r.Baseline != nil {
		return r.Value - *r.Baseline
	}
	return r.Value
}

// cumulative says whether a store's reading only grows with the work done
// (a count), so a baseline makes it the run's own; a queue depth is a
// level and is judged as it is.
func cumulative(store string) bool { return store != "rabbitmq" }

// PollInterval is the pause between reads.
const PollInterval = 250 * time.Millisecond

// Quiet is how long a value must stay unchanged to count as settled: long
// enough for several reads, and for a consumer's next prefetch to land.
const Quiet = 2 * time.Second

// StatsQuiet is the quiet window of a queue depth read from RabbitMQ's
// management API. The API serves a queue's last statistics event, and a
// queue that wakes after going idle sends its next one only a statistics
// interval later (5 s by default), still reporting its old figures
// meanwhile: the window must outlast that interval.
const StatsQuiet = 6 * time.Second

// DefaultWithin bounds the wait to settle when an assertion sets none.
const DefaultWithin = 15 * time.Second

// maxValues bounds Reading.Values.
const maxValues = 32

// readTimeout bounds one read, so a hung store cannot stall the run.
const readTimeout = 5 * time.Second

// Endpoint is where Collect reads a store.
type Endpoint struct {
	// URL is the service's client endpoint (x-meshproof.endpoint).
	URL string
	// Management is its management API (x-meshproof.management), "" when
	// it declares none. RabbitMQ's unacknowledged messages are read there.
	Management string
}

// reader reads one number from a store.
type reader interface {
	read(ctx context.Context) (float64, error)
	close()
}

// Store names the store an assertion reads, "" if it names none or several.
func Store(spec scenario.DataAssertion) string {
	var kinds []string
	if spec.Mongo != nil {
		kinds = append(kinds, "mongo")
	}
	if spec.RabbitMQ != nil {
		kinds = append(kinds, "rabbitmq")
	}
	if spec.Postgres != "" {
		kinds = append(kinds, "postgres")
	}
	if spec.S3 != nil {
		kinds = append(kinds, "s3")
	}
	if len(kinds) != 1 {
		return ""
	}
	return kinds[0]
}

func target(spec scenario.DataAssertion) string {
	switch Store(spec) {
	case "mongo":
		t := spec.Mongo.DB + "." + spec.Mongo.Collection
		if len(spec.Mongo.Filter) > 0 {
			keys := make([]string, 0, len(spec.Mongo.Filter))
			for k := range spec.Mongo.Filter {
				keys = append(keys, k+"="+spec.Mongo.Filter[k])
			}
			sort.Strings(keys)
			t += " {" + strings.Join(keys, ", ") + "}"
		}
		return t
	case "rabbitmq":
		return "queue " + spec.RabbitMQ.Queue
	case "postgres":
		return spec.Postgres
	case "s3":
		return "s3://" + spec.S3.Bucket + "/" + spec.S3.Prefix
	}
	return ""
}

// expectation is the one of count/depth/expect the assertion wrote.
func expectation(spec scenario.DataAssertion) (string, string) {
	switch {
	case spec.Count != "":
		return "count", spec.Count
	case spec.Depth != "":
		return "depth", spec.Depth
	case spec.Expect != "":
		return "expect", spec.Expect
	}
	return "", ""
}

// Name is the assertion's name, or one derived from what it reads.
func Name(spec scenario.DataAssertion) string {
	if spec.Name != "" {
		return spec.Name
	}
	field, e := expectation(spec)
	return fmt.Sprintf("%s %s %s %s", Store(spec), target(spec), field, e)
}

func open(ctx context.Context, ep Endpoint, spec scenario.DataAssertion) (reader, error) {
	switch Store(spec) {
	case "mongo":
		return openMongo(ctx, ep.URL, *spec.Mongo)
	case "rabbitmq":
		return openRabbit(ep, spec.RabbitMQ.Queue)
	case "postgres":
		return openPostgres(ctx, ep.URL, spec.Postgres)
	case "s3":
		return openS3(ep.URL, *spec.S3)
	}
	return nil, fmt.Errorf("a data assertion names exactly one of mongo, rabbitmq, postgres, s3")
}

// key identifies a reading: what was read, in which store.
func key(kind, target string) string { return kind + " " + target }

// within is the assertion's bound on settling, never shorter than Quiet.
func within(spec scenario.DataAssertion) time.Duration {
	if spec.Within <= 0 {
		return DefaultWithin
	}
	return max(spec.Within.D(), Quiet)
}

// Collect reads the store until the value has been unchanged for Quiet or
// limit has passed. A failing read is retried within the same deadline — a
// store restarting during a fault scenario is normal — and resets the quiet
// window, since nothing is known of the value meanwhile.
func Collect(ctx context.Context, ep Endpoint, spec scenario.DataAssertion, limit time.Duration) (r Reading) {
	r = Reading{Kind: Store(spec), Target: target(spec), Counted: counted(spec, ep), Quiet: quietFor(spec, ep)}
	limit = max(limit, r.Quiet)
	began := time.Now()
	defer func() { r.Elapsed = time.Since(began) }()
	deadline := began.Add(limit)
	var rd reader
	defer func() {
		if rd != nil {
			rd.close()
		}
	}()
	var since time.Time // when the current value was first read
	for {
		v, err := readOnce(ctx, &rd, ep, spec)
		now := time.Now()
		switch {
		case err != nil:
			r.Error, since = err.Error(), time.Time{}
		case r.Reads == 0 || v != r.Value || since.IsZero():
			r.Value, r.Error, since = v, "", now
			if len(r.Values) < maxValues {
				r.Values = append(r.Values, v)
			}
		default:
			r.Error = ""
		}
		if err == nil {
			r.Reads++
		}
		if !since.IsZero() && now.Sub(since) >= r.Quiet {
			r.Settled, r.SettledAfter = true, since.Sub(began)
			return r
		}
		if r.Kind == "" || now.Add(PollInterval).After(deadline) {
			return r
		}
		select {
		case <-ctx.Done():
			r.Error = fmt.Sprintf("read %s: %v", r.Target, ctx.Err())
			return r
		case <-time.After(PollInterval):
		}
	}
}

// quietFor is the quiet window of spec read at ep.
func quietFor(spec scenario.DataAssertion, ep Endpoint) time.Duration {
	if Store(spec) == "rabbitmq" && ep.Management != "" {
		return StatsQuiet
	}
	return Quiet
}

// quiet is the reading's quiet window (Quiet in readings saved before it
// was recorded).
func (r Reading) quiet() time.Duration {
	if r.Quiet > 0 {
		return r.Quiet
	}
	return Quiet
}

// counted is Reading.Counted for spec read at ep.
func counted(spec scenario.DataAssertion, ep Endpoint) string {
	switch {
	case Store(spec) != "rabbitmq":
		return ""
	case ep.Management == "":
		return "ready messages only: no management API of the broker is declared (x-meshproof.management) or reachable, so messages delivered but not acknowledged are not counted"
	}
	return "ready + unacknowledged messages"
}

// readOnce reads one value, opening the store when needed and dropping the
// connection after a failure (the store may have restarted).
func readOnce(ctx context.Context, rd *reader, ep Endpoint, spec scenario.DataAssertion) (float64, error) {
	if *rd == nil {
		var err error
		if *rd, err = open(ctx, ep, spec); err != nil {
			return 0, err
		}
	}
	rctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	v, err := (*rd).read(rctx)
	if err != nil {
		(*rd).close()
		*rd = nil
	}
	return v, err
}

// Judge compares a settled reading with the assertion's expectation. A
// value that never settled fails whatever it was: the last read of a
// climbing count says nothing about where it ends.
func Judge(spec scenario.DataAssertion, r Reading, vars expect.Vars) verdict.Result {
	field, raw := expectation(spec)
	res := verdict.Result{Kind: "data", Name: Name(spec), Expected: raw}
	fail := func(st verdict.Status, format string, args ...any) verdict.Result {
		res.Status, res.Detail = st, fmt.Sprintf(format, args...)
		return res
	}
	e, err := expect.Parse(raw)
	switch {
	case Store(spec) == "":
		return fail(verdict.Error, "a data assertion names exactly one of mongo, rabbitmq, postgres, s3")
	case field == "":
		return fail(verdict.Error, "a data assertion needs count:, depth: or expect:")
	case err != nil:
		return fail(verdict.Error, "%s: %v", field, err)
	case r.Reads == 0:
		return fail(verdict.Error, "%s never read (%s): %s", r.Target, r.Elapsed.Round(time.Millisecond), r.Error)
	}
	res.Measured = fmt.Sprintf("%s (%d reads, settled after %s)", e.Format(r.Judged()), r.Reads, r.SettledAfter.Round(time.Millisecond))
	if r.Baseline != nil {
		res.Measured = fmt.Sprintf("%s (%s → %s since load start; %d reads, settled after %s)",
			e.Format(r.Judged()), e.Format(*r.Baseline), e.Format(r.Value), r.Reads, r.SettledAfter.Round(time.Millisecond))
	}
	if !r.Settled {
		res.Measured = fmt.Sprintf("%s (%d reads, still changing)", e.Format(r.Value), r.Reads)
		return fail(verdict.Fail, "%s %s did not stay unchanged for %s within %s; values seen: %s%s",
			r.Kind, r.Target, r.quiet(), max(within(spec), r.quiet()), formatValues(r.Values, e), lastError(r))
	}
	ok, err := e.Check(r.Judged(), vars)
	switch {
	case err != nil:
		return fail(verdict.Error, "%v", err)
	case ok:
		res.Status, res.Detail = verdict.Pass, r.Counted
		return res
	}
	t, _ := e.Target(vars)
	return fail(verdict.Fail, "%s %s settled at %s, want %s (%s); values seen: %s%s",
		r.Kind, r.Target, e.Format(r.Judged()), raw, e.Format(t), formatValues(r.Values, e), countedNote(r))
}

func formatValues(vs []float64, e expect.Expectation) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = e.Format(v)
	}
	return strings.Join(parts, " → ")
}

func countedNote(r Reading) string {
	if r.Counted == "" {
		return ""
	}
	return "; counted: " + r.Counted
}

func lastError(r Reading) string {
	if r.Error == "" {
		return ""
	}
	return "; last read error: " + r.Error
}
