package amqpsink

import (
	"context"
	"errors"
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

	greetingv3 "github.com/meshproof/meshproof/proto/greeting/v3"
)

// ErrNotConnected is returned by Write while the broker is unreachable.
var ErrNotConnected = errors.New("not connected")

// Publisher sends each greeting as a persistent message to a durable queue
// and waits for the broker's confirm, so a successful Write means the broker
// has taken responsibility for the message.
type Publisher struct {
	url, queue string
	tracer     trace.Tracer
	prop       propagation.TextMapPropagator
	log        *slog.Logger

	mu    sync.RWMutex
	ch    *amqp.Channel
	ready chan struct{}
	once  sync.Once

	cancel context.CancelFunc
	done   chan struct{}
}

// NewPublisher starts the connection loop; it runs until Close.
func NewPublisher(url, queue string, tracer trace.Tracer, prop propagation.TextMapPropagator, log *slog.Logger) *Publisher {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Publisher{url: url, queue: queue, tracer: tracer, prop: prop, log: log,
		ready: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		keepConnected(ctx, url, log, p.use)
	}()
	return p
}

func (p *Publisher) use(ctx context.Context, s *session) error {
	ch := s.ch
	if err := ch.Confirm(false); err != nil {
		return fmt.Errorf("confirm mode: %w", err)
	}
	if err := declare(ch, p.queue); err != nil {
		return err
	}
	p.mu.Lock()
	p.ch = ch
	p.mu.Unlock()
	p.once.Do(func() { close(p.ready) })
	p.log.Info("rabbitmq publisher connected", "queue", p.queue)
	err := s.wait(ctx)
	p.mu.Lock()
	p.ch = nil
	p.mu.Unlock()
	if errors.Is(err, errChannelLost) {
		// The connection is fine, so nobody else will say why publishes
		// fail until the channel is back.
		p.log.Error("rabbitmq publisher channel lost; reopening", "queue", p.queue, "err", err)
	}
	return err
}

// SinkName is the publisher's sink label.
const SinkName = "rabbitmq"

// Name implements sink.Writer.
func (p *Publisher) Name() string { return SinkName }

// Connect waits for the first connection.
func (p *Publisher) Connect(ctx context.Context) error {
	select {
	case <-p.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("rabbitmq publisher: %w", ErrNotConnected)
	}
}

// Write publishes g and waits for the confirm.
func (p *Publisher) Write(ctx context.Context, g *greetingv3.Greeting) (bool, error) {
	ctx, span := p.tracer.Start(ctx, "publish "+p.queue, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			attribute.String("messaging.system", "rabbitmq"),
			attribute.String("messaging.operation.type", "send"),
			attribute.String("messaging.destination.name", p.queue),
			attribute.String("messaging.message.id", g.GetId())))
	err := p.publish(ctx, g)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
	return err == nil, err
}

func (p *Publisher) publish(ctx context.Context, g *greetingv3.Greeting) error {
	p.mu.RLock()
	ch := p.ch
	p.mu.RUnlock()
	if ch == nil {
		return ErrNotConnected
	}
	body, err := protojson.Marshal(g)
	if err != nil {
		return fmt.Errorf("encode greeting: %w", err)
	}
	headers := amqp.Table{}
	p.prop.Inject(ctx, headerCarrier(headers))
	conf, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", p.queue, false, false, amqp.Publishing{
		Headers:      headers,
		ContentType:  "application/json",
		DeliveryMode: amqp.Persistent,
		MessageId:    g.GetId(),
		Timestamp:    time.Now(),
		Body:         body,
	})
	if err != nil {
		return fmt.Errorf("publish to %s: %w", p.queue, err)
	}
	acked, err := conf.WaitContext(ctx)
	if err != nil {
		return fmt.Errorf("confirm from %s: %w", p.queue, err)
	}
	if !acked {
		if ch.IsClosed() {
			// The library settles pending confirms as nacks when the
			// channel goes; the broker may or may not have the message.
			return fmt.Errorf("publish to %s: channel closed before the broker confirmed %s", p.queue, g.GetId())
		}
		return fmt.Errorf("publish to %s: broker nacked message %s", p.queue, g.GetId())
	}
	return nil
}

// Close stops the connection loop.
func (p *Publisher) Close(ctx context.Context) error {
	p.cancel()
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close rabbitmq publisher: %w", ctx.Err())
	}
}
