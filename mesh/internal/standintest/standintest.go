// Package standintest runs the wire-protocol stand-ins (FerretDB for
// MongoDB, gofakes3 for LocalStack's S3) as child processes for sink tests,
// so the sinks are tested against real servers rather than client mocks.
package standintest

import (
	"context"
	"net"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/internal/toolbin"
)

// buildTimeout covers a first, uncached build of a stand-in on 2 cores.
const buildTimeout = 10 * time.Minute

// Start builds (once, cached) and runs the named stand-in on a free
// loopback port with extra args; it returns host:port. The process is
// ended by pid when the test ends. Readiness is the caller's to check.
func Start(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	bin, err := toolbin.Path(ctx, name)
	require.NoError(t, err, "build %s", name)

	addr := freeAddr(t)
	cmd := exec.Command(bin, append([]string{"-listen", addr}, args...)...)
	cmd.Stdout, cmd.Stderr = testWriter{t}, testWriter{t}
	require.NoError(t, cmd.Start(), "start %s", name)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return addr
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// testWriter sends a child's output to the test log (shown on failure / -v).
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", p)
	return len(p), nil
}
