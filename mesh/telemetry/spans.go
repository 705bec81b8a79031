package telemetry

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// countingProcessor sits in front of a blocking batch processor. The SDK's
// batch processor drops spans silently when its queue is full; here a full
// queue is counted in a metric instead, and a request never waits on export.
type countingProcessor struct {
	next    sdktrace.SpanProcessor
	queue   chan sdktrace.ReadOnlySpan
	dropped prometheus.Counter
	mu      sync.RWMutex
	closed  bool
	done    chan struct{}
}

func newCountingProcessor(next sdktrace.SpanProcessor, size int, dropped prometheus.Counter) *countingProcessor {
	p := &countingProcessor{next: next, queue: make(chan sdktrace.ReadOnlySpan, size), dropped: dropped, done: make(chan struct{})}
	go p.forward()
	return p
}

func (p *countingProcessor) forward() {
	defer close(p.done)
	for s := range p.queue {
		p.next.OnEnd(s)
	}
}

func (p *countingProcessor) OnStart(ctx context.Context, s sdktrace.ReadWriteSpan) {
	p.next.OnStart(ctx, s)
}

func (p *countingProcessor) OnEnd(s sdktrace.ReadOnlySpan) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return
	}
	select {
	case p.queue <- s:
	default:
		p.dropped.Inc()
	}
}

// ForceFlush waits until the queue has been handed over, then flushes.
func (p *countingProcessor) ForceFlush(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for len(p.queue) > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("flush span queue: %w", ctx.Err())
		case <-t.C:
		}
	}
	return p.next.ForceFlush(ctx)
}

func (p *countingProcessor) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.queue)
	}
	p.mu.Unlock()
	select {
	case <-p.done:
	case <-ctx.Done():
		return fmt.Errorf("drain span queue: %w", ctx.Err())
	}
	return p.next.Shutdown(ctx)
}
