// Package amqpsink publishes greetings to a RabbitMQ queue with publisher
// confirms, and consumes them with manual acks. Both sides keep one
// connection and reconnect with backoff, so a broker restart costs a few
// failed requests, not a process restart (the seed exited on any error).
// The trace context travels in the message headers, so the consumer's span
// joins the publisher's trace.
package amqpsink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/propagation"

	"github.com/meshproof/meshproof/mesh/sink"
)

// dialTimeout bounds the TCP connect and AMQP handshake.
const dialTimeout = 5 * time.Second

// declare makes the queue durable, so persistent messages survive a broker restart.
func declare(ch *amqp.Channel, queue string) error {
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare queue %s: %w", queue, err)
	}
	return nil
}

// keepConnected dials url and calls use with a fresh connection and channel
// until ctx ends; when use returns (the connection closed), it redials with
// backoff. use must return when ctx ends or the connection closes.
func keepConnected(ctx context.Context, url string, log *slog.Logger, use func(ctx context.Context, conn *amqp.Connection, ch *amqp.Channel) error) {
	b := sink.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}
	for ctx.Err() == nil {
		conn, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(dialTimeout), Properties: amqp.Table{"connection_name": "greeting"}})
		if err == nil {
			var ch *amqp.Channel
			if ch, err = conn.Channel(); err == nil {
				b.Reset()
				err = use(ctx, conn, ch)
			}
			_ = conn.Close()
		}
		if ctx.Err() != nil {
			return
		}
		d := b.Next()
		log.Warn("rabbitmq connection lost; reconnecting", "err", err, "retry_in", d.String())
		if !sink.Sleep(ctx, d) {
			return
		}
	}
}

// waitClosed blocks until conn closes or ctx ends.
func waitClosed(ctx context.Context, conn *amqp.Connection) error {
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	select {
	case <-ctx.Done():
		return nil
	case e := <-closed:
		if e == nil {
			return errors.New("connection closed")
		}
		return e
	}
}

// headerCarrier lets the OpenTelemetry propagator read and write AMQP headers.
type headerCarrier amqp.Table

var _ propagation.TextMapCarrier = headerCarrier{}

func (c headerCarrier) Get(key string) string {
	if v, ok := c[key].(string); ok {
		return v
	}
	return ""
}

func (c headerCarrier) Set(key, value string) { c[key] = value }

func (c headerCarrier) Keys() []string {
	out := make([]string, 0, len(c))
	for k := range c {
		out = append(out, k)
	}
	return out
}
