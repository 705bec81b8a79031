package mongosink_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/meshproof/meshproof/internal/toolbin"
	"github.com/meshproof/meshproof/mesh/internal/standintest"
	"github.com/meshproof/meshproof/mesh/sink/mongosink"
	greetingv3 "github.com/meshproof/meshproof/proto/greeting/v3"
)

// The sink against a real MongoDB wire-protocol server (FerretDB stand-in).
func TestWriteIsIdempotentAgainstFerretDB(t *testing.T) {
	addr := standintest.Start(t, toolbin.MongoDBStandin)
	uri := "mongodb://" + addr
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	s, err := mongosink.New(uri, "service-g", "greetings", tp.Tracer("test"))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.Close(context.Background())) })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.Eventually(t, func() bool {
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		defer acancel()
		return s.Connect(actx) == nil
	}, 30*time.Second, 100*time.Millisecond, "stand-in answers ping")

	ctx, span := tp.Tracer("test").Start(ctx, "request")
	g := &greetingv3.Greeting{Id: "g-1", Service: "Service G", Message: "Hello, from Service G!", Created: time.Now().UTC().Format(time.RFC3339Nano), Hostname: "h"}
	fresh, err := s.Write(ctx, g)
	require.NoError(t, err)
	assert.True(t, fresh)
	fresh, err = s.Write(ctx, g)
	require.NoError(t, err, "a repeated write is not an error")
	assert.False(t, fresh, "a repeated write is not fresh")
	span.End()

	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	require.NoError(t, err)
	defer func() { _ = client.Disconnect(context.Background()) }()
	coll := client.Database("service-g").Collection("greetings")
	n, err := coll.CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.EqualValues(t, 1, n)
	var doc bson.M
	require.NoError(t, coll.FindOne(ctx, bson.D{{Key: "_id", Value: "g-1"}}).Decode(&doc))
	assert.Equal(t, "Hello, from Service G!", doc["message"])
	assert.Equal(t, span.SpanContext().TraceID().String(), doc["trace_id"])

	var clientSpans int
	for _, sp := range rec.Ended() {
		if sp.SpanKind() == trace.SpanKindClient && sp.Parent().SpanID() == span.SpanContext().SpanID() {
			clientSpans++
		}
	}
	assert.Equal(t, 2, clientSpans, "one CLIENT span per write, under the request")
}

func TestWriteFailsWhenServerIsGone(t *testing.T) {
	s, err := mongosink.New("mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300", "service-c", "greetings", noop.NewTracerProvider().Tracer(""))
	require.NoError(t, err)
	defer s.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = s.Write(ctx, &greetingv3.Greeting{Id: "x"})
	assert.ErrorContains(t, err, "service-c.greetings")
}
