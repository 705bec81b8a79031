package role

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/meshproof/meshproof/mesh/config"
	"github.com/meshproof/meshproof/mesh/defects"
	"github.com/meshproof/meshproof/mesh/sink"
	"github.com/meshproof/meshproof/mesh/sink/amqpsink"
	"github.com/meshproof/meshproof/mesh/sink/mongosink"
	"github.com/meshproof/meshproof/mesh/sink/pgsink"
	"github.com/meshproof/meshproof/mesh/sink/s3sink"
	"github.com/meshproof/meshproof/mesh/telemetry"
	greetingv3 "github.com/meshproof/meshproof/proto/greeting/v3"
)

// connectAttempt bounds one attempt to reach a store.
const connectAttempt = 5 * time.Second

// consumerWorkers handle deliveries concurrently: one store round trip per
// message each, enough for the mesh's 500 requests/s target.
const consumerWorkers = 16

func configuredSinks(cfg *config.Config) []config.Sink {
	var out []config.Sink
	if cfg.Mongo != nil {
		out = append(out, config.SinkMongo)
	}
	if cfg.AMQP != nil && !cfg.AMQP.Consume {
		out = append(out, config.SinkAMQP)
	}
	if cfg.Postgres != nil {
		out = append(out, config.SinkPostgres)
	}
	if cfg.S3 != nil {
		out = append(out, config.SinkS3)
	}
	return out
}

// newSinks creates one client per store, in write order. A consumer's
// stores are written by the consumer, not on requests; they are returned
// all the same and the consumer picks them up (see connect).
func newSinks(cfg *config.Config, tel *telemetry.Telemetry) ([]sink.Writer, error) {
	var out []sink.Writer
	tr := tel.Tracer()
	if cfg.Mongo != nil {
		m, err := mongosink.New(cfg.Mongo.URI, cfg.Mongo.Database, cfg.Mongo.Collection, tr)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	if cfg.Postgres != nil {
		p, err := pgsink.New(cfg.Postgres.DSN, tr)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	if cfg.S3 != nil {
		out = append(out, s3sink.New(s3sink.Config{
			Bucket: cfg.S3.Bucket, Prefix: s3Prefix(cfg.Role), Endpoint: cfg.S3.Endpoint,
			Region: cfg.S3.Region, AccessKey: cfg.S3.AccessKey, SecretKey: cfg.S3.SecretKey,
		}, tr))
	}
	if cfg.AMQP != nil && !cfg.AMQP.Consume {
		prop := tel.Propagator
		if defects.Active(defects.DNoTraceHeaders) {
			prop = propagation.NewCompositeTextMapPropagator() // injects nothing
		}
		out = append(out, amqpsink.NewPublisher(cfg.AMQP.URL, cfg.AMQP.Queue, tr, prop, tel.Logger))
	}
	return out, nil
}

// connect brings every store up (retrying), then marks the role SERVING;
// a consumer role starts consuming only once its stores answer, so it never
// takes a message it cannot store.
func (in *Instance) connect(ctx context.Context) {
	for _, s := range in.sinks {
		err := sink.ConnectWithRetry(ctx, s, connectAttempt, func(err error, d time.Duration) {
			in.log.Warn("store not reachable yet; retrying", "sink", s.Name(), "err", err, "retry_in", d.String())
		})
		if err != nil {
			return // stopping
		}
		in.log.Info("store connected", "sink", s.Name())
	}
	if in.cfg.AMQP == nil || !in.cfg.AMQP.Consume {
		in.setServing(true)
		return
	}
	c := &amqpsink.Consumer{
		URL: in.cfg.AMQP.URL, Queue: in.cfg.AMQP.Queue, Workers: consumerWorkers,
		Tracer: in.tel.Tracer(), Prop: in.tel.Propagator, Log: in.log,
		Handle:     in.storeConsumed,
		OnReady:    func() { in.setServing(true) },
		OnLost:     in.consumerLost,
		OnConsumed: in.tel.Metrics.Consumed.Inc,
	}
	c.Run(ctx)
}

// consumerLost: a consumer that is not consuming is not serving, or the
// queue would grow behind a green health check until it is back (the
// consumer logs why).
func (in *Instance) consumerLost(error) { in.setServing(false) }

// storeConsumed writes a consumed greeting to every store; fresh is the
// last store's answer (the ledger, for service-f), the one written last.
func (in *Instance) storeConsumed(ctx context.Context, g *greetingv3.Greeting) (bool, error) {
	if in.stalls() {
		return in.stall()
	}
	if dropsGreeting() {
		return true, nil
	}
	fresh := true
	for _, s := range in.sinks {
		if skipsStore(s) {
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, in.cfg.CallTimeout)
		f, err := s.Write(wctx, g)
		cancel()
		in.tel.Metrics.SinkResult(s.Name(), err)
		if err != nil {
			in.log.ErrorContext(ctx, "store consumed greeting", "sink", s.Name(), "id", g.GetId(), "err", err)
			return false, fmt.Errorf("%s: %w", s.Name(), err)
		}
		in.writeCopy(ctx, s, g)
		fresh = f
	}
	in.tel.Metrics.Processed.Inc()
	if !fresh {
		in.tel.Metrics.Redelivered.Inc()
	}
	in.log.InfoContext(ctx, "greeting consumed", "id", g.GetId(), "fresh", fresh)
	return fresh, nil
}
