// Command mongodb-standin serves the MongoDB wire protocol from FerretDB
// embedded with its SQLite handler. It stands in for mongo:7 where no image
// registry is reachable (offline images) and for the local backend, so one
// small static program covers both.
//
// FerretDB is embedded rather than run through its own cmd/ferretdb because
// that command panics when built from the module proxy (it needs a
// version.txt that only its release build writes).
//
// Usage:
//
//	mongodb-standin [-listen 127.0.0.1:27017] [-data-dir DIR]
//	mongodb-standin probe ADDR     # exit 0 when a MongoDB ping answers
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "probe" {
		return probeCmd(args[1:], stderr)
	}
	fs := flag.NewFlagSet("mongodb-standin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:27017", "TCP address to serve the MongoDB wire protocol on")
	dataDir := fs.String("data-dir", "", "directory for the SQLite files; kept on exit (default: a temp dir removed on exit)")
	probeAddr := fs.String("probe", "", "ping the MongoDB server at this address and exit 0 when it answers")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *probeAddr != "" {
		return probeCmd([]string{*probeAddr}, stderr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, *listen, *dataDir, stderr); err != nil {
		fmt.Fprintf(stderr, "mongodb-standin: %v\n", err)
		return 1
	}
	return 0
}

// serve runs FerretDB until ctx ends. Without dataDir the store lives in a
// temp dir that is removed on exit, so every run starts empty.
func serve(ctx context.Context, listen, dataDir string, stderr io.Writer) error {
	if dataDir == "" {
		tmp, err := os.MkdirTemp("", "mongodb-standin-")
		if err != nil {
			return fmt.Errorf("create data dir: %w", err)
		}
		defer os.RemoveAll(tmp)
		dataDir = tmp
	} else if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: listen},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + dataDir + "/",
	})
	if err != nil {
		return fmt.Errorf("start ferretdb: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	// MongoDBURI blocks until the listener is bound, so this line also
	// tells a reader of the log that the port is open.
	fmt.Fprintf(stderr, "mongodb-standin: serving %s (data %s)\n", f.MongoDBURI(), dataDir)
	return <-done
}

func probeCmd(args []string, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: mongodb-standin probe HOST:PORT")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := ping(ctx, args[0]); err != nil {
		fmt.Fprintf(stderr, "mongodb-standin probe: %v\n", err)
		return 1
	}
	return 0
}

// ping is a protocol-level check: a TCP accept is not enough, the server
// must answer the ping command.
func ping(ctx context.Context, addr string) error {
	uri := addr
	if len(uri) < 10 || uri[:10] != "mongodb://" {
		uri = "mongodb://" + addr + "/"
	}
	client, err := mongo.Connect(options.Client().ApplyURI(uri).
		SetServerSelectionTimeout(2 * time.Second).SetConnectTimeout(2 * time.Second))
	if err != nil {
		return fmt.Errorf("connect %s: %w", addr, err)
	}
	defer client.Disconnect(context.Background())
	if err := client.Ping(ctx, nil); err != nil {
		return fmt.Errorf("ping %s: %w", addr, err)
	}
	return nil
}
