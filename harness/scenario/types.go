// Package scenario holds the scenario file format. The Go types below are the
// schema: the decoder is strict, scenarios/schema.json is generated from them,
// and every error names file:line:column and the field path.
package scenario

import "time"

// Scenario is one scenario file.
type Scenario struct {
	Name        string      `yaml:"name" json:"name" jsonschema:"required"`
	Description string      `yaml:"description,omitempty" json:"description,omitempty"`
	Environment Environment `yaml:"environment" json:"environment" jsonschema:"required"`
	Load        *LoadSpec   `yaml:"load,omitempty" json:"load,omitempty"`
	Faults      []Fault     `yaml:"faults,omitempty" json:"faults,omitempty"`
	Assert      Assertions  `yaml:"assert,omitempty" json:"assert,omitzero"`
	// Compare holds the thresholds `meshproof compare BASE NEW` applies
	// when NEW is a run of this scenario, e.g. "p(99) regression <= 10%"
	// or "service-a p(50) regression <= 5ms". They live beside the
	// assertions because what counts as a regression is a property of the
	// load the scenario drives, not of the CI job that compares it.
	Compare []string `yaml:"compare,omitempty" json:"compare,omitempty"`

	// File is the path the scenario was read from (set by the loader).
	File string `yaml:"-" json:"-"`

	// pos records where each field path's value starts (set by the loader),
	// so later validation can point at a line.
	pos map[string]position
}

// Environment picks the compose topology and the part of it to run.
type Environment struct {
	// Compose is the compose file, relative to the scenario file's directory
	// or, failing that, to one of its parents.
	Compose string `yaml:"compose" json:"compose" jsonschema:"required"`
	// Services to start (plus what they depend on); empty means all.
	Services []string `yaml:"services,omitempty" json:"services,omitempty"`
	// Env overrides environment variables per service.
	Env map[string]map[string]string `yaml:"env,omitempty" json:"env,omitempty"`
}

