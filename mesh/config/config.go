// Package config turns the environment of one greeting process into a
// validated Config. Every mistake is reported as an *EnvError naming the
// variable, so `greeting serve` can exit 2 with a message a person can act on
// instead of failing later on the first request (the seed's behaviour).
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Config is everything one role needs to run.
type Config struct {
	Role Role
	// ServiceName is the seed's SERVICE_NAME: the `service` field of greetings.
	ServiceName string
	// Greeting is the message this role adds (GREETING).
	Greeting string
	// Listen is the gRPC (or, for the gateway, HTTP) listen address, host:port.
	Listen string
	// MetricsListen is where /metrics is served; empty disables it.
	MetricsListen string
	// Peers are the downstream services, in call order.
	Peers []Peer
	// CallTimeout bounds every downstream call and sink write.
	CallTimeout time.Duration
	// Sequential calls peers one after another (the seed's order) instead of
	// concurrently; the response order is the same either way.
	Sequential bool
	LogLevel   slog.Level

	Mongo    *Mongo
	AMQP     *AMQP
	Postgres *Postgres
	S3       *S3

	// OTLP says whether spans are exported (an OTLP endpoint is configured and
	// OTEL_TRACES_EXPORTER is not "none"). The exporter reads OTEL_* itself.
	OTLP bool
	// OTLPProtocol is grpc or http/protobuf.
	OTLPProtocol string
}

// Peer is one downstream service.
type Peer struct {
	Role Role
	Addr string // host:port
}

// Mongo is a MongoDB sink: database = role name, as in the seed.
type Mongo struct {
	URI        string
	Database   string
	Collection string
}

// AMQP is the RabbitMQ queue a role publishes to (Consume false) or consumes.
type AMQP struct {
	URL     string
	Queue   string
	Consume bool
}

// Postgres is the greeting_ledger sink.
type Postgres struct {
	DSN string // postgres:// URL or key=value DSN
}

// S3 is the raw-greeting archive.
type S3 struct {
	Bucket    string
	Endpoint  string // empty: the SDK's default resolution
	Region    string
	AccessKey string
	SecretKey string
}

// EnvError is a bad value of one environment variable (or flag).
type EnvError struct {
	Var   string
	Value string
	Err   error
}

func (e *EnvError) Error() string {
	return fmt.Sprintf("%s=%q: %v", e.Var, e.Value, e.Err)
}

func (e *EnvError) Unwrap() error { return e.Err }

// Defaults for seed compatibility: in compose, every value below is the one
// the service would use anyway.
const (
	DefaultServicePort = ":50051"
	DefaultGatewayPort = ":8080"
	DefaultMetricsPort = ":9464"
	DefaultQueue       = "service-d.greeting"
	DefaultBucket      = "greetings-raw"
	DefaultMongo       = "mongodb://mongodb:27017"
	DefaultRabbitMQ    = "amqp://guest:guest@rabbitmq:5672/"
	DefaultPostgres    = "postgres://meshproof:meshproof@postgres:5432/meshproof?sslmode=disable"
	DefaultCallTimeout = 5 * time.Second
)

// LookupFunc reads one variable; os.LookupEnv fits.
type LookupFunc func(string) (string, bool)

// Load builds the Config of role from the environment.
func Load(role Role, lookup LookupFunc) (*Config, error) {
	spec, ok := SpecOf(role)
	if !ok {
		_, err := ParseRole(string(role))
		return nil, err
	}
	env := reader{lookup: lookup}
	c := &Config{
		Role:        role,
		ServiceName: env.str("SERVICE_NAME", role.DisplayName()),
		Greeting:    env.str("GREETING", "Hello, from "+role.DisplayName()+"!"),
	}
	defPort := DefaultServicePort
	if role == Gateway {
		defPort = DefaultGatewayPort
	}
	c.Listen = env.addr("PORT", defPort, false)
	c.MetricsListen = env.addr("METRICS_PORT", DefaultMetricsPort, true)
	c.CallTimeout = env.duration("CALL_TIMEOUT", DefaultCallTimeout)
	c.Sequential = env.boolean("SEQUENTIAL_CALLS", false)
	c.LogLevel = env.level("LOG_LEVEL", slog.LevelInfo)
	for _, p := range spec.Peers {
		c.Peers = append(c.Peers, Peer{Role: p, Addr: env.hostPort(p.URLVar(), string(p)+":50051")})
	}
	for _, s := range spec.Sinks {
		switch s {
		case SinkMongo:
			c.Mongo = &Mongo{
				URI:        env.url("MONGO_CONN", DefaultMongo, "mongodb", "mongodb+srv"),
				Database:   string(role),
				Collection: spec.Collection,
			}
		case SinkAMQP:
			c.AMQP = &AMQP{URL: env.url("RABBITMQ_CONN", DefaultRabbitMQ, "amqp", "amqps"), Queue: env.str("QUEUE_NAME", DefaultQueue)}
		case SinkPostgres:
			c.Postgres = &Postgres{DSN: env.postgres("POSTGRES_CONN", DefaultPostgres)}
		case SinkS3:
			c.S3 = &S3{
				Bucket:    env.str("S3_BUCKET", DefaultBucket),
				Endpoint:  env.url("AWS_ENDPOINT_URL", "", "http", "https"),
				Region:    env.str("AWS_REGION", "us-east-1"),
				AccessKey: env.str("AWS_ACCESS_KEY_ID", ""),
				SecretKey: env.str("AWS_SECRET_ACCESS_KEY", ""),
			}
		}
	}
	if spec.Consumes {
		c.AMQP = &AMQP{URL: env.url("RABBITMQ_CONN", DefaultRabbitMQ, "amqp", "amqps"), Queue: env.str("QUEUE_NAME", DefaultQueue), Consume: true}
	}
	c.OTLP, c.OTLPProtocol = env.otlp()
	if err := errors.Join(env.errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// WithoutSinks drops every store and broker: the role answers with its
// greeting only. Used to run the mesh's call graph on its own (tests).
func (c *Config) WithoutSinks() *Config {
	cp := *c
	cp.Mongo, cp.AMQP, cp.Postgres, cp.S3 = nil, nil, nil, nil
	cp.Peers = append([]Peer(nil), c.Peers...)
	return &cp
}

// reader collects every bad variable, so one run reports all of them.
type reader struct {
	lookup LookupFunc
	errs   []error
}

func (r *reader) get(name, def string) string {
	if v, ok := r.lookup(name); ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v)
	}
	return def
}

