package config

import (
	"fmt"
	"slices"
	"strings"
)

// Role names one process of the greeting mesh. Every role runs the same
// binary; what differs is the data in Spec, so the topology can be read (and
// changed) in one table instead of being spread over nine main packages as in
// the seed.
type Role string

// Gateway is the HTTP edge: REST on the outside, gRPC to service-a inside.
const Gateway Role = "gateway"

// Sink names a store a role writes each greeting to.
type Sink string

// Sinks a role can have.
const (
	SinkMongo    Sink = "mongodb"
	SinkAMQP     Sink = "rabbitmq"
	SinkPostgres Sink = "postgres"
	SinkS3       Sink = "s3"
)

// Spec is the fixed shape of a role: whom it calls and where it writes.
// Addresses and credentials come from the environment (see Load).
type Spec struct {
	// Peers are called for every request, in this order; their greetings are
	// appended to the response in this order too.
	Peers []Role
	// Sinks receive the role's own greeting (or, for a consumer, the consumed one).
	Sinks []Sink
	// Collection is the MongoDB collection written to (database = role name).
	Collection string
	// Consumes makes the role a RabbitMQ consumer of the greeting queue.
	Consumes bool
}

var specs = map[Role]Spec{
	Gateway:     {Peers: []Role{"service-a"}},
	"service-a": {Peers: []Role{"service-b", "service-c"}},
	"service-b": {Peers: []Role{"service-d", "service-e"}},
	"service-c": {Sinks: []Sink{SinkMongo}, Collection: "greetings"},
	"service-d": {Sinks: []Sink{SinkAMQP}},
	"service-e": {Peers: []Role{"service-g", "service-h"}},
	"service-f": {Sinks: []Sink{SinkMongo, SinkPostgres}, Collection: "messages", Consumes: true},
	"service-g": {Sinks: []Sink{SinkMongo}, Collection: "greetings"},
	"service-h": {Sinks: []Sink{SinkMongo, SinkS3}, Collection: "greetings"},
}

// Roles lists every known role, sorted.
func Roles() []Role {
	out := make([]Role, 0, len(specs))
	for r := range specs {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

// SpecOf returns the spec of a role.
func SpecOf(r Role) (Spec, bool) {
	s, ok := specs[r]
	return s, ok
}

// ParseRole checks a role name given on the command line.
func ParseRole(s string) (Role, error) {
	r := Role(strings.TrimSpace(s))
	if _, ok := specs[r]; !ok {
		names := make([]string, 0, len(specs))
		for _, x := range Roles() {
			names = append(names, string(x))
		}
		return "", fmt.Errorf("--role %q: unknown role (want one of %s)", s, strings.Join(names, ", "))
	}
	return r, nil
}

// Letter is the role's letter ("b" for service-b), used in env var names and
// the seed's display names.
func (r Role) Letter() string {
	return strings.TrimPrefix(string(r), "service-")
}

// URLVar is the env var holding the address of this role (SERVICE_B_URL).
func (r Role) URLVar() string {
	return "SERVICE_" + strings.ToUpper(r.Letter()) + "_URL"
}

// DisplayName is the seed's SERVICE_NAME default ("Service B").
func (r Role) DisplayName() string {
	if r == Gateway {
		return "Gateway"
	}
	return "Service " + strings.ToUpper(r.Letter())
}
