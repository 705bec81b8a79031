// Package role wires one process of the greeting mesh from its Config:
// telemetry, listeners, the gRPC (or gateway HTTP) server, peer clients,
// sinks and, for service-f, the RabbitMQ consumer. Start returns once the
// listeners are bound, so tests can run the whole mesh in one process on
// 127.0.0.1:0 and read the real addresses back.
package role

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/stats"

	"github.com/meshproof/meshproof/mesh/config"
	"github.com/meshproof/meshproof/mesh/defects"
	"github.com/meshproof/meshproof/mesh/gateway"
	"github.com/meshproof/meshproof/mesh/server"
	"github.com/meshproof/meshproof/mesh/sink"
	"github.com/meshproof/meshproof/mesh/telemetry"
	greetingv3 "github.com/meshproof/meshproof/proto/greeting/v3"
)

// ShutdownTimeout bounds a graceful stop (SIGTERM must exit within 10 s).
const ShutdownTimeout = 8 * time.Second

// Option configures Start.
type Option func(*options)

type options struct {
	tel     []telemetry.Option
	version string
}

// WithTelemetry passes options to telemetry.New (span recorder, log output).
func WithTelemetry(opts ...telemetry.Option) Option {
	return func(o *options) { o.tel = append(o.tel, opts...) }
}

// WithVersion sets the build version reported in metrics and spans.
func WithVersion(v string) Option { return func(o *options) { o.version = v } }

// Instance is one running role.
type Instance struct {
	cfg    *config.Config
	tel    *telemetry.Telemetry
	log    *slog.Logger
	lis    net.Listener
	mlis   net.Listener
	grpc   *grpc.Server
	health *health.Server
	http   *http.Server
	mhttp  *http.Server
	conns  []*grpc.ClientConn
	sinks  []sink.Writer

	bgCtx    context.Context    // ends when the role stops
	bgCancel context.CancelFunc // ends connect loops and the consumer
	bg       sync.WaitGroup
	serveErr chan error
	stopOnce sync.Once
	stopErr  error
}

// Addr is the bound gRPC (gateway: HTTP) address.
func (i *Instance) Addr() string { return i.lis.Addr().String() }

// MetricsAddr is the bound /metrics address, or "" when metrics are off.
func (i *Instance) MetricsAddr() string {
	if i.mlis == nil {
		return ""
	}
	return i.mlis.Addr().String()
}

// Telemetry exposes the role's providers (metrics registry, logger).
func (i *Instance) Telemetry() *telemetry.Telemetry { return i.tel }

// Done reports a server that stopped on its own (listener failure).
func (i *Instance) Done() <-chan error { return i.serveErr }

// Start binds the listeners and starts serving. Stores connect in the
// background; until they do, health answers NOT_SERVING.
func Start(ctx context.Context, cfg *config.Config, opts ...Option) (_ *Instance, err error) {
	o := options{version: "dev"}
	for _, opt := range opts {
		opt(&o)
	}
	var sinkNames []string
	for _, s := range configuredSinks(cfg) {
		sinkNames = append(sinkNames, string(s))
	}
	topts := append([]telemetry.Option{
		telemetry.WithLogLevel(cfg.LogLevel), telemetry.WithVersion(o.version), telemetry.WithSinks(sinkNames...),
	}, o.tel...)
	if cfg.OTLP {
		topts = append(topts, telemetry.WithOTLP(cfg.OTLPProtocol))
	}
	tel, err := telemetry.New(ctx, string(cfg.Role), topts...)
	if err != nil {
		return nil, fmt.Errorf("telemetry of %s: %w", cfg.Role, err)
	}
	in := &Instance{cfg: cfg, tel: tel, log: tel.Logger, serveErr: make(chan error, 2)}
	defer func() {
		if err != nil {
			in.closeAll(context.WithoutCancel(ctx))
		}
	}()
	if in.lis, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("listen %s on %s: %w", cfg.Role, cfg.Listen, err)
	}
	if cfg.MetricsListen != "" {
		if in.mlis, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
			return nil, fmt.Errorf("listen %s metrics on %s: %w", cfg.Role, cfg.MetricsListen, err)
		}
	}
	peers, err := in.dialPeers()
	if err != nil {
		return nil, err
	}
	if in.sinks, err = newSinks(cfg, tel); err != nil {
		return nil, err
	}
	bgCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	in.bgCtx, in.bgCancel = bgCtx, cancel

	if cfg.Role == config.Gateway {
		h, err := gateway.New(bgCtx, peers[0].Client, peers[0].Name, tel)
		if err != nil {
			return nil, fmt.Errorf("gateway routes: %w", err)
		}
		in.http = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		in.serve(func() error { return ignoreClosed(in.http.Serve(in.lis)) })
	} else {
		in.startGRPC(peers)
	}
	if in.mlis != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(tel.Metrics.Registry, promhttp.HandlerOpts{}))
		in.mhttp = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		in.serve(func() error { return ignoreClosed(in.mhttp.Serve(in.mlis)) })
	}
	in.bg.Go(func() { in.connect(bgCtx) })
	in.log.Info("role started", "role", string(cfg.Role), "listen", in.Addr(), "metrics", in.MetricsAddr(),
		"peers", len(peers), "sinks", sinkNames, "otlp", cfg.OTLP)
	return in, nil
}

func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

func (in *Instance) serve(f func() error) {
	go func() {
		if err := f(); err != nil {
			in.log.Error("server stopped", "err", err)
			in.serveErr <- err
		}
	}()
}