// LoadSpec is the traffic the harness drives (the "load:" section). It is
// not named Load because scenario.Load is the file loader.
type LoadSpec struct {
	// Target is an http(s):// URL or grpc://host:port naming a compose
	// service and its container port, e.g. http://gateway:8080/api/greeting.
	Target  string            `yaml:"target" json:"target" jsonschema:"required"`
	Method  string            `yaml:"method,omitempty" json:"method,omitempty"`
	Headers map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	Body    string            `yaml:"body,omitempty" json:"body,omitempty"`
	// GRPC describes the call for grpc:// targets.
	GRPC *GRPCCall `yaml:"grpc,omitempty" json:"grpc,omitempty"`

	// Model is closed (N users in a loop) or open (constant arrival rate).
	Model string `yaml:"model" json:"model" jsonschema:"enum=closed,enum=open"`
	// Users for the closed model.
	Users int `yaml:"users,omitempty" json:"users,omitempty"`
	// Rate in requests per second for the open model.
	Rate float64 `yaml:"rate,omitempty" json:"rate,omitempty"`
	// MaxInflight caps concurrent requests in the open model; sends beyond it
	// are counted as dropped.
	MaxInflight int `yaml:"max_inflight,omitempty" json:"max_inflight,omitempty"`
	// Duration of the measured load (after warm-up), or Requests in total.
	Duration Duration `yaml:"duration,omitempty" json:"duration,omitempty"`
	Requests int      `yaml:"requests,omitempty" json:"requests,omitempty"`
	// Warmup runs before the measured window; its requests count in load.ok.
	Warmup Duration `yaml:"warmup,omitempty" json:"warmup,omitempty"`
	// ThinkTime is each closed-model user's pause between requests.
	ThinkTime Duration `yaml:"think_time,omitempty" json:"think_time,omitempty"`
	// Stages ramp users (closed) or rate (open) instead of a flat Duration.
	Stages []Stage `yaml:"stages,omitempty" json:"stages,omitempty"`
	// Timeout per request (default 10s).
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// GRPCCall is a unary call resolved by server reflection or from a .proto file.
type GRPCCall struct {
	// Method is "package.Service/Method".
	Method string `yaml:"method" json:"method" jsonschema:"required"`
	// Proto is a .proto file (relative to the scenario); empty means reflection.
	Proto string `yaml:"proto,omitempty" json:"proto,omitempty"`
	// ImportPaths for Proto.
	ImportPaths []string `yaml:"import_paths,omitempty" json:"import_paths,omitempty"`
	// Data is the request message as protojson.
	Data string `yaml:"data,omitempty" json:"data,omitempty"`
	// Metadata sent with every call.
	Metadata map[string]string `yaml:"metadata,omitempty" json:"metadata,omitempty"`
}

// Stage is one step of a ramp: move linearly to Target over Duration.
type Stage struct {
	Duration Duration `yaml:"duration" json:"duration" jsonschema:"required"`
	Target   float64  `yaml:"target" json:"target"`
}

// Fault is one deliberate break of the environment during the load.
type Fault struct {
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
	// At is the offset from load start; After is a request count instead.
	At    Duration `yaml:"at,omitempty" json:"at,omitempty"`
	After int      `yaml:"after,omitempty" json:"after,omitempty"`
	// Action: kill, stop, start, restart, pause, unpause, latency, drop.
	Action  string `yaml:"action" json:"action" jsonschema:"required"`
	Service string `yaml:"service" json:"service" jsonschema:"required"`
	// For lasts before the fault is undone (restart after kill/stop, unpause).
	For Duration `yaml:"for,omitempty" json:"for,omitempty"`
	// Latency added to the link, for action latency.
	Latency Duration `yaml:"latency,omitempty" json:"latency,omitempty"`
}

// Assertions are judged after the load; each is named and reported alone.
type Assertions struct {
	// Load thresholds, k6 style: "p(99) < 250ms", "error_rate == 0",
	// "status(503) > 0"; and rules on the bodies sampled per status:
	// "body(503) contains 'service-e'" (or !contains).
	Load    []string          `yaml:"load,omitempty" json:"load,omitempty"`
	Traces  []TraceAssertion  `yaml:"traces,omitempty" json:"traces,omitempty"`
	Metrics []MetricAssertion `yaml:"metrics,omitempty" json:"metrics,omitempty"`
	Logs    []LogAssertion    `yaml:"logs,omitempty" json:"logs,omitempty"`
	Data    []DataAssertion   `yaml:"data,omitempty" json:"data,omitempty"`
}

// TraceAssertion checks the shape of the traces the load started.
type TraceAssertion struct {
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
	// Of is the trace source; "load" = the trace ids the load injected.
	Of string `yaml:"of,omitempty" json:"of,omitempty"`
	// Require is the share of traces that must match, e.g. "99.9%".
	Require string `yaml:"require,omitempty" json:"require,omitempty"`
	// Match is exact (default) or subset.
	Match string `yaml:"match,omitempty" json:"match,omitempty" jsonschema:"enum=exact,enum=subset"`
	// Shape is an indented service tree; "~>" marks an asynchronous edge,
	// "..." allows extra children, "svc: operation" pins the operation.
	Shape string `yaml:"shape,omitempty" json:"shape,omitempty"`
	// Durations are per-service span duration thresholds:
	// "service-a p(99) < 50ms".
	Durations []string `yaml:"durations,omitempty" json:"durations,omitempty"`
	// Attributes checks span attributes.
	Attributes []AttributeCheck `yaml:"attributes,omitempty" json:"attributes,omitempty"`
	// Requests picks which of the load's requests are sampled: ok (the
	// default: only successful ones, whose traces should be whole) or all
	// (failures too, to judge what a failing request leaves behind).
	Requests string `yaml:"requests,omitempty" json:"requests,omitempty" jsonschema:"enum=ok,enum=all"`
	// Sample caps how many traces are fetched (default 200).
	Sample int `yaml:"sample,omitempty" json:"sample,omitempty"`
	// Within bounds the wait for traces to complete (default 30s).
	Within Duration `yaml:"within,omitempty" json:"within,omitempty"`
}

// AttributeCheck requires a span attribute on a service's spans.
type AttributeCheck struct {
	Service string `yaml:"service" json:"service" jsonschema:"required"`
	// Span narrows to spans of this operation name.
	Span   string  `yaml:"span,omitempty" json:"span,omitempty"`
	Key    string  `yaml:"key" json:"key" jsonschema:"required"`
	Equals *string `yaml:"equals,omitempty" json:"equals,omitempty"`
	Exists *bool   `yaml:"exists,omitempty" json:"exists,omitempty"`
}

// MetricAssertion compares a Prometheus query with an expectation.
type MetricAssertion struct {
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
	// Delta is evaluated at load start and after the drain; end − start.
	Delta string `yaml:"delta,omitempty" json:"delta,omitempty"`
	// PromQL is evaluated after the drain; $__range is the load window.
	PromQL string `yaml:"promql,omitempty" json:"promql,omitempty"`
	// Expect is "OP VALUE", VALUE a number or run variable: "== load.ok".
	Expect string `yaml:"expect" json:"expect" jsonschema:"required"`
}

// LogAssertion is a rule over the lines services wrote during the run.
type LogAssertion struct {
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
	// Service is a name, a glob, or "*" (every service under test).
	Service string `yaml:"service" json:"service" jsonschema:"required"`
	// Contains / NotContains are regular expressions over the raw line.
	Contains    string `yaml:"contains,omitempty" json:"contains,omitempty"`
	NotContains string `yaml:"not_contains,omitempty" json:"not_contains,omitempty"`
	// None: no JSON line has all these field values.
	None map[string]string `yaml:"none,omitempty" json:"none,omitempty"`
	// Every: every JSON line (optionally those matching Where) satisfies it.
	Every *EveryRule `yaml:"every,omitempty" json:"every,omitempty"`
	// Count compares the number of matching lines: "> 0", "== load.ok".
	Count string `yaml:"count,omitempty" json:"count,omitempty"`
	// AllowEmpty lets the rule pass when the services wrote no line at all
	// during the run; otherwise silence fails, since it proves nothing.
	AllowEmpty bool `yaml:"allow_empty,omitempty" json:"allow_empty,omitempty"`
}

// EveryRule is a requirement on every selected JSON log line.
type EveryRule struct {
	// Has names a field that must be present and non-empty.
	Has string `yaml:"has,omitempty" json:"has,omitempty"`
	// Where selects lines by field values first, e.g. {level: error}.
	Where map[string]string `yaml:"where,omitempty" json:"where,omitempty"`
}

// DataAssertion reads a store after the load, polling until Within.
type DataAssertion struct {
	Name     string      `yaml:"name,omitempty" json:"name,omitempty"`
	Mongo    *MongoQuery `yaml:"mongo,omitempty" json:"mongo,omitempty"`
	RabbitMQ *QueueQuery `yaml:"rabbitmq,omitempty" json:"rabbitmq,omitempty"`
	Postgres string      `yaml:"postgres,omitempty" json:"postgres,omitempty"`
	S3       *S3Query    `yaml:"s3,omitempty" json:"s3,omitempty"`
	// Count (mongo, s3), Depth (rabbitmq) or Expect (postgres): "OP VALUE".
	Count  string   `yaml:"count,omitempty" json:"count,omitempty"`
	Depth  string   `yaml:"depth,omitempty" json:"depth,omitempty"`
	Expect string   `yaml:"expect,omitempty" json:"expect,omitempty"`
	Within Duration `yaml:"within,omitempty" json:"within,omitempty"`
	// Service picks the store when the topology has several of its kind.
	Service string `yaml:"service,omitempty" json:"service,omitempty"`
}

// MongoQuery counts documents.
type MongoQuery struct {
	DB         string            `yaml:"db" json:"db" jsonschema:"required"`
	Collection string            `yaml:"collection" json:"collection" jsonschema:"required"`
	Filter     map[string]string `yaml:"filter,omitempty" json:"filter,omitempty"`
}

// QueueQuery reads a RabbitMQ queue's depth.
type QueueQuery struct {
	Queue string `yaml:"queue" json:"queue" jsonschema:"required"`
}

// S3Query counts objects under a prefix.
type S3Query struct {
	Bucket string `yaml:"bucket" json:"bucket" jsonschema:"required"`
	Prefix string `yaml:"prefix,omitempty" json:"prefix,omitempty"`
}

// Duration is a time.Duration written as "30s", "250ms".
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
