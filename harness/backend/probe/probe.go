// Package probe holds the readiness checks both backends use. Each check is
// a protocol-level call — a gRPC health check, an HTTP 2xx, a SQL ping, a
// Mongo ping, an AMQP handshake — rather than a log-line match, because the
// stand-ins and the upstream images log differently but speak the same
// protocols.
package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/meshproof/meshproof/harness/topology"
)

// Spec is one readiness check against a reachable address.
type Spec struct {
	Type topology.ProbeType
	// Addr is host:port as the harness reaches it.
	Addr string
	// Path for http probes; "/" when empty.
	Path string
	// DSN for sql probes (required) and amqp probes (optional; default
	// amqp://guest:guest@Addr/). The caller rewrites service references
	// in it to reachable addresses first.
	DSN string
}

// String names the check for error messages.
func (s Spec) String() string {
	switch s.Type {
	case topology.ProbeHTTP:
		return fmt.Sprintf("http probe GET http://%s%s", s.Addr, s.path())
	default:
		return fmt.Sprintf("%s probe %s", s.Type, s.Addr)
	}
}

func (s Spec) path() string {
	if s.Path == "" {
		return "/"
	}
	if !strings.HasPrefix(s.Path, "/") {
		return "/" + s.Path
	}
	return s.Path
}

// ErrPermanent marks a failure no retry can mend (the service does not
// speak the probe's protocol): Wait gives up at once instead of retrying
// until the readiness deadline, and the message names the fix.
var ErrPermanent = errors.New("will not pass by waiting")

// attemptTimeout bounds one check, so a hung server cannot eat the whole
// readiness deadline in a single attempt.
const attemptTimeout = 3 * time.Second

// Check runs the check once.
func Check(ctx context.Context, s Spec) error {
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	var err error
	switch s.Type {
	case topology.ProbeTCP:
		err = checkTCP(ctx, s.Addr)
	case topology.ProbeHTTP:
		err = checkHTTP(ctx, "http://"+s.Addr+s.path())
	case topology.ProbeGRPCHealth:
		err = checkGRPC(ctx, s.Addr)
	case topology.ProbeSQL:
		err = checkSQL(ctx, s.DSN)
	case topology.ProbeMongo:
		err = checkMongo(ctx, s.Addr)
	case topology.ProbeAMQP:
		dsn := s.DSN
		if dsn == "" {
			dsn = "amqp://guest:guest@" + s.Addr + "/"
		}
		err = checkAMQP(ctx, dsn)
	default:
		return fmt.Errorf("probe type %q is unknown", s.Type)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", s, err)
	}
	return nil
}

// Wait repeats Check every interval until it passes or ctx ends; the
// error then carries the last failure, which is what a person debugging a
// slow start needs to see.
func Wait(ctx context.Context, s Spec, interval time.Duration) error {
	if interval <= 0 {
		interval = 200 * time.Millisecond
	}
	t := time.NewTimer(0)
	defer t.Stop()
	var last error
	for {
		select {
		case <-ctx.Done():
			if last == nil {
				last = fmt.Errorf("%s: not attempted", s)
			}
			return fmt.Errorf("not ready: %w (%w)", last, ctx.Err())
		case <-t.C:
		}
		if last = Check(ctx, s); last == nil {
			return nil
		}
		if errors.Is(last, ErrPermanent) {
			return fmt.Errorf("not ready: %w", last)
		}
		t.Reset(interval)
	}
}

func checkTCP(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}

func checkHTTP(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	// No keep-alive: a probe must not hold connections the service counts.
	tr := &http.Transport{DisableKeepAlives: true, Proxy: nil}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

func checkGRPC(ctx context.Context, addr string) error {
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(false))
	if status.Code(err) == codes.Unimplemented {
		return fmt.Errorf("%w: the server answers gRPC but does not implement grpc.health.v1.Health; register the health service, or set x-meshproof.probe.type: tcp for this service", ErrPermanent)
	}
	if err != nil {
		return err
	}
	if st := resp.GetStatus(); st != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("health status %s", st)
	}
	return nil
}

func checkSQL(ctx context.Context, dsn string) error {
	if dsn == "" {
		return errors.New("sql probe needs a dsn")
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer closeWithin(func(ctx context.Context) { _ = conn.Close(ctx) })
	return conn.Ping(ctx)
}

func checkMongo(ctx context.Context, addr string) error {
	deadline, _ := ctx.Deadline()
	client, err := mongo.Connect(options.Client().
		ApplyURI("mongodb://" + addr + "/").
		SetDirect(true).
		SetServerSelectionTimeout(time.Until(deadline)).
		SetConnectTimeout(time.Until(deadline)))
	if err != nil {
		return err
	}
	defer closeWithin(func(ctx context.Context) { _ = client.Disconnect(ctx) })
	return client.Ping(ctx, nil)
}

func checkAMQP(ctx context.Context, dsn string) error {
	deadline, _ := ctx.Deadline()
	conn, err := amqp.DialConfig(dsn, amqp.Config{
		Dial: func(network, addr string) (net.Conn, error) {
			d := net.Dialer{Deadline: deadline}
			c, err := d.DialContext(ctx, network, addr)
			if err == nil && !deadline.IsZero() {
				// Bound the AMQP handshake too: a broker that accepts TCP
				// but never speaks (starting, paused) must not hang Check.
				err = c.SetDeadline(deadline)
			}
			return c, err
		},
	})
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	return ch.Close()
}

// closeWithin closes a probe's client under a short deadline of its own, so
// a paused or half-started store cannot hang the probe on the way out.
func closeWithin(closeFn func(context.Context)) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	closeFn(ctx)
}
