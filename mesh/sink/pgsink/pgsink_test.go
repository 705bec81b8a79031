package pgsink

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/meshproof/meshproof/internal/servertest"
	greetingv3 "github.com/meshproof/meshproof/proto/greeting/v3"
)

// TestPostgres writes to a real Postgres: the schema is created on
// Connect, a write is idempotent by greeting id (what lets the consumer
// count each greeting once across redeliveries), and the row carries the
// trace it was written in.
func TestPostgres(t *testing.T) {
	dsn := servertest.StartPostgres(t)
	rec := tracetest.NewSpanRecorder()
	tr := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)).Tracer("test")
	s, err := New(dsn, tr)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.Close(context.Background())) })
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	require.NoError(t, s.Connect(ctx))
	require.NoError(t, s.Connect(ctx), "Connect again: the schema statement is idempotent")

	g := &greetingv3.Greeting{Id: uuid.NewString(), Service: "Service F", Message: "hello",
		Created: "2026-01-02T03:04:05.123456Z"}
	wctx, span := tr.Start(ctx, "consume")
	fresh, err := s.Write(wctx, g)
	span.End()
	require.NoError(t, err)
	assert.True(t, fresh, "first write")
	fresh, err = s.Write(ctx, g)
	require.NoError(t, err)
	assert.False(t, fresh, "a redelivery is stored once and reported as not fresh")

	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(context.WithoutCancel(ctx))
	var n int
	var service, message, traceID string
	var created time.Time
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) OVER (), service, message, created, trace_id
		FROM greeting_ledger WHERE id = $1`, g.GetId()).Scan(&n, &service, &message, &created, &traceID))
	assert.Equal(t, 1, n)
	assert.Equal(t, "Service F", service)
	assert.Equal(t, "hello", message)
	assert.True(t, created.Equal(time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)), "created %s", created)
	assert.Equal(t, span.SpanContext().TraceID().String(), traceID, "the row leads to its trace")

	var insert sdktrace.ReadOnlySpan
	for _, sp := range rec.Ended() {
		if sp.Name() == "INSERT greeting_ledger" && sp.Parent().SpanID() == span.SpanContext().SpanID() {
			insert = sp
		}
	}
	require.NotNil(t, insert, "a CLIENT span per insert, child of the caller's")
	assert.Equal(t, trace.SpanKindClient, insert.SpanKind())
}

// TestPostgresDown: a write to a store that is gone fails (the consumer
// then requeues) rather than hanging past its deadline.
func TestPostgresDown(t *testing.T) {
	s, err := New("postgres://nobody:x@127.0.0.1:1/none?sslmode=disable&connect_timeout=2", sdktrace.NewTracerProvider().Tracer("test"))
	require.NoError(t, err)
	defer s.Close(context.Background())
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	assert.Error(t, s.Connect(ctx))
	fresh, err := s.Write(ctx, &greetingv3.Greeting{Id: uuid.NewString()})
	assert.Error(t, err)
	assert.False(t, fresh)
}