func (r *reader) fail(name, value string, err error) {
	r.errs = append(r.errs, &EnvError{Var: name, Value: value, Err: err})
}

func (r *reader) str(name, def string) string { return r.get(name, def) }

// addr accepts ":N", "N" and "host:N"; optional allows "off"/"0"-less empty
// (METRICS_PORT=off disables metrics).
func (r *reader) addr(name, def string, optional bool) string {
	v := r.get(name, def)
	if optional && (v == "off" || v == "none") {
		return ""
	}
	a, err := NormalizeListen(v)
	if err != nil {
		r.fail(name, v, err)
	}
	return a
}

// NormalizeListen turns ":N", "N" or "host:N" into a host:port listen address.
func NormalizeListen(v string) (string, error) {
	if !strings.Contains(v, ":") {
		v = ":" + v
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return "", fmt.Errorf("want :PORT, PORT or HOST:PORT: %w", err)
	}
	if err := checkPort(port); err != nil {
		return "", err
	}
	return net.JoinHostPort(host, port), nil
}

func checkPort(port string) error {
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number in 0..65535", port)
	}
	return nil
}

func (r *reader) hostPort(name, def string) string {
	v := r.get(name, def)
	host, port, err := net.SplitHostPort(v)
	switch {
	case err != nil:
		r.fail(name, v, fmt.Errorf("want HOST:PORT: %w", err))
	case host == "":
		r.fail(name, v, errors.New("want HOST:PORT: missing host"))
	default:
		if err := checkPort(port); err != nil {
			r.fail(name, v, err)
		}
	}
	return v
}

func (r *reader) url(name, def string, schemes ...string) string {
	v := r.get(name, def)
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil {
		r.fail(name, v, err)
		return v
	}
	for _, s := range schemes {
		if u.Scheme == s && u.Host != "" {
			return v
		}
	}
	r.fail(name, v, fmt.Errorf("want a %s:// URL with a host", strings.Join(schemes, ":// or ")))
	return v
}

func (r *reader) postgres(name, def string) string {
	v := r.get(name, def)
	if _, err := pgconn.ParseConfig(v); err != nil {
		r.fail(name, "(redacted)", fmt.Errorf("want a postgres:// URL or key=value DSN: %w", errors.Unwrap(err)))
	}
	return v
}

func (r *reader) duration(name string, def time.Duration) time.Duration {
	v := r.get(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err == nil && d <= 0 {
		err = errors.New("must be positive")
	}
	if err != nil {
		r.fail(name, v, err)
		return def
	}
	return d
}

func (r *reader) boolean(name string, def bool) bool {
	v := r.get(name, "")
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.fail(name, v, errors.New("want true or false"))
		return def
	}
	return b
}

// level accepts slog's names and the seed's logrus ones.
func (r *reader) level(name string, def slog.Level) slog.Level {
	v := strings.ToLower(r.get(name, ""))
	switch v {
	case "":
		return def
	case "trace", "debug":
		return slog.LevelDebug
	case "info":
		return slog.LevelInfo
	case "warn", "warning":
		return slog.LevelWarn
	case "error", "fatal", "panic":
		return slog.LevelError
	}
	r.fail(name, v, errors.New("want debug, info, warn or error"))
	return def
}

// otlp decides whether to export spans. Unset endpoint means no exporter:
// a developer running one role by hand should not see export errors.
func (r *reader) otlp() (bool, string) {
	if strings.EqualFold(r.get("OTEL_TRACES_EXPORTER", "otlp"), "none") {
		return false, ""
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"} {
		if v := r.get(name, ""); v != "" {
			if u, err := url.Parse(v); err != nil || u.Scheme == "" || u.Host == "" {
				r.fail(name, v, errors.New("want a URL such as http://jaeger:4317"))
				return false, ""
			}
			break
		}
	}
	if r.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", r.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")) == "" {
		return false, ""
	}
	name := "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	proto := r.get(name, "")
	if proto == "" {
		name = "OTEL_EXPORTER_OTLP_PROTOCOL"
		proto = r.get(name, "http/protobuf")
	}
	switch proto {
	case "grpc", "http/protobuf":
		return true, proto
	}
	r.fail(name, proto, errors.New("want grpc or http/protobuf"))
	return false, ""
}
