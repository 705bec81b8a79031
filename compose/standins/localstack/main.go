// Command localstack-standin serves an in-memory S3 (gofakes3) with
// LocalStack's health endpoint, standing in for localstack/localstack where
// no image registry is reachable and for the local backend. Only S3 is
// offered, path-style (http://host:4566/bucket/key), which is what the
// mesh's aws-sdk-go-v2 client uses against LocalStack.
//
// Usage:
//
//	localstack-standin [-listen 127.0.0.1:4566] [-buckets a,b] [-init-dir DIR]
//	localstack-standin probe URL   # exit 0 when URL answers 2xx
//
// -init-dir reads DIR/buckets.txt (one bucket per line, # comments), the
// same file the real LocalStack's ready.d hook (fixtures/localstack) reads,
// so both paths create the same buckets from one list.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "probe" {
		return probeCmd(args[1:], stderr)
	}
	fs := flag.NewFlagSet("localstack-standin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:4566", "address to serve S3 and /_localstack/health on")
	buckets := fs.String("buckets", "", "comma-separated buckets to create at start")
	initDir := fs.String("init-dir", "", "directory whose buckets.txt lists buckets to create at start")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	names := splitList(*buckets)
	if *initDir != "" {
		more, err := readBucketFile(filepath.Join(*initDir, "buckets.txt"))
		if err != nil {
			fmt.Fprintf(stderr, "localstack-standin: %v\n", err)
			return 2
		}
		names = append(names, more...)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, *listen, names, stderr); err != nil {
		fmt.Fprintf(stderr, "localstack-standin: %v\n", err)
		return 1
	}
	return 0
}

// newHandler builds the S3 API with the buckets already created, plus the
// health endpoint that LocalStack's own healthchecks and ours poll.
func newHandler(buckets []string) (http.Handler, error) {
	backend := s3mem.New()
	for _, b := range buckets {
		if err := backend.CreateBucket(b); err != nil && !gofakes3.IsAlreadyExists(err) {
			return nil, fmt.Errorf("create bucket %q: %w", b, err)
		}
	}
	s3 := gofakes3.New(backend, gofakes3.WithHostBucket(false)).Server()
	mux := http.NewServeMux()
	mux.HandleFunc("/_localstack/health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"services": map[string]string{"s3": "running"},
			"edition":  "standin",
		})
	})
	mux.Handle("/", s3)
	return mux, nil
}

func serve(ctx context.Context, listen string, buckets []string, stderr io.Writer) error {
	h, err := newHandler(buckets)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", listen, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stderr, "localstack-standin: serving S3 on http://%s (buckets %v)\n", ln.Addr(), buckets)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// readBucketFile reads one bucket name per line; blank lines and lines
// starting with # are ignored. A missing file means no buckets.
func readBucketFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read buckets: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return out, nil
}

func probeCmd(args []string, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: localstack-standin probe URL|HOST:PORT")
		return 2
	}
	target := args[0]
	if !strings.Contains(target, "://") {
		target = "http://" + target + "/_localstack/health"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		fmt.Fprintf(stderr, "localstack-standin probe: %v\n", err)
		return 2
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "localstack-standin probe: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 != 2 {
		fmt.Fprintf(stderr, "localstack-standin probe: %s: %s\n", target, resp.Status)
		return 1
	}
	return 0
}
