package meshtest

import (
	"context"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/load"
)

// Load drives a load at the environment and returns what it measured,
// trace ids included (Result.Traces), for RequireTraceShape and friends.
// cfg.Target may name compose services ("http://gateway:8080/api/greeting",
// "grpc://service-a:50051"): it is resolved to this run's address. The
// target is checked to answer first, so an environment problem fails as
// one instead of as a load full of errors; failed requests do not fail t —
// they are in the result, for the test to judge.
func (e *Env) Load(t T, cfg load.Config) *load.Result {
	t.Helper()
	cfg.Target = e.Resolve(cfg.Target)
	ctx, cancel := context.WithTimeout(contextOf(t), loadDeadline(cfg))
	defer cancel()
	require.NoError(t, load.Preflight(ctx, cfg), "load target %s does not answer", cfg.Target)
	res, err := load.Run(ctx, cfg)
	require.NoError(t, err, "load %s", cfg.Target)
	require.NoError(t, ctx.Err(), "load %s did not finish in time", cfg.Target)
	return res
}

// loadDeadline bounds a load generously: its own length when it has one,
// plus time for the last requests; a request-count load gets a fixed bound.
func loadDeadline(cfg load.Config) time.Duration {
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = load.DefaultTimeout
	}
	d := cfg.Warmup + cfg.Duration
	for _, s := range cfg.Stages {
		d += s.Duration
	}
	if cfg.Requests > 0 {
		d = max(d, 5*time.Minute)
	}
	return d + 2*timeout + 30*time.Second
}
