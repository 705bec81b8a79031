package role_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/meshproof/meshproof/internal/servertest"
	"github.com/meshproof/meshproof/mesh/config"
	"github.com/meshproof/meshproof/mesh/role"
	"github.com/meshproof/meshproof/mesh/telemetry"
)

// TestConsumerHealthFollowsTheQueue: service-f is SERVING only while it
// consumes. The broker cancelling its consumer (the queue deleted) turns
// health NOT_SERVING until the consumer is back, then SERVING again.
func TestConsumerHealthFollowsTheQueue(t *testing.T) {
	r := servertest.StartRabbitMQ(t)
	dsn := servertest.StartPostgres(t)
	cfg, err := config.Load("service-f", func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	require.NotNil(t, cfg.AMQP)
	cfg.Mongo = nil // the ledger is enough of a store here
	cfg.Postgres = &config.Postgres{DSN: dsn}
	cfg.AMQP.URL = r.URL
	cfg.Listen, cfg.MetricsListen = "127.0.0.1:0", ""
	in, err := role.Start(context.Background(), cfg, role.WithTelemetry(telemetry.WithLogOutput(io.Discard)))
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, in.Stop(ctx))
	})

	conn, err := grpc.NewClient(in.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	watch, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	next := func(want healthpb.HealthCheckResponse_ServingStatus) time.Time {
		t.Helper()
		for {
			resp, err := watch.Recv()
			require.NoError(t, err, "waiting for %s", want)
			if resp.GetStatus() == want {
				return time.Now()
			}
		}
	}
	next(healthpb.HealthCheckResponse_SERVING)
	r.Ctl(t, "delete_queue", cfg.AMQP.Queue)
	lost := next(healthpb.HealthCheckResponse_NOT_SERVING)
	back := next(healthpb.HealthCheckResponse_SERVING)
	t.Logf("NOT_SERVING for %s while the consumer was gone", back.Sub(lost).Round(time.Millisecond))
}
