// Package telemetry sets up the three signals of one greeting role: OTLP
// traces (service.name = role), Prometheus metrics labelled service=<role>,
// and JSON logs carrying trace_id/span_id. Nothing here is global, so several
// roles can run in one test process, each with its own provider.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"go.opentelemetry.io/contrib/propagators/b3"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// InstrumentationName names the tracer of the mesh's own spans (sinks, AMQP).
const InstrumentationName = "github.com/meshproof/meshproof/mesh"

// Span queue sizing: the mesh at 500 requests/s produces 25 spans per
// request, 12 500 spans/s in all; one process sees a share of that. A queue
// of 16384 spans holds more than a second of the whole mesh, and batches of
// 2048 every 500 ms drain it faster than it fills.
const (
	spanQueueSize     = 16384
	spanBatchSize     = 2048
	spanBatchInterval = 500 * time.Millisecond
)

// Telemetry is the set of providers of one role.
type Telemetry struct {
	Service        string
	Logger         *slog.Logger
	Metrics        *Metrics
	TracerProvider *sdktrace.TracerProvider
	Propagator     propagation.TextMapPropagator
}

type options struct {
	processors   []sdktrace.SpanProcessor
	otlpProtocol string
	logWriter    io.Writer
	logLevel     slog.Leveler
	version      string
	sinks        []string
}

// Option configures New.
type Option func(*options)

// WithSpanProcessor adds a span processor, e.g. a tracetest.SpanRecorder in tests.
func WithSpanProcessor(sp sdktrace.SpanProcessor) Option {
	return func(o *options) { o.processors = append(o.processors, sp) }
}

// WithOTLP exports spans over OTLP ("grpc" or "http/protobuf"); the
// exporter reads the standard OTEL_EXPORTER_OTLP_* variables itself.
func WithOTLP(protocol string) Option { return func(o *options) { o.otlpProtocol = protocol } }

// WithLogOutput sets where JSON log lines go (default stdout).
func WithLogOutput(w io.Writer) Option { return func(o *options) { o.logWriter = w } }

// WithLogLevel sets the minimum level logged (default info).
func WithLogLevel(l slog.Leveler) Option { return func(o *options) { o.logLevel = l } }

// WithVersion sets the version label of greeting_build_info.
func WithVersion(v string) Option { return func(o *options) { o.version = v } }

// WithSinks pre-creates greeting_sink_writes_total series for these sinks.
func WithSinks(names ...string) Option {
	return func(o *options) { o.sinks = append(o.sinks, names...) }
}

// Propagator is what every role injects and extracts: W3C trace context and
// baggage, plus the seed's B3 headers (single and multi). B3 comes first so
// that, when both are present, traceparent (extracted last) wins.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(
		b3.New(b3.WithInjectEncoding(b3.B3MultipleHeader|b3.B3SingleHeader)),
		propagation.TraceContext{},
		propagation.Baggage{},
	)
}

// New builds the telemetry of one role. With no exporter and no processor,
// spans are still created (so trace_id appears in logs) but go nowhere.
func New(ctx context.Context, service string, opts ...Option) (*Telemetry, error) {
	o := options{logWriter: os.Stdout, logLevel: slog.LevelInfo, version: "dev"}
	for _, opt := range opts {
		opt(&o)
	}
	t := &Telemetry{
		Service:    service,
		Logger:     NewLogger(o.logWriter, service, o.logLevel),
		Metrics:    NewMetrics(service, o.version, o.sinks...),
		Propagator: Propagator(),
	}
	res, err := resource.Merge(resource.Default(), resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceName(service), semconv.ServiceVersion(o.version)))
	if err != nil {
		// A schema URL conflict only loses the schema; keep the attributes.
		res = resource.NewSchemaless(semconv.ServiceName(service), semconv.ServiceVersion(o.version))
	}
	tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	for _, sp := range o.processors {
		tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(sp))
	}
	if o.otlpProtocol != "" {
		exp, err := newExporter(ctx, o.otlpProtocol)
		if err != nil {
			return nil, err
		}
		bsp := sdktrace.NewBatchSpanProcessor(exp,
			sdktrace.WithMaxQueueSize(spanBatchSize*2),
			sdktrace.WithMaxExportBatchSize(spanBatchSize),
			sdktrace.WithBatchTimeout(spanBatchInterval),
			sdktrace.WithBlocking())
		tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(newCountingProcessor(bsp, spanQueueSize, t.Metrics.SpansDropped)))
	}
	t.TracerProvider = sdktrace.NewTracerProvider(tpOpts...)
	return t, nil
}

func newExporter(ctx context.Context, protocol string) (sdktrace.SpanExporter, error) {
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch protocol {
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	case "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	default:
		return nil, fmt.Errorf("otlp protocol %q: want grpc or http/protobuf", protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("otlp %s exporter: %w", protocol, err)
	}
	return exp, nil
}

// Tracer returns the tracer for the mesh's own spans.
func (t *Telemetry) Tracer() trace.Tracer {
	return t.TracerProvider.Tracer(InstrumentationName)
}

// Shutdown flushes pending spans; call it last, after servers stopped.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if err := t.TracerProvider.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("flush spans: %w", err)
	}
	return nil
}
