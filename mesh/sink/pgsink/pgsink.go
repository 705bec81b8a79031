// Package pgsink writes greetings to the greeting_ledger table. The insert
// is ON CONFLICT DO NOTHING on the greeting id, so a redelivered message is
// stored once and reported as not fresh.
package pgsink

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/meshproof/meshproof/mesh/sink"
	greetingv3 "github.com/meshproof/meshproof/proto/greeting/v3"
)

// Schema creates the ledger; fixtures/postgres holds the same statement for
// the postgres container's init directory.
const Schema = `CREATE TABLE IF NOT EXISTS greeting_ledger (
    id       text PRIMARY KEY,
    service  text NOT NULL,
    message  text NOT NULL,
    created  timestamptz NOT NULL,
    received timestamptz NOT NULL DEFAULT now(),
    trace_id text NOT NULL DEFAULT ''
)`

const insert = `INSERT INTO greeting_ledger (id, service, message, created, received, trace_id)
VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`

// Sink is a connection pool to one database.
type Sink struct {
	pool   *pgxpool.Pool
	tracer trace.Tracer
}

// New parses dsn (URL or key=value) and creates a lazy pool.
func New(dsn string, tracer trace.Tracer) (*Sink, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres config: %w", err)
	}
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres pool: %w", err)
	}
	return &Sink{pool: pool, tracer: tracer}, nil
}

// Name implements sink.Writer.
func (s *Sink) Name() string { return "postgres" }

// Connect pings and creates the schema if missing.
func (s *Sink) Connect(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping postgres: %w", err)
	}
	if _, err := s.pool.Exec(ctx, Schema); err != nil {
		return fmt.Errorf("create greeting_ledger: %w", err)
	}
	return nil
}

// Write inserts one ledger row.
func (s *Sink) Write(ctx context.Context, g *greetingv3.Greeting) (bool, error) {
	ctx, span := sink.StartSpan(ctx, s.tracer, "INSERT greeting_ledger",
		attribute.String("db.system.name", "postgresql"),
		attribute.String("db.collection.name", "greeting_ledger"),
		attribute.String("db.operation.name", "INSERT"))
	tag, err := s.pool.Exec(ctx, insert, g.GetId(), g.GetService(), g.GetMessage(), sink.Created(g), time.Now().UTC(), sink.TraceID(ctx))
	if err != nil {
		err = fmt.Errorf("insert greeting_ledger %s: %w", g.GetId(), err)
	}
	sink.EndSpan(span, err)
	return err == nil && tag.RowsAffected() == 1, err
}

// Close closes the pool.
func (s *Sink) Close(context.Context) error {
	s.pool.Close()
	return nil
}
