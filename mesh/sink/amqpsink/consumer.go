package amqpsink

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/meshproof/meshproof/mesh/sink"
	greetingv3 "github.com/meshproof/meshproof/proto/greeting/v3"
)

// Handler stores one consumed greeting; ctx carries the CONSUMER span whose
// parent is the publisher's span. Returning nil acks the message; an error
// requeues it. fresh reports that the greeting was not stored before.
type Handler func(ctx context.Context, g *greetingv3.Greeting) (fresh bool, err error)

// retryDelay paces redelivery while a store is failing, so a down database
// does not turn the consumer into a busy loop.
const retryDelay = 500 * time.Millisecond

// Consumer reads the queue with manual acks and a bounded prefetch.
type Consumer struct {
	URL, Queue string
	// Workers handle deliveries concurrently (prefetch is twice this).
	Workers int
	Tracer  trace.Tracer
	Prop    propagation.TextMapPropagator
	Log     *slog.Logger
	Handle  Handler
	// OnReady is called each time consuming starts (after every reconnect).
	OnReady func()
	// OnLost is called each time consuming stops before ctx ends (the
	// channel or connection was lost), with the reason; consuming resumes
	// on its own and OnReady follows.
	OnLost func(err error)
	// OnConsumed is called once per distinct greeting, after its ack.
	OnConsumed func()

	mu sync.Mutex
	// unacked holds ids stored fresh whose ack failed: their redelivery finds
	// them stored (not fresh) but must still be counted once.
	unacked map[string]bool
}

// Run consumes until ctx ends, reconnecting after broker failures: a lost
// connection, a channel the broker closed (consumer timeout) or a consumer
// it cancelled (queue deleted; declaring it again recreates it). In-flight
// handlers finish before Run returns; unacked messages return to the queue
// when the channel closes.
func (c *Consumer) Run(ctx context.Context) {
	keepConnected(ctx, c.URL, c.Log, c.use)
}

func (c *Consumer) use(ctx context.Context, s *session) error {
	ch := s.ch
	workers := max(c.Workers, 1)
	if err := declare(ch, c.Queue); err != nil {
		return err
	}
	if err := ch.Qos(workers*2, 0, false); err != nil {
		return fmt.Errorf("qos: %w", err)
	}
	const tag = "greeting-consumer"
	deliveries, err := ch.ConsumeWithContext(ctx, c.Queue, tag, false, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("consume %s: %w", c.Queue, err)
	}
	c.Log.Info("rabbitmq consumer started", "queue", c.Queue)
	if c.OnReady != nil {
		c.OnReady()
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for d := range deliveries {
				c.deliver(ctx, d)
			}
		})
	}
	err = s.wait(ctx)
	if ctx.Err() == nil {
		// Error, not warn: until it is back the queue only grows.
		c.Log.Error("rabbitmq consumer stopped; reconnecting", "queue", c.Queue, "err", err)
		if c.OnLost != nil {
			c.OnLost(err)
		}
	}
	// Stop the flow, let the workers finish what they hold, then close.
	_ = ch.Cancel(tag, false)
	wg.Wait()
	return err
}

func (c *Consumer) deliver(ctx context.Context, d amqp.Delivery) {
	if d.Headers == nil {
		d.Headers = amqp.Table{}
	}
	parent := c.Prop.Extract(context.WithoutCancel(ctx), headerCarrier(d.Headers))
	hctx, span := c.Tracer.Start(parent, "process "+c.Queue, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "rabbitmq"),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.destination.name", c.Queue),
			attribute.String("messaging.message.id", d.MessageId),
			attribute.Bool("messaging.rabbitmq.redelivered", d.Redelivered)))
	defer span.End()
	var g greetingv3.Greeting
	if err := protojson.Unmarshal(d.Body, &g); err != nil {
		// A message that can never be decoded is dropped, not requeued forever.
		c.Log.ErrorContext(hctx, "dropping undecodable message", "message_id", d.MessageId, "err", err)
		_ = d.Nack(false, false)
		return
	}
	fresh, err := c.Handle(hctx, &g)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		sink.Sleep(ctx, retryDelay)
		_ = d.Nack(false, true)
		return
	}
	count := c.settle(g.GetId(), fresh, true)
	if err := d.Ack(false); err != nil {
		c.settle(g.GetId(), count, false)
		c.Log.WarnContext(hctx, "ack failed; the broker will redeliver", "id", g.GetId(), "err", err)
		return
	}
	if count && c.OnConsumed != nil {
		c.OnConsumed()
	}
}

// settle decides whether an acked greeting counts as consumed (take=true),
// or remembers a counted-to-be greeting whose ack failed (take=false).
func (c *Consumer) settle(id string, fresh, take bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !take {
		if fresh {
			if c.unacked == nil {
				c.unacked = map[string]bool{}
			}
			c.unacked[id] = true
		}
		return false
	}
	if c.unacked[id] {
		delete(c.unacked, id)
		return true
	}
	return fresh
}
