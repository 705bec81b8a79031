// Package topology reads the environment from a docker-compose.yml: the
// services, their order, and the x-meshproof settings compose cannot express.
// It is shared by every backend, so a service means the same thing whether it
// runs as a container or as a local process.
package topology

import "time"

// Topology is one compose project, resolved (interpolated, anchors merged).
type Topology struct {
	// Project is the compose project name.
	Project string
	// Dir is the directory of the compose file; relative paths resolve from it.
	Dir string
	// File is the compose file path as given.
	File string
	// Services by compose name.
	Services map[string]*Service
}

// Kind says what a service speaks. It picks the local recipe and tells the
// assertions where to find a store; it is always explicit in x-meshproof.
type Kind string

// Kinds the harness knows how to run locally and to query.
const (
	KindProcess    Kind = "process"
	KindRabbitMQ   Kind = "rabbitmq"
	KindPostgres   Kind = "postgres"
	KindMongoDB    Kind = "mongodb"
	KindLocalStack Kind = "localstack"
	KindJaeger     Kind = "jaeger"
	KindPrometheus Kind = "prometheus"
)

// Service is one compose service with its harness settings.
type Service struct {
	Name  string
	Image string
	// Build is the compose build section, when the image can be built here.
	Build *Build
	// Command is the compose command (the arguments after the entrypoint).
	Command     []string
	Entrypoint  []string
	Environment map[string]string
	// Ports are the container ports the service declares (ports and expose).
	Ports []int
	// DependsOn lists the services this one needs started first.
	DependsOn []string
	// Volumes are bind mounts: host path (absolute) -> container path.
	Volumes []Mount
	// Tmpfs lists container paths mounted as tmpfs (compose `tmpfs:` and
	// volumes of type tmpfs): a store's data that lives as long as its run
	// stays off the image's copy-on-write layer.
	Tmpfs       []string
	Healthcheck []string
	Meshproof   Ext
}

// Build is where the service's image is built from.
type Build struct {
	Context    string // absolute
	Dockerfile string // relative to Context
	Target     string
	Args       map[string]string
}

// Mount is a bind mount of a host path into the container.
type Mount struct {
	Source   string // absolute host path
	Target   string
	ReadOnly bool
}

// Ext is the x-meshproof extension of a service.
type Ext struct {
	Kind Kind `yaml:"kind" json:"kind"`
	// Local is the local-process recipe for KindProcess services.
	Local *LocalRecipe `yaml:"local,omitempty" json:"local,omitempty"`
	// Listen maps an env var to the container port it sets, so the local
	// backend can move the listener to a free loopback port.
	Listen map[string]int `yaml:"listen,omitempty" json:"listen,omitempty"`
	Probe  Probe          `yaml:"probe" json:"probe"`
	// Metrics is the endpoint Prometheus scrapes, if any.
	Metrics *MetricsEndpoint `yaml:"metrics,omitempty" json:"metrics,omitempty"`
	// UnderTest marks the services whose logs `service: "*"` rules cover.
	UnderTest bool `yaml:"under_test,omitempty" json:"under_test,omitempty"`
	// ReadyTimeout bounds the wait for the probe (default 60s).
	ReadyTimeout time.Duration `yaml:"ready_timeout,omitempty" json:"ready_timeout,omitempty"`
	// Offline says how to build this service's image on a Docker host that
	// cannot pull its base images (see OfflineBuild).
	Offline *OfflineBuild `yaml:"offline,omitempty" json:"offline,omitempty"`
	// Endpoint is how a client reaches the service, written against its
	// compose name and container port, credentials included
	// ("amqp://guest:guest@rabbitmq:5672/", "http://jaeger:16686"). The
	// environment resolves it to the run's real address; assertion code
	// never spells a port or a password.
	Endpoint string `yaml:"endpoint,omitempty" json:"endpoint,omitempty"`
	// Management is the service's HTTP management API, written like
	// Endpoint ("http://guest:guest@rabbitmq:15672"), for what its client
	// protocol cannot tell: RabbitMQ's unacknowledged message count.
	Management string `yaml:"management,omitempty" json:"management,omitempty"`
	// Fixtures is a directory (relative to the compose file) of seed files:
	// *.sql for postgres, *.json bucket lists for localstack.
	Fixtures string `yaml:"fixtures,omitempty" json:"fixtures,omitempty"`
}

// OfflineBuild builds a service's image from its compose build section
// without pulling: Prebuild runs on the host first (e.g. compiling a static
// binary), Files are copied into an otherwise empty build context, and the
// Dockerfile is built at Target — a stage that needs no base image.
type OfflineBuild struct {
	// ImageVar is the variable the compose file interpolates for the image.
	ImageVar string `yaml:"image_var" json:"image_var"`
	// Prebuild is a command run in the compose file's directory, with Env.
	Prebuild []string          `yaml:"prebuild,omitempty" json:"prebuild,omitempty"`
	Env      map[string]string `yaml:"env,omitempty" json:"env,omitempty"`
	// Files (relative to the compose file) make up the build context.
	Files  []string          `yaml:"files,omitempty" json:"files,omitempty"`
	Target string            `yaml:"target,omitempty" json:"target,omitempty"`
	Args   map[string]string `yaml:"args,omitempty" json:"args,omitempty"`
}

// LocalRecipe runs a KindProcess service as a child process: Program with the
// compose command as its arguments.
type LocalRecipe struct {
	// Program is the executable, relative to the compose file's directory.
	Program string `yaml:"program" json:"program"`
}

// ProbeType names a readiness check.
type ProbeType string

// Readiness checks; each is a protocol-level call, never a log-line match.
const (
	ProbeGRPCHealth ProbeType = "grpc-health"
	ProbeHTTP       ProbeType = "http"
	ProbeTCP        ProbeType = "tcp"
	ProbeSQL        ProbeType = "sql"
	ProbeMongo      ProbeType = "mongo"
	ProbeAMQP       ProbeType = "amqp"
)

// Probe is a readiness check against one of the service's container ports.
type Probe struct {
	Type ProbeType `yaml:"type" json:"type"`
	Port int       `yaml:"port" json:"port"`
	// Path for http probes (2xx is ready).
	Path string `yaml:"path,omitempty" json:"path,omitempty"`
	// DSN for sql probes; host:port in it is rewritten like env values.
	DSN string `yaml:"dsn,omitempty" json:"dsn,omitempty"`
}

// MetricsEndpoint is what Prometheus scrapes on a service.
type MetricsEndpoint struct {
	Port int    `yaml:"port" json:"port"`
	Path string `yaml:"path,omitempty" json:"path,omitempty"`
}
