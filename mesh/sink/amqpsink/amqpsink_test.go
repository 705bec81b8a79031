package amqpsink

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/meshproof/meshproof/internal/servertest"
	greetingv3 "github.com/meshproof/meshproof/proto/greeting/v3"
)

// resumeWithin bounds every recovery: backoff starts at 100 ms, so a
// healthy reconnect takes well under a second; 20 s is for a busy machine.
const resumeWithin = 20 * time.Second

// fixture is one queue on the shared broker with a publisher and a
// consumer whose every event the test can watch.
type fixture struct {
	t        *testing.T
	queue    string
	rec      *tracetest.SpanRecorder
	pub      *Publisher
	consumer *Consumer
	got      chan handled
	ready    chan time.Time
	lost     chan error
	consumed atomic.Int64
	// seen keeps greetings handled while waiting for another one: with
	// several workers they arrive in any order.
	seen map[string]handled
	// handle, when set, replaces the default (store and succeed).
	handle func(ctx context.Context, g *greetingv3.Greeting) (bool, error)
}

type handled struct {
	id     string
	parent trace.SpanContext
}

func newFixture(t *testing.T, url string) *fixture {
	f := &fixture{t: t, queue: "test-" + uuid.NewString(), rec: tracetest.NewSpanRecorder(),
		got: make(chan handled, 100), ready: make(chan time.Time, 10), lost: make(chan error, 10)}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(f.rec))
	tr, prop := tp.Tracer("test"), propagation.TraceContext{}
	log := slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.pub = NewPublisher(url, f.queue, tr, prop, log)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, f.pub.Close(ctx))
	})
	ctx, cancel := context.WithTimeout(t.Context(), resumeWithin)
	defer cancel()
	require.NoError(t, f.pub.Connect(ctx))
	f.consumer = &Consumer{URL: url, Queue: f.queue, Workers: 2, Tracer: tr, Prop: prop, Log: log,
		Handle: func(ctx context.Context, g *greetingv3.Greeting) (bool, error) {
			if f.handle != nil {
				return f.handle(ctx, g)
			}
			f.got <- handled{id: g.GetId(), parent: trace.SpanContextFromContext(ctx)}
			return true, nil
		},
		OnReady:    func() { f.ready <- time.Now() },
		OnLost:     func(err error) { f.lost <- err },
		OnConsumed: func() { f.consumed.Add(1) },
	}
	cctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.consumer.Run(cctx) }()
	t.Cleanup(func() { stop(); <-done })
	f.waitReady()
	return f
}

func (f *fixture) waitReady() time.Time {
	f.t.Helper()
	select {
	case at := <-f.ready:
		return at
	case <-time.After(resumeWithin):
		require.FailNow(f.t, "consumer not ready", "within %s", resumeWithin)
		return time.Time{}
	}
}

func (f *fixture) waitLost() (error, time.Time) {
	f.t.Helper()
	select {
	case err := <-f.lost:
		return err, time.Now()
	case <-time.After(resumeWithin):
		require.FailNow(f.t, "consumer did not notice", "within %s", resumeWithin)
		return nil, time.Time{}
	}
}

// publish writes one greeting under a parent span and requires the
// broker's confirm.
func (f *fixture) publish(ctx context.Context) *greetingv3.Greeting {
	f.t.Helper()
	g := &greetingv3.Greeting{Id: uuid.NewString(), Service: "Service D", Message: "hello"}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	fresh, err := f.pub.Write(wctx, g)
	require.NoError(f.t, err, "publish %s", g.GetId())
	require.True(f.t, fresh)
	return g
}

// publishUntilConfirmed retries while the publisher reconnects.
func (f *fixture) publishUntilConfirmed(ctx context.Context) *greetingv3.Greeting {
	f.t.Helper()
	deadline := time.Now().Add(resumeWithin)
	for {
		g := &greetingv3.Greeting{Id: uuid.NewString(), Service: "Service D", Message: "hello"}
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := f.pub.Write(wctx, g)
		cancel()
		if err == nil {
			return g
		}
		require.True(f.t, time.Now().Before(deadline), "publisher not back within %s: %v", resumeWithin, err)
		time.Sleep(50 * time.Millisecond) // pacing between attempts while the publisher redials
	}
}

func (f *fixture) waitConsumed(id string) handled {
	f.t.Helper()
	if h, ok := f.seen[id]; ok {
		return h
	}
	if f.seen == nil {
		f.seen = map[string]handled{}
	}
	timeout := time.After(resumeWithin)
	for {
		select {
		case h := <-f.got:
			if h.id == id {
				return h
			}
			f.seen[h.id] = h
		case <-timeout:
			require.FailNow(f.t, "not consumed", "greeting %s within %s", id, resumeWithin)
		}
	}
}

// depth is the queue's ready count, read through a fresh connection.
func depth(t *testing.T, url, queue string) int {
	t.Helper()
	conn, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	require.NoError(t, err)
	return q.Messages
}

// TestRabbitMQ runs the publisher and consumer against a real broker, one
// node for all subtests (a node takes seconds to start).
func TestRabbitMQ(t *testing.T) {
	r := servertest.StartRabbitMQ(t)
	t.Run("trace context crosses the queue", func(t *testing.T) { traceContext(t, r) })
	t.Run("confirms, acks and requeues", func(t *testing.T) { acks(t, r) })
	t.Run("resumes after the queue is deleted", func(t *testing.T) { afterCancel(t, r) })
	t.Run("resumes after a consumer timeout", func(t *testing.T) { afterTimeout(t, r) })
	t.Run("resumes after the broker closes connections", func(t *testing.T) { afterConnClose(t, r) })
}

