package run

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/meshproof/meshproof/harness/environment"
	"github.com/meshproof/meshproof/harness/faults/toxi"
)

// AttachOptions of Attach.
type AttachOptions struct {
	// Compose is the compose file the environment was started from.
	Compose string
	// RunID names the running environment (`meshproof list --running`).
	RunID string
	// Backend restricts the search to one backend; "" or "auto" tries
	// every backend that can attach.
	Backend string
	// LogDir receives <service>.log for the attachment (default
	// artifacts/attach/RUN_ID/logs).
	LogDir string
	// Out receives progress lines (may be nil).
	Out io.Writer
}

// Attach reaches an environment an earlier process left running (`up
// --detach`, `run --keep`), as `run --attach` does, but hands it to the
// caller: package meshtest shares one such environment across tests. The
// returned environment's Close releases only what attaching started (log
// followers) and leaves every service running.
func Attach(ctx context.Context, o AttachOptions) (*UpEnvironment, error) {
	out := syncWriter(o.Out)
	topo, err := LoadTopology(ctx, o.Compose)
	if err != nil {
		return nil, &InputError{Err: err}
	}
	if o.LogDir == "" {
		o.LogDir = filepath.Join("artifacts", "attach", o.RunID, "logs")
	}
	if o.LogDir, err = filepath.Abs(o.LogDir); err != nil {
		return nil, inputErr("logs dir: %w", err)
	}
	if err := os.MkdirAll(o.LogDir, 0o755); err != nil {
		return nil, inputErr("logs dir: %w", err)
	}
	var tried []string
	for _, b := range allBackends(ctx) {
		if o.Backend != "" && o.Backend != "auto" && o.Backend != b.Name() {
			continue
		}
		a, ok := b.(environment.Attacher)
		if !ok {
			continue
		}
		env, err := a.Attach(ctx, topo, o.RunID, environment.AttachOptions{LogDir: o.LogDir})
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s: %v", b.Name(), err))
			continue
		}
		fmt.Fprintf(out, "attached to run %s on the %s backend (logs in %s)\n", o.RunID, b.Name(), o.LogDir)
		p := &Prepared{Topology: topo, Services: serviceNames(env)}
		up := &UpEnvironment{Environment: env, RunID: o.RunID, Endpoints: endpoints(p, env), Topology: topo}
		if api, ok := env.(environment.ToxiproxyAPI); ok && api.ToxiproxyAPI() != "" {
			up.Links = toxi.NewClient(api.ToxiproxyAPI())
		}
		return up, nil
	}
	return nil, envErr("attach to %s: no backend has it running (%v); `meshproof list --running` shows what runs", o.RunID, tried)
}
