// Package server implements greeting.v3.GreetingService for every role: add
// this role's greeting, store it in the role's sinks, call the peers (one
// shared client each) and return all greetings in peer order. A failing
// peer becomes a gRPC error that names it; nothing here exits the process.
package server

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/metadata"

	"github.com/meshproof/meshproof/mesh/defects"
	"github.com/meshproof/meshproof/mesh/sink"
	"github.com/meshproof/meshproof/mesh/sink/amqpsink"
	"github.com/meshproof/meshproof/mesh/telemetry"
	greetingv3 "github.com/meshproof/meshproof/proto/greeting/v3"
)

// ForwardedHeaders travel from each request to every downstream call, as
// the seed forwarded them. Trace headers (traceparent, x-b3-*) are not in
// the list: the propagator rewrites those per hop with the current span.
var ForwardedHeaders = []string{"x-request-id", "x-ot-span-context"}

// Peer is one downstream service and its shared client.
type Peer struct {
	Name   string
	Client greetingv3.GreetingServiceClient
}

// Settings are the per-role values of the service.
type Settings struct {
	Role        string
	ServiceName string
	Message     string
	CallTimeout time.Duration
	Sequential  bool
}

// Server is the GreetingService of one role.
type Server struct {
	greetingv3.UnimplementedGreetingServiceServer
	set      Settings
	peers    []Peer
	sinks    []sink.Writer
	log      *slog.Logger
	metrics  *telemetry.Metrics
	hostname string
}

// New builds the service.
func New(set Settings, peers []Peer, sinks []sink.Writer, tel *telemetry.Telemetry) *Server {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	return &Server{set: set, peers: peers, sinks: sinks, log: tel.Logger, metrics: tel.Metrics, hostname: host}
}

// Greeting answers with this role's greeting followed by every peer's
// greetings, in peer order (A, B, D, E, G, H, C from service-a).
func (s *Server) Greeting(ctx context.Context, _ *greetingv3.GreetingRequest) (*greetingv3.GreetingResponse, error) {
	own := &greetingv3.Greeting{
		Id:       uuid.NewString(),
		Service:  s.set.ServiceName,
		Message:  s.set.Message,
		Created:  time.Now().UTC().Format(time.RFC3339Nano),
		Hostname: s.hostname,
	}
	if err := s.store(ctx, own); err != nil {
		return nil, err
	}
	if defects.Active(defects.BSlow) {
		sink.Sleep(ctx, 300*time.Millisecond) // b-slow: 300 ms of nothing
	}
	if defects.Active(defects.CErrorLog) {
		s.log.ErrorContext(ctx, "greeting handled badly", "id", own.GetId()) // c-error-log
	}
	results, err := s.callPeers(ctx, own)
	if err != nil {
		return nil, err
	}
	out := []*greetingv3.Greeting{own}
	for _, r := range results {
		out = append(out, r...)
	}
	s.log.InfoContext(ctx, "greeting handled", "id", own.GetId(), "greetings", len(out))
	return &greetingv3.GreetingResponse{Greeting: out}, nil
}

func (s *Server) store(ctx context.Context, g *greetingv3.Greeting) error {
	for _, w := range s.sinks {
		wctx, cancel := context.WithTimeout(ctx, s.set.CallTimeout)
		_, err := w.Write(wctx, g)
		cancel()
		s.metrics.SinkResult(w.Name(), err)
		if err == nil && w.Name() == amqpsink.SinkName {
			s.metrics.Published.Inc()
		}
		if err != nil {
			s.log.ErrorContext(ctx, "sink write failed", "sink", w.Name(), "id", g.GetId(), "err", err)
			return sinkError(s.set.Role, w.Name(), err)
		}
	}
	return nil
}

// callPeers calls every peer with the caller's forwarded headers and a
// deadline; concurrently unless Sequential. results[i] belongs to peers[i].
func (s *Server) callPeers(ctx context.Context, own *greetingv3.Greeting) ([][]*greetingv3.Greeting, error) {
	results := make([][]*greetingv3.Greeting, len(s.peers))
	if len(s.peers) == 0 {
		return results, nil
	}
	out := metadata.MD{}
	if in, ok := metadata.FromIncomingContext(ctx); ok {
		for _, h := range ForwardedHeaders {
			if v := in.Get(h); len(v) > 0 {
				out.Set(h, v...)
			}
		}
	}
	octx := metadata.NewOutgoingContext(ctx, out)
	if s.log.Enabled(ctx, slog.LevelDebug) {
		s.log.DebugContext(ctx, "headersOut", "headers", out)
	}
	errs := make([]error, len(s.peers))
	call := func(i int) {
		cctx, cancel := context.WithTimeout(octx, s.set.CallTimeout)
		defer cancel()
		resp, err := s.peers[i].Client.Greeting(cctx, &greetingv3.GreetingRequest{Greeting: own})
		if err != nil {
			wrapped, origin := downstreamError(cctx, s.peers[i].Name, err)
			if origin {
				s.log.ErrorContext(ctx, "downstream call failed", "peer", s.peers[i].Name, "err", err)
			} else {
				s.log.WarnContext(ctx, "downstream call failed further down", "peer", s.peers[i].Name, "failing_service", FailingService(wrapped))
			}
			errs[i] = wrapped
			return
		}
		results[i] = resp.GetGreeting()
	}
	if s.set.Sequential {
		for i := range s.peers {
			if call(i); errs[i] != nil {
				return nil, errs[i]
			}
		}
		return results, nil
	}
	var wg sync.WaitGroup
	for i := range s.peers {
		wg.Go(func() { call(i) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return results, nil
}
