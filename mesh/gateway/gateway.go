// Package gateway is the mesh's HTTP edge: grpc-gateway translating
// GET /api/greeting into a gRPC call to service-a. It starts the trace (or
// continues one from traceparent or the seed's B3 headers), forwards the
// seed's tracing headers as gRPC metadata, and turns a mesh failure into a
// 503 whose JSON body names the failing service.
package gateway

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/meshproof/meshproof/mesh/defects"
	"github.com/meshproof/meshproof/mesh/server"
	"github.com/meshproof/meshproof/mesh/telemetry"
	greetingv3 "github.com/meshproof/meshproof/proto/greeting/v3"
)

// SeedHeaders are copied from the HTTP request into gRPC metadata, as the
// seed's gateway did (Istio's tracing headers).
var SeedHeaders = []string{
	"x-request-id", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid",
	"x-b3-sampled", "x-b3-flags", "x-ot-span-context",
}

// ErrorBody is the JSON body of a failed request.
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
	// Service is where the failure started (e.g. "service-e").
	Service string `json:"service"`
}

// New returns the gateway's handler: /api/... to upstream (service-a's
// client), /healthz always 200 (peers never affect health).
func New(ctx context.Context, upstream greetingv3.GreetingServiceClient, upstreamName string, tel *telemetry.Telemetry) (http.Handler, error) {
	log := tel.Logger
	mux := runtime.NewServeMux(
		runtime.WithMetadata(func(ctx context.Context, r *http.Request) metadata.MD {
			md := metadata.MD{}
			for _, h := range SeedHeaders {
				if v := r.Header.Get(h); v != "" {
					md.Set(h, v)
				}
			}
			if log.Enabled(ctx, slog.LevelDebug) {
				log.DebugContext(ctx, "headersOut", "headers", md)
			}
			return md
		}),
		runtime.WithErrorHandler(errorHandler(log, upstreamName)),
	)
	if err := greetingv3.RegisterGreetingServiceHandlerClient(ctx, mux, upstream); err != nil {
		return nil, err
	}
	root := http.NewServeMux()
	root.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	root.Handle("/", mux)
	return otelhttp.NewHandler(root, "gateway",
		otelhttp.WithTracerProvider(tel.TracerProvider),
		otelhttp.WithPropagators(tel.Propagator),
		otelhttp.WithFilter(func(r *http.Request) bool { return r.URL.Path != "/healthz" }),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Path }),
	), nil
}

// errorHandler answers 503 for every failure of the mesh behind the gateway
// (a client error such as an unknown path keeps its own status).
func errorHandler(log *slog.Logger, upstream string) runtime.ErrorHandlerFunc {
	return func(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
		st := status.Convert(err)
		httpCode := runtime.HTTPStatusFromCode(st.Code())
		switch st.Code() {
		case codes.Unavailable, codes.DeadlineExceeded, codes.Internal, codes.Unknown, codes.Aborted, codes.ResourceExhausted:
			httpCode = http.StatusServiceUnavailable
		}
		failing := server.FailingService(err)
		if failing == "" && httpCode == http.StatusServiceUnavailable {
			failing = upstream
		}
		if defects.Active(defects.GatewayBlamesService) && failing != "" {
			failing = upstream // gateway-blames-upstream
		}
		if httpCode >= 500 && defects.Active(defects.Gateway200OnFailure) {
			writeEmpty(w) // gateway-200-on-peer-failure: the failure vanishes
			return
		}
		if httpCode >= 500 {
			// Every 5xx names the failing service, the upstream included, so
			// one log rule can tell who was blamed; the failure is logged at
			// error only where it started (the upstream itself failed).
			if failing == upstream {
				log.ErrorContext(ctx, "upstream call failed", "peer", upstream, "failing_service", failing, "err", st.Message())
			} else {
				log.WarnContext(ctx, "request failed in the mesh", "failing_service", failing, "err", st.Message())
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(httpCode)
		_ = json.NewEncoder(w).Encode(ErrorBody{Error: st.Message(), Code: st.Code().String(), Service: failing})
	}
}

// writeEmpty answers 200 with no greetings (the gateway-200-on-peer-failure
// defect only).
func writeEmpty(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(`{"greeting":[]}` + "\n"))
}
