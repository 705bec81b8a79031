package meshtest

import (
	"io"
	"maps"
)

// Option configures New and Start.
type Option func(*config)

type config struct {
	backend  string
	services []string
	env      map[string]map[string]string
	links    []string
	attach   string
	outDir   string
	out      io.Writer
}

// WithBackend picks where services run: "local" (child processes, no
// Docker needed), "docker", or "auto" (docker when a daemon answers), the
// default.
func WithBackend(name string) Option { return func(c *config) { c.backend = name } }

// WithServices starts only these services and what they depend on
// (depends_on), instead of the whole compose file: a test pays only for
// what it exercises. Repeated calls add up.
func WithServices(names ...string) Option {
	return func(c *config) { c.services = append(c.services, names...) }
}

// WithEnv sets one environment variable of one service, after the compose
// file's own, as a scenario's environment.env does: a test can run a
// service with LOG_LEVEL=debug or a shorter CALL_TIMEOUT.
func WithEnv(service, key, value string) Option {
	return func(c *config) {
		if c.env == nil {
			c.env = map[string]map[string]string{}
		}
		vars := maps.Clone(c.env[service])
		if vars == nil {
			vars = map[string]string{}
		}
		vars[key] = value
		c.env[service] = vars
	}
}

// WithLinks puts a proxy in front of each service port ("service-c:50051")
// when the environment starts, so Env.Latency, Env.Drop and Env.Heal can
// degrade that one link later; a proxy cannot be added to running
// services. Repeated calls add up.
func WithLinks(links ...string) Option {
	return func(c *config) { c.links = append(c.links, links...) }
}

// WithAttach reuses the environment `meshproof up --detach` (or `run
// --keep`) left running under runID instead of starting one: the fastest
// inner loop, since nothing starts. Close then leaves it running. Services,
// env and links cannot be changed on a running environment, so WithAttach
// refuses WithServices, WithEnv and WithLinks.
func WithAttach(runID string) Option { return func(c *config) { c.attach = runID } }

// WithOutDir is where service logs are written (under up/RUN_ID/logs or
// attach/RUN_ID/logs); the default is meshtest under the system temporary
// directory, so tests leave nothing in the source tree.
func WithOutDir(dir string) Option { return func(c *config) { c.outDir = dir } }

// WithOutput receives progress lines (each service as it becomes ready).
// New discards them by default; Start sends them to the test log.
func WithOutput(w io.Writer) Option { return func(c *config) { c.out = w } }
