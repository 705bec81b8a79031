// Package mongosink stores greetings in a MongoDB collection, keyed by
// greeting id (_id), so a retried write never duplicates a document.
package mongosink

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/meshproof/meshproof/mesh/sink"
	greetingv3 "github.com/meshproof/meshproof/proto/greeting/v3"
)

// Sink is one collection; the client is shared by every write (the seed
// connected per request).
type Sink struct {
	client *mongo.Client
	coll   *mongo.Collection
	tracer trace.Tracer
	db     string
}

// New creates the client; it connects lazily, Connect checks it.
func New(uri, database, collection string, tracer trace.Tracer) (*Sink, error) {
	client, err := mongo.Connect(options.Client().ApplyURI(uri).
		SetServerSelectionTimeout(5 * time.Second).
		SetConnectTimeout(5 * time.Second))
	if err != nil {
		return nil, fmt.Errorf("mongodb client: %w", err)
	}
	return &Sink{client: client, coll: client.Database(database).Collection(collection), tracer: tracer, db: database}, nil
}

// Name implements sink.Writer.
func (s *Sink) Name() string { return "mongodb" }

// Connect pings the server.
func (s *Sink) Connect(ctx context.Context) error {
	if err := s.client.Ping(ctx, nil); err != nil {
		return fmt.Errorf("ping mongodb: %w", err)
	}
	return nil
}

// Write inserts the greeting; a duplicate _id means it is already stored.
func (s *Sink) Write(ctx context.Context, g *greetingv3.Greeting) (bool, error) {
	ctx, span := sink.StartSpan(ctx, s.tracer, "insert "+s.db+"."+s.coll.Name(),
		attribute.String("db.system.name", "mongodb"),
		attribute.String("db.namespace", s.db),
		attribute.String("db.collection.name", s.coll.Name()),
		attribute.String("db.operation.name", "insert"))
	doc := bson.D{
		{Key: "_id", Value: g.GetId()},
		{Key: "id", Value: g.GetId()},
		{Key: "service", Value: g.GetService()},
		{Key: "message", Value: g.GetMessage()},
		{Key: "created", Value: g.GetCreated()},
		{Key: "hostname", Value: g.GetHostname()},
		{Key: "received", Value: time.Now().UTC()},
		{Key: "trace_id", Value: sink.TraceID(ctx)},
	}
	_, err := s.coll.InsertOne(ctx, doc)
	if mongo.IsDuplicateKeyError(err) {
		span.SetAttributes(attribute.Bool("greeting.duplicate", true))
		sink.EndSpan(span, nil)
		return false, nil
	}
	if err != nil {
		err = fmt.Errorf("insert into %s.%s: %w", s.db, s.coll.Name(), err)
	}
	sink.EndSpan(span, err)
	return err == nil, err
}

// Close disconnects the client.
func (s *Sink) Close(ctx context.Context) error {
	if err := s.client.Disconnect(ctx); err != nil {
		return fmt.Errorf("disconnect mongodb: %w", err)
	}
	return nil
}
