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

// errChannelLost marks a session that ended while its connection stayed
// up: the broker closed the channel (a consumer timeout, a queue deleted
// under a publisher's passive declare) or cancelled the consumer
// (basic.cancel, e.g. the queue was deleted). Nothing else would notice:
// the connection's close notification never fires, and a consumer would
// sit idle with health still SERVING.
var errChannelLost = errors.New("rabbitmq channel lost")

// stableSession is how long a session must last for the next failure to
// start the backoff over; a channel the broker closes right after it
// opens (a declare it refuses) backs off instead of spinning.
const stableSession = 5 * time.Second

// session is one channel on one connection and the notifications that end it.
type session struct {
	conn       *amqp.Connection
	ch         *amqp.Channel
	connClosed chan *amqp.Error
	chClosed   chan *amqp.Error
	cancelled  chan string
}

func newSession(conn *amqp.Connection, ch *amqp.Channel) *session {
	return &session{
		conn:       conn,
		ch:         ch,
		connClosed: conn.NotifyClose(make(chan *amqp.Error, 1)),
		chClosed:   ch.NotifyClose(make(chan *amqp.Error, 1)),
		cancelled:  ch.NotifyCancel(make(chan string, 1)),
	}
}

// wait blocks until ctx ends (nil) or the session ends, and says why: an
// error wrapping errChannelLost when only the channel went, any other
// error when the connection did.
func (s *session) wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case e := <-s.connClosed:
		return connLost(e)
	case e := <-s.chClosed:
		if s.conn.IsClosed() {
			return s.connErr()
		}
		if e == nil {
			return fmt.Errorf("%w: closed", errChannelLost)
		}
		return fmt.Errorf("%w: closed by the broker: %w", errChannelLost, e)
	case tag, ok := <-s.cancelled:
		if s.conn.IsClosed() {
			return s.connErr()
		}
		if !ok {
			return fmt.Errorf("%w: closed", errChannelLost)
		}
		return fmt.Errorf("%w: the broker cancelled consumer %q (queue deleted?)", errChannelLost, tag)
	}
}

// connErr is the connection's close reason, once its notification comes
// (it is sent before the channels are shut down, so it is there already).
func (s *session) connErr() error {
	select {
	case e := <-s.connClosed:
		return connLost(e)
	case <-time.After(time.Second):
		return errors.New("connection closed")
	}
}

func connLost(e *amqp.Error) error {
	if e == nil {
		return errors.New("connection closed")
	}
	return e
}

// keepConnected dials url and runs sessions on the connection until ctx
// ends; when the connection is lost it redials with backoff. use must
// return when ctx ends or the session ends (session.wait).
func keepConnected(ctx context.Context, url string, log *slog.Logger, use func(ctx context.Context, s *session) error) {
	b := sink.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}
	for ctx.Err() == nil {
		conn, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(dialTimeout), Properties: amqp.Table{"connection_name": "greeting"}})
		if err == nil {
			err = sessions(ctx, conn, log, &b, use)
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

// sessions opens a channel on conn and calls use with it, and again after
// each channel loss, until the connection is lost or ctx ends. use reports
// the loss: only it knows what stopped (consuming, publishing).
func sessions(ctx context.Context, conn *amqp.Connection, log *slog.Logger, b *sink.Backoff, use func(ctx context.Context, s *session) error) error {
	for {
		ch, err := conn.Channel()
		if err != nil {
			return fmt.Errorf("open channel: %w", err)
		}
		began := time.Now()
		err = use(ctx, newSession(conn, ch))
		_ = ch.Close()
		if time.Since(began) >= stableSession {
			b.Reset()
		}
		if ctx.Err() != nil || !errors.Is(err, errChannelLost) || conn.IsClosed() {
			return err
		}
		d := b.Next()
		log.Info("reopening rabbitmq channel", "retry_in", d.String())
		if !sink.Sleep(ctx, d) {
			return nil
		}
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