func traceContext(t *testing.T, r *servertest.RabbitMQ) {
	f := newFixture(t, r.URL)
	g := f.publish(t.Context())
	h := f.waitConsumed(g.GetId())
	var publish, process sdktrace.ReadOnlySpan
	require.Eventually(t, func() bool {
		for _, s := range f.rec.Ended() {
			switch s.Name() {
			case "publish " + f.queue:
				publish = s
			case "process " + f.queue:
				process = s
			}
		}
		return publish != nil && process != nil
	}, 5*time.Second, 20*time.Millisecond, "publish and process spans")
	assert.Equal(t, trace.SpanKindProducer, publish.SpanKind())
	assert.Equal(t, trace.SpanKindConsumer, process.SpanKind())
	assert.Equal(t, publish.SpanContext().TraceID(), process.SpanContext().TraceID(), "one trace")
	assert.Equal(t, publish.SpanContext().SpanID(), process.Parent().SpanID(), "process is the child of publish")
	assert.Equal(t, process.SpanContext(), h.parent, "the handler runs in the process span")
}

func acks(t *testing.T, r *servertest.RabbitMQ) {
	f := newFixture(t, r.URL)
	var calls sync.Map // id -> attempts
	f.handle = func(_ context.Context, g *greetingv3.Greeting) (bool, error) {
		n, _ := calls.LoadOrStore(g.GetId(), new(atomic.Int64))
		if n.(*atomic.Int64).Add(1) == 1 {
			return false, errors.New("store down") // requeued
		}
		f.got <- handled{id: g.GetId()}
		return true, nil
	}
	const n = 5
	var ids []string
	for range n {
		ids = append(ids, f.publish(t.Context()).GetId())
	}
	for _, id := range ids {
		f.waitConsumed(id)
	}
	require.Eventually(t, func() bool { return f.consumed.Load() == n }, 5*time.Second, 20*time.Millisecond)
	for _, id := range ids {
		v, _ := calls.Load(id)
		assert.Equal(t, int64(2), v.(*atomic.Int64).Load(), "%s: nacked once, then acked", id)
	}
	// Acked messages are gone for good: none comes back when the
	// consumer's channel closes.
	require.NoError(t, f.pub.Close(t.Context()))
	assert.Equal(t, 0, depth(t, r.URL, f.queue), "ready messages after every ack")
	assert.Equal(t, int64(n), f.consumed.Load(), "each greeting counted once")
}

// afterCancel deletes the queue under the consumer: the broker sends
// basic.cancel and nothing else happens on the wire, so only NotifyCancel
// sees it. The consumer must report it, declare the queue again and go on.
func afterCancel(t *testing.T, r *servertest.RabbitMQ) {
	f := newFixture(t, r.URL)
	f.waitConsumed(f.publish(t.Context()).GetId())
	r.Ctl(t, "delete_queue", f.queue)
	err, lostAt := f.waitLost()
	assert.ErrorIs(t, err, errChannelLost)
	assert.ErrorContains(t, err, "cancelled consumer")
	readyAt := f.waitReady()
	f.waitConsumed(f.publish(t.Context()).GetId())
	t.Logf("basic.cancel: consuming again %s after the consumer noticed, first greeting %s after it",
		readyAt.Sub(lostAt).Round(time.Millisecond), time.Since(lostAt).Round(time.Millisecond))
}

// afterTimeout holds a delivery past consumer_timeout: the broker closes
// the channel (PRECONDITION_FAILED) while the connection stays up.
func afterTimeout(t *testing.T, r *servertest.RabbitMQ) {
	f := newFixture(t, r.URL)
	var held atomic.Bool
	release := make(chan struct{})
	f.handle = func(_ context.Context, g *greetingv3.Greeting) (bool, error) {
		if held.CompareAndSwap(false, true) {
			<-release // past the broker's 2 s timeout
		}
		f.got <- handled{id: g.GetId()}
		return true, nil
	}
	g := f.publish(t.Context())
	err, lostAt := f.waitLost()
	close(release)
	assert.ErrorIs(t, err, errChannelLost)
	var aerr *amqp.Error
	if assert.ErrorAs(t, err, &aerr) {
		assert.Equal(t, amqp.PreconditionFailed, aerr.Code, "consumer timeout")
	}
	readyAt := f.waitReady()
	f.waitConsumed(g.GetId()) // redelivered on the new channel
	t.Logf("consumer timeout: consuming again %s after the channel closed, the held greeting %s after it",
		readyAt.Sub(lostAt).Round(time.Millisecond), time.Since(lostAt).Round(time.Millisecond))
}

// afterConnClose closes every client connection from the broker side.
func afterConnClose(t *testing.T, r *servertest.RabbitMQ) {
	f := newFixture(t, r.URL)
	f.waitConsumed(f.publish(t.Context()).GetId())
	r.Ctl(t, "close_all_connections", "test: closing connections")
	err, lostAt := f.waitLost()
	assert.NotErrorIs(t, err, errChannelLost, "the connection went, not just the channel")
	readyAt := f.waitReady()
	g := f.publishUntilConfirmed(t.Context())
	f.waitConsumed(g.GetId())
	t.Logf("connection closed: consuming again %s after, first greeting %s after",
		readyAt.Sub(lostAt).Round(time.Millisecond), time.Since(lostAt).Round(time.Millisecond))
}

// testLog sends the sink's logs to the test log.
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Logf("%s", p)
	return len(p), nil
}
