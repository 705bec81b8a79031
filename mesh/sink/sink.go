// Package sink defines what every store of the greeting mesh looks like to a
// role: connect, write one greeting idempotently, close. The implementations
// live in sub-packages, one per client library, so a role links only what it
// uses in tests and the interface stays the seam for fakes.
package sink

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	greetingv3 "github.com/meshproof/meshproof/proto/greeting/v3"
)

// Writer stores greetings. Write is idempotent by greeting id: writing the
// same greeting twice stores it once and reports fresh=false the second time,
// which is what lets a consumer count each greeting exactly once.
type Writer interface {
	// Name is the sink label of greeting_sink_writes_total.
	Name() string
	// Connect makes one attempt to reach the store (and prepare it: schema,
	// bucket, queue). Callers retry; see ConnectWithRetry.
	Connect(ctx context.Context) error
	Write(ctx context.Context, g *greetingv3.Greeting) (fresh bool, err error)
	Close(ctx context.Context) error
}

// Created is the greeting's creation time, or now when it does not parse
// (greetings from the seed's services carry time.Time.String()).
func Created(g *greetingv3.Greeting) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, g.GetCreated()); err == nil {
		return t.UTC()
	}
	return time.Now().UTC()
}

// TraceID is the trace of ctx, stored next to data so a row leads to its trace.
func TraceID(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		return sc.TraceID().String()
	}
	return ""
}

// StartSpan opens a CLIENT span for one store operation.
func StartSpan(ctx context.Context, tr trace.Tracer, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return tr.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

// EndSpan records err (if any) and ends the span.
func EndSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// Backoff is the delay schedule for reconnecting: doubling from Min, capped at Max.
type Backoff struct {
	Min, Max time.Duration
	cur      time.Duration
}

// Next returns the next delay.
func (b *Backoff) Next() time.Duration {
	if b.cur == 0 {
		b.cur = b.Min
	} else if b.cur *= 2; b.cur > b.Max {
		b.cur = b.Max
	}
	return b.cur
}

// Reset starts over from Min (after a success).
func (b *Backoff) Reset() { b.cur = 0 }

// Sleep waits d or until ctx ends; it reports whether ctx is still live.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// ConnectWithRetry calls w.Connect until it succeeds or ctx ends. Each
// attempt gets attemptTimeout; failures go to onRetry (which logs at warn:
// a store that is still starting is normal, not an error).
func ConnectWithRetry(ctx context.Context, w Writer, attemptTimeout time.Duration, onRetry func(error, time.Duration)) error {
	b := Backoff{Min: 200 * time.Millisecond, Max: 5 * time.Second}
	for {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		err := w.Connect(actx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d := b.Next()
		if onRetry != nil {
			onRetry(err, d)
		}
		if !Sleep(ctx, d) {
			return ctx.Err()
		}
	}
}
