package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	greetingv3 "github.com/meshproof/meshproof/proto/greeting/v3"
)

// The target server runs in a process of its own (`bench serve`), so that
// every load tool — ours, hey, wrk, ghz — competes for the CPU with the same
// server on equal terms, and the server's garbage never lands in the
// engine's profile or rusage.
//
// Endpoints:
//
//	GET /          "ok" — the trivial target for throughput.
//	GET /delay     answers after 2ms — a steady target for accuracy.
//	POST /stall?for=1s  makes every request to / or /delay that arrives in
//	               the next second wait until the second is over, and
//	               answers the stall window as unix nanoseconds.
//
// It also serves greeting.v3.GreetingService with health and reflection
// (the way every mesh role does) on a second port.
func cmdServe(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	delay := fs.Duration("delay", 2*time.Millisecond, "handler time of /delay")
	if err := fs.Parse(args); err != nil {
		return err
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen http: %w", err)
	}
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen grpc: %w", err)
	}
	var stallUntil atomic.Int64
	wait := func() {
		if until := stallUntil.Load(); until > 0 {
			if d := time.Until(time.Unix(0, until)); d > 0 {
				time.Sleep(d)
			}
		}
	}
	ok := []byte("ok")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		wait()
		_, _ = w.Write(ok)
	})
	mux.HandleFunc("GET /delay", func(w http.ResponseWriter, _ *http.Request) {
		wait()
		time.Sleep(*delay)
		_, _ = w.Write(ok)
	})
	mux.HandleFunc("POST /stall", func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.URL.Query().Get("for"))
		if err != nil || d <= 0 || d > 10*time.Second {
			http.Error(w, "want ?for=<duration up to 10s>", http.StatusBadRequest)
			return
		}
		start := time.Now()
		end := start.Add(d)
		stallUntil.Store(end.UnixNano())
		_ = json.NewEncoder(w).Encode(stallWindow{StartNs: start.UnixNano(), EndNs: end.UnixNano()})
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}

	gs := grpc.NewServer()
	greetingv3.RegisterGreetingServiceServer(gs, greeter{host: hostname()})
	hsrv := health.NewServer()
	healthpb.RegisterHealthServer(gs, hsrv)
	reflection.Register(gs)

	errc := make(chan error, 2)
	go func() { errc <- hs.Serve(hl) }()
	go func() { errc <- gs.Serve(gl) }()
	// The parent reads these lines to learn the ports; both listeners are
	// bound already, so the first request cannot be refused.
	fmt.Printf("http %s\ngrpc %s\n", hl.Addr(), gl.Addr())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	gs.Stop()
	return hs.Shutdown(ctx)
}

// stallWindow is the answer of POST /stall.
type stallWindow struct {
	StartNs int64 `json:"start_ns"`
	EndNs   int64 `json:"end_ns"`
}

// greeter answers like a leaf role of the mesh (service-c without its
// store): one greeting.
type greeter struct {
	greetingv3.UnimplementedGreetingServiceServer
	host string
}

func (g greeter) Greeting(_ context.Context, _ *greetingv3.GreetingRequest) (*greetingv3.GreetingResponse, error) {
	return &greetingv3.GreetingResponse{Greeting: []*greetingv3.Greeting{{
		Id:       "bench",
		Service:  "service-c",
		Message:  "Hello, from Service C!",
		Created:  time.Now().UTC().Format(time.RFC3339Nano),
		Hostname: g.host,
	}}}, nil
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}
