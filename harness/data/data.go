// Package data reads the stores a scenario asserts on — MongoDB document
// counts, RabbitMQ queue depth, a Postgres scalar, S3 object counts — after
// the load, polling until the expectation holds or `within` passes, since
// asynchronous consumers catch up after the last request.
//
// Collect talks to the stores and returns a JSON-serialisable Reading; Judge
// is pure, so `meshproof eval` can re-judge a finished run's readings.
package data

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/meshproof/meshproof/harness/expect"
	"github.com/meshproof/meshproof/harness/scenario"
	"github.com/meshproof/meshproof/harness/verdict"
)

// Endpoints are the stores' addresses as the runner resolved them for one
// assertion (host ports on 127.0.0.1).
type Endpoints struct {
	MongoURI    string `json:"mongo_uri,omitempty"`
	AMQPURL     string `json:"amqp_url,omitempty"` // amqp://guest:guest@127.0.0.1:5672/
	PostgresDSN string `json:"postgres_dsn,omitempty"`
	// S3Endpoint is LocalStack's URL; credentials test/test, us-east-1, path style.
	S3Endpoint string `json:"s3_endpoint,omitempty"`
}

// Reading is what Collect saw.
type Reading struct {
	// Kind is mongo, rabbitmq, postgres or s3; Target says what was read.
	Kind   string `json:"kind"`
	Target string `json:"target"`
	// Value is the last value read (valid when Reads > 0).
	Value   float64       `json:"value"`
	Reads   int           `json:"reads"`
	Elapsed time.Duration `json:"elapsed_ns"`
	// Error is the last read's error, when it failed.
	Error string `json:"error,omitempty"`
}

// PollInterval is the pause between reads while waiting for `within`.
const PollInterval = 250 * time.Millisecond

// readTimeout bounds one read, so a hung store cannot stall the run.
const readTimeout = 5 * time.Second

// reader reads one number from a store.
type reader interface {
	read(ctx context.Context) (float64, error)
	close()
}

// Kind names the store an assertion reads, "" if it names none or several.
func Kind(spec scenario.DataAssertion) string {
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
	switch Kind(spec) {
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
	return fmt.Sprintf("%s %s %s %s", Kind(spec), target(spec), field, e)
}

func open(ctx context.Context, ep Endpoints, spec scenario.DataAssertion) (reader, error) {
	switch Kind(spec) {
	case "mongo":
		return openMongo(ctx, ep.MongoURI, *spec.Mongo)
	case "rabbitmq":
		return openRabbit(ep.AMQPURL, spec.RabbitMQ.Queue)
	case "postgres":
		return openPostgres(ctx, ep.PostgresDSN, spec.Postgres)
	case "s3":
		return openS3(ep.S3Endpoint, *spec.S3)
	}
	return nil, fmt.Errorf("a data assertion names exactly one of mongo, rabbitmq, postgres, s3")
}

// Collect reads the store until the expectation holds or spec.Within has
// passed (Within 0 = a single read). A failing read is retried within the
// same deadline — a store restarting during a fault scenario is normal.
func Collect(ctx context.Context, ep Endpoints, spec scenario.DataAssertion, vars expect.Vars) (r Reading) {
	r = Reading{Kind: Kind(spec), Target: target(spec)}
	began := time.Now()
	defer func() { r.Elapsed = time.Since(began) }()
	_, raw := expectation(spec)
	e, perr := expect.Parse(raw)
	deadline := began.Add(spec.Within.D())
	var rd reader
	defer func() {
		if rd != nil {
			rd.close()
		}
	}()
	for {
		var err error
		if rd == nil {
			rd, err = open(ctx, ep, spec)
		}
		if err == nil {
			rctx, cancel := context.WithTimeout(ctx, readTimeout)
			var v float64
			v, err = rd.read(rctx)
			cancel()
			if err == nil {
				r.Value, r.Reads, r.Error = v, r.Reads+1, ""
				if perr != nil {
					return r // nothing to wait for: Judge reports the bad expectation
				}
				if ok, cerr := e.Check(v, vars); ok || cerr != nil {
					return r
				}
			}
		}
		if err != nil {
			r.Error = err.Error()
			if r.Kind == "" {
				return r
			}
			if rd != nil {
				// Reconnect next time: the store may have restarted.
				rd.close()
				rd = nil
			}
		}
		if time.Now().Add(PollInterval).After(deadline) {
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

// Judge compares a reading with the assertion's expectation.
func Judge(spec scenario.DataAssertion, r Reading, vars expect.Vars) verdict.Result {
	field, raw := expectation(spec)
	res := verdict.Result{Kind: "data", Name: Name(spec), Expected: raw}
	fail := func(format string, args ...any) verdict.Result {
		res.Status, res.Detail = verdict.Error, fmt.Sprintf(format, args...)
		return res
	}
	if Kind(spec) == "" {
		return fail("a data assertion names exactly one of mongo, rabbitmq, postgres, s3")
	}
	if field == "" {
		return fail("a data assertion needs count:, depth: or expect:")
	}
	e, err := expect.Parse(raw)
	if err != nil {
		return fail("%s: %v", field, err)
	}
	if r.Reads == 0 {
		return fail("%s never read (%s): %s", r.Target, r.Elapsed.Round(time.Millisecond), r.Error)
	}
	res.Measured = fmt.Sprintf("%s (%d reads in %s)", e.Format(r.Value), r.Reads, r.Elapsed.Round(time.Millisecond))
	ok, err := e.Check(r.Value, vars)
	switch {
	case err != nil:
		return fail("%v", err)
	case ok:
		res.Status = verdict.Pass
	default:
		t, _ := e.Target(vars)
		res.Status = verdict.Fail
		res.Detail = fmt.Sprintf("%s %s = %s, want %s (%s)", r.Kind, r.Target, e.Format(r.Value), raw, e.Format(t))
		if spec.Within > 0 {
			res.Detail += fmt.Sprintf(" within %s", spec.Within.D())
		}
		if r.Error != "" {
			res.Detail += "; last read error: " + r.Error
		}
	}
	return res
}
