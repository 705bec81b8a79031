package docker

import (
	"context"
	"time"

	"github.com/meshproof/meshproof/harness/backend/probe"
	"github.com/meshproof/meshproof/harness/topology"
)

// defaultProbe is the shared readiness check of both backends.
func defaultProbe(ctx context.Context, p topology.Probe, addr string) error {
	return probe.Wait(ctx, probe.Spec{Type: p.Type, Addr: addr, Path: p.Path, DSN: p.DSN}, 250*time.Millisecond)
}
