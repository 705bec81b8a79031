package load

import (
	"context"
	"fmt"
	"net"
	"net/url"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
)

// dialTCP opens and closes one TCP connection to the target's host:port.
func dialTCP(ctx context.Context, target string) error {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return fmt.Errorf("load target %q: not a URL with host:port", target)
	}
	host := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return fmt.Errorf("load target %s unreachable: %w", target, err)
	}
	_ = c.Close()
	return nil
}

// waitReady connects conn and waits until it is ready, failing on the first
// transient failure rather than retrying until the deadline.
func waitReady(ctx context.Context, conn *grpc.ClientConn, target string) error {
	conn.Connect()
	for {
		s := conn.GetState()
		switch s {
		case connectivity.Ready:
			return nil
		case connectivity.TransientFailure, connectivity.Shutdown:
			return fmt.Errorf("load target %s unreachable: grpc connection %s", target, s)
		}
		if !conn.WaitForStateChange(ctx, s) {
			return fmt.Errorf("load target %s unreachable: %w", target, ctx.Err())
		}
	}
}