// onlyGreeting keeps health checks and reflection out of traces.
func onlyGreeting(info *stats.RPCTagInfo) bool {
	return info.FullMethodName == greetingv3.GreetingService_Greeting_FullMethodName
}

func (in *Instance) startGRPC(peers []server.Peer) {
	tel := in.tel
	in.grpc = grpc.NewServer(
		grpc.StatsHandler(otelgrpc.NewServerHandler(
			otelgrpc.WithTracerProvider(tel.TracerProvider),
			otelgrpc.WithPropagators(tel.Propagator),
			otelgrpc.WithFilter(onlyGreeting))),
		grpc.ChainUnaryInterceptor(tel.Metrics.GRPCServer.UnaryServerInterceptor()),
	)
	greetingv3.RegisterGreetingServiceServer(in.grpc, server.New(server.Settings{
		Role:        string(in.cfg.Role),
		ServiceName: in.cfg.ServiceName,
		Message:     in.cfg.Greeting,
		CallTimeout: in.cfg.CallTimeout,
		Sequential:  in.cfg.Sequential,
	}, peers, in.requestSinks(), tel))
	in.health = health.NewServer()
	in.setServing(len(in.sinks) == 0 && in.cfg.AMQP == nil)
	healthpb.RegisterHealthServer(in.grpc, in.health)
	reflection.Register(in.grpc)
	tel.Metrics.GRPCServer.InitializeMetrics(in.grpc)
	in.serve(func() error { return ignoreClosed(in.grpc.Serve(in.lis)) })
}

// requestSinks are written on each request; a consumer's stores are
// written from the queue only.
func (in *Instance) requestSinks() []sink.Writer {
	if in.cfg.AMQP != nil && in.cfg.AMQP.Consume {
		return nil
	}
	return in.sinks
}

func (in *Instance) setServing(ok bool) {
	if in.health == nil {
		return
	}
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ok {
		st = healthpb.HealthCheckResponse_SERVING
	}
	in.health.SetServingStatus("", st)
	in.health.SetServingStatus(greetingv3.GreetingService_ServiceDesc.ServiceName, st)
}

// dialPeers creates one client per peer. Backoff is capped at 1 s so a peer
// that comes back is used again within about a second; calls fail fast
// (no wait-for-ready) while it is away.
func (in *Instance) dialPeers() ([]server.Peer, error) {
	var peers []server.Peer
	for _, p := range in.cfg.Peers {
		if defects.Active(defects.ESkipsH) && p.Role == "service-h" {
			continue // e-skips-h: E never calls H
		}
		conn, err := grpc.NewClient(p.Addr,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithConnectParams(grpc.ConnectParams{
				Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
				MinConnectTimeout: time.Second,
			}),
			grpc.WithStatsHandler(otelgrpc.NewClientHandler(
				otelgrpc.WithTracerProvider(in.tel.TracerProvider),
				otelgrpc.WithPropagators(in.tel.Propagator))),
			grpc.WithChainUnaryInterceptor(in.tel.Metrics.GRPCClient.UnaryClientInterceptor()),
		)
		if err != nil {
			return nil, fmt.Errorf("client for %s at %s: %w", p.Role, p.Addr, err)
		}
		in.conns = append(in.conns, conn)
		peers = append(peers, server.Peer{Name: string(p.Role), Client: greetingv3.NewGreetingServiceClient(conn)})
	}
	return peers, nil
}

// Stop drains in-flight calls, stops consuming, closes stores and flushes
// telemetry. Safe to call more than once.
func (in *Instance) Stop(ctx context.Context) error {
	in.stopOnce.Do(func() { in.stopErr = in.closeAll(ctx) })
	return in.stopErr
}

func (in *Instance) closeAll(ctx context.Context) error {
	var errs []error
	if in.health != nil {
		in.health.Shutdown()
	}
	if in.http != nil {
		if err := in.http.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop gateway: %w", err))
		}
	}
	if in.grpc != nil {
		gracefulStop(ctx, in.grpc)
	}
	if in.lis != nil && in.grpc == nil && in.http == nil {
		_ = in.lis.Close()
	}
	if in.bgCancel != nil {
		in.bgCancel()
	}
	in.bg.Wait()
	for _, s := range in.sinks {
		if err := s.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", s.Name(), err))
		}
	}
	for _, c := range in.conns {
		_ = c.Close()
	}
	if in.mhttp != nil {
		_ = in.mhttp.Shutdown(ctx)
	} else if in.mlis != nil {
		_ = in.mlis.Close()
	}
	if err := in.tel.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// gracefulStop waits for in-flight calls, but not past ctx.
func gracefulStop(ctx context.Context, s *grpc.Server) {
	done := make(chan struct{})
	go func() { s.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.Stop()
		<-done
	}
}

// Run starts the role and serves until ctx ends (SIGTERM), then stops
// gracefully within ShutdownTimeout.
func Run(ctx context.Context, cfg *config.Config, opts ...Option) error {
	in, err := Start(ctx, cfg, opts...)
	if err != nil {
		return err
	}
	var serveErr error
	select {
	case <-ctx.Done():
		in.log.Info("shutting down", "reason", context.Cause(ctx).Error())
	case serveErr = <-in.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	if err := in.Stop(sctx); err != nil {
		return errors.Join(serveErr, err)
	}
	return serveErr
}
