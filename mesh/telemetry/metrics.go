package telemetry

import (
	"runtime"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/meshproof/meshproof/mesh/defects"
)

// Metrics are the Prometheus series of one role. Every series carries
// service=<role> through a wrapping registerer, so one Prometheus query can
// tell the nine processes apart without relying on scrape labels.
type Metrics struct {
	// Registry gathers this role's series (served on /metrics).
	Registry *prometheus.Registry

	GRPCServer *grpcprom.ServerMetrics
	GRPCClient *grpcprom.ClientMetrics

	Published    prometheus.Counter
	Consumed     prometheus.Counter
	Processed    prometheus.Counter
	Redelivered  prometheus.Counter
	SinkWrites   *prometheus.CounterVec
	SpansDropped prometheus.Counter
}

// latencyBuckets resolve the sub-millisecond hops of a loopback mesh as well
// as multi-second timeouts.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// NewMetrics registers the role's series. sinks are pre-initialised at 0 for
// both results, so a `delta:` query has a start value before the first write.
func NewMetrics(service, version string, sinks ...string) *Metrics {
	reg := prometheus.NewRegistry()
	r := prometheus.WrapRegistererWith(prometheus.Labels{"service": service}, reg)
	m := &Metrics{
		Registry: reg,
		GRPCServer: grpcprom.NewServerMetrics(
			grpcprom.WithServerHandlingTimeHistogram(grpcprom.WithHistogramBuckets(latencyBuckets))),
		GRPCClient: grpcprom.NewClientMetrics(
			grpcprom.WithClientHandlingTimeHistogram(grpcprom.WithHistogramBuckets(latencyBuckets))),
		Published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "greeting_messages_published_total",
			Help: "Greetings published to RabbitMQ and confirmed by the broker.",
		}),
		Consumed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "greeting_messages_consumed_total",
			Help: "Distinct greetings consumed from RabbitMQ, stored and acked (redeliveries of a stored greeting are not counted again).",
		}),
		// Processed and Redelivered let a scenario tell redeliveries from
		// double effects: every delivery is processed, only fresh ones count
		// as consumed, and the difference are duplicates absorbed by the
		// stores' idempotent writes.
		Processed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "greeting_messages_processed_total",
			Help: "Deliveries consumed from RabbitMQ and stored (or found stored) before the ack, redeliveries included.",
		}),
		Redelivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "greeting_messages_redelivered_total",
			Help: "Deliveries of a greeting that was already stored (a redelivery), absorbed without a second write.",
		}),
		SinkWrites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "greeting_sink_writes_total",
			Help: "Writes to a store or broker, by sink and result (ok, error).",
		}, []string{"sink", "result"}),
		SpansDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "greeting_otel_spans_dropped_total",
			Help: "Finished spans dropped because the export queue was full.",
		}),
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "greeting_build_info",
		Help:        "Always 1; labels name the build.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	buildInfo.Set(1)
	for _, s := range sinks {
		m.SinkWrites.WithLabelValues(s, "ok")
		m.SinkWrites.WithLabelValues(s, "error")
	}
	r.MustRegister(m.GRPCServer, m.GRPCClient, m.Published, m.Consumed, m.Processed, m.Redelivered, m.SinkWrites, m.SpansDropped, buildInfo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if defects.Active(defects.FConsumedTwice) {
		m.Consumed = twice{m.Consumed} // registered above; only Inc changes
	}
	return m
}

// twice is the f-consumed-counts-twice defect: each Inc adds 2.
type twice struct{ prometheus.Counter }

func (t twice) Inc() { t.Add(2) }

// SinkResult counts one write.
func (m *Metrics) SinkResult(sink string, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.SinkWrites.WithLabelValues(sink, result).Inc()
}
