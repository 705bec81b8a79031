package telemetry

import (
	"context"
	"io"
	"log/slog"

	"go.opentelemetry.io/otel/trace"

	"github.com/meshproof/meshproof/mesh/defects"
)

// NewLogger returns the JSON logger every role uses: time, level, msg,
// service, source{function,file,line} (the seed's runtime formatter) and, on
// lines logged with a span in the context, trace_id and span_id — so a log
// line can be joined with its trace in Jaeger.
func NewLogger(w io.Writer, service string, level slog.Leveler) *slog.Logger {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{AddSource: true, Level: level})
	return slog.New(traceHandler{h}).With("service", service)
}

// traceHandler adds the span of the record's context.
type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() && !defects.Active(defects.ALogNoTraceID) {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(attrs)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}
