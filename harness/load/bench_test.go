package load_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/meshproof/meshproof/harness/load"
)

// BenchmarkHTTPClosed measures the engine's cost per request against a
// trivial in-process server (which shares the CPUs, so absolute figures are
// pessimistic): go test -run x -bench HTTPClosed -benchmem ./harness/load
func BenchmarkHTTPClosed(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()
	b.ReportAllocs()
	b.ResetTimer()
	res, err := load.Run(context.Background(), load.Config{Target: srv.URL, Users: 50, Requests: b.N})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(res.Throughput(), "req/s")
	if res.Errors > 0 {
		b.Fatalf("%d errors: %v", res.Errors, res.ErrorReasons)
	}
}

// BenchmarkGRPCClosed is the same for unary gRPC calls resolved by reflection.
func BenchmarkGRPCClosed(b *testing.B) {
	_, target := startGreeter(b, reflectionV1AndAlpha)
	b.ReportAllocs()
	b.ResetTimer()
	res, err := load.Run(context.Background(), load.Config{
		Target: target, Users: 50, Requests: b.N,
		GRPC: &load.GRPCCall{Method: "greeting.v3.GreetingService/Greeting", Data: greetingData},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(res.Throughput(), "req/s")
	if res.Errors > 0 {
		b.Fatalf("%d errors: %v", res.Errors, res.ErrorReasons)
	}
}
