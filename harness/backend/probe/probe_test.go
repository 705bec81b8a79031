package probe

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/meshproof/meshproof/harness/topology"
)

func TestHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ready" {
			http.Error(w, "no", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()
	assert.NoError(t, Check(ctx, Spec{Type: topology.ProbeHTTP, Addr: addr, Path: "/ready"}))
	err := Check(ctx, Spec{Type: topology.ProbeHTTP, Addr: addr, Path: "/other"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "503")
}

func TestTCPAndWaitDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	assert.NoError(t, Check(context.Background(), Spec{Type: topology.ProbeTCP, Addr: addr}))
	require.NoError(t, ln.Close())

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = Wait(ctx, Spec{Type: topology.ProbeTCP, Addr: addr}, 50*time.Millisecond)
	require.Error(t, err)
	assert.Less(t, time.Since(start), 2*time.Second, "Wait honours the deadline")
	assert.Contains(t, err.Error(), "refused", "the last failure is reported")
}

func TestGRPCHealth(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()

	spec := Spec{Type: topology.ProbeGRPCHealth, Addr: ln.Addr().String()}
	ctx := context.Background()
	assert.NoError(t, Check(ctx, spec))
	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	err = Check(ctx, spec)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "NOT_SERVING")
}

func TestUnknownType(t *testing.T) {
	assert.Error(t, Check(context.Background(), Spec{Type: "ping", Addr: "127.0.0.1:1"}))
}

// A gRPC server without the health service will never pass: Wait says so
// at once, naming the fix, instead of retrying until its deadline.
func TestGRPCWithoutHealthIsFinal(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	err = Wait(ctx, Spec{Type: topology.ProbeGRPCHealth, Addr: ln.Addr().String()}, 50*time.Millisecond)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrPermanent)
	assert.Contains(t, err.Error(), "x-meshproof.probe.type: tcp")
	assert.Less(t, time.Since(start), 5*time.Second, "no retrying until the deadline")
}
