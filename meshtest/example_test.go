package meshtest_test

import (
	"context"
	"fmt"
	"time"

	"github.com/meshproof/meshproof/harness/assert/data"
	"github.com/meshproof/meshproof/harness/load"
	"github.com/meshproof/meshproof/harness/scenario"
	"github.com/meshproof/meshproof/meshtest"
)

// The examples run against env, the environment TestMain starts once for
// the whole package (main_test.go). Where a test would pass its
// *testing.T, they pass exampleT{}.

// fullShape is the trace of one GET /api/greeting: every service, F behind
// RabbitMQ.
const fullShape = `
gateway
  service-a
    service-b
      service-d
        ~> service-f
      service-e
        service-g
        service-h
    service-c
`

// Load targets a compose name; the result counts requests and keeps each
// one's trace id.
func ExampleEnv_Load() {
	t := exampleT{}
	res := env.Load(t, load.Config{Target: "http://gateway:8080/api/greeting", Users: 1, Requests: 5})
	fmt.Println(res.OK, res.Errors, len(res.Traces))
	// Output: 5 0 5
}

// A request's trace, fetched from the environment's Jaeger, judged against
// the shape a scenario would write.
func ExampleRequireTraceShape() {
	t := exampleT{}
	res := env.Load(t, load.Config{Target: "http://gateway:8080/api/greeting", Users: 1, Requests: 1})
	meshtest.RequireTraceShape(t, env, res.Traces[0].TraceID, fullShape)
	fmt.Println("match")
	// Output: match
}

// The Check* forms return the verdict the scenario report would show.
func ExampleCheckTraces() {
	t := exampleT{}
	res := env.Load(t, load.Config{Target: "http://gateway:8080/api/greeting", Users: 1, Requests: 3})
	ids := make([]string, len(res.Traces))
	for i, tr := range res.Traces {
		ids[i] = tr.TraceID
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	verdicts, err := meshtest.CheckTraces(ctx, env, ids, scenario.TraceAssertion{Shape: fullShape, Require: "100%"})
	if err != nil {
		panic(err)
	}
	fmt.Println(verdicts[0].Status, verdicts[0].Measured)
	// Output: pass 3/3 traces match (100%)
}

// A PromQL query after a fresh scrape: one build-info series per greeting
// service started.
func ExampleCheckMetric() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	v, err := meshtest.CheckMetric(ctx, env, "count(greeting_build_info)", "== 9")
	if err != nil {
		panic(err)
	}
	fmt.Println(v.Status, v.Measured)
	// Output: pass 9
}

// A store, read until its count settles; the expectation names the load's
// own count through its variables.
func ExampleRequireData() {
	t := exampleT{}
	res := env.Load(t, load.Config{Target: "http://gateway:8080/api/greeting", Users: 1, Requests: 2})
	meshtest.RequireData(t, env, scenario.DataAssertion{
		Mongo: &scenario.MongoQuery{DB: "service-c", Collection: "greetings"},
		Count: ">= load.ok",
	}, res.Vars())
	fmt.Println("stored, settled after", data.Quiet, "unchanged")
	// Output: stored, settled after 2s unchanged
}

// A log rule over everything the services logged so far.
func ExampleRequireLogs() {
	t := exampleT{}
	env.Load(t, load.Config{Target: "http://gateway:8080/api/greeting", Users: 1, Requests: 1})
	meshtest.RequireLogs(t, env, scenario.LogAssertion{
		Service: "service-a",
		Every:   &scenario.EveryRule{Where: map[string]string{"msg": "greeting handled"}, Has: "trace_id"},
	})
	fmt.Println("every greeting service-a handled names its trace")
	// Output: every greeting service-a handled names its trace
}

// Latency on a link WithLinks put a proxy in front of: only the callers of
// service-c wait; Heal restores the link.
func ExampleEnv_Latency() {
	t := exampleT{}
	env.Latency(t, "service-c:50051", 300*time.Millisecond)
	slow := env.Load(t, load.Config{Target: "http://gateway:8080/api/greeting", Users: 1, Requests: 1})
	env.Heal(t, "service-c:50051")
	fmt.Println(slow.OK, slow.Latency.MaxMs >= 300)
	// Output: 1 true
}

// Attaching reuses a running environment — here the shared one, as a
// developer would reuse `meshproof up --detach`'s: nothing starts, and
// Close leaves it running.
func ExampleWithAttach() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	again, err := meshtest.New(ctx, compose, meshtest.WithBackend("local"), meshtest.WithAttach(env.RunID()))
	if err != nil {
		panic(err)
	}
	defer again.Close()
	fmt.Println(again.RunID() == env.RunID(), len(again.Services()) == len(env.Services()))
	// Output: true true
}
