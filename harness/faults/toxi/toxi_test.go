package toxi_test

import (
	"context"
	"io"
	"net"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/faults"
	"github.com/meshproof/meshproof/harness/faults/toxi"
)

var (
	_ faults.Links = (*toxi.Server)(nil)
	_ faults.Links = (*toxi.Client)(nil)
)

// echoServer answers every byte it reads on 127.0.0.1 until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(c, c) })
		}
	})
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}

// roundTrip sends a line over c and waits for its echo, returning the time
// it took, or an error when nothing came back within limit.
func roundTrip(c net.Conn, limit time.Duration) (time.Duration, error) {
	msg := []byte("ping\n")
	begin := time.Now()
	if err := c.SetDeadline(begin.Add(limit)); err != nil {
		return 0, err
	}
	if _, err := c.Write(msg); err != nil {
		return 0, err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return 0, err
	}
	return time.Since(begin), nil
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func newServer(t *testing.T) *toxi.Server {
	t.Helper()
	s := toxi.NewServer()
	t.Cleanup(func() { assert.NoError(t, s.Close()) })
	return s
}

// checkLatency drives the link through links and measures it on one
// long-lived connection, as a gRPC client would hold it.
func checkLatency(t *testing.T, links faults.Links, link, proxyAddr string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := dial(t, proxyAddr)

	base, err := roundTrip(c, 2*time.Second)
	require.NoError(t, err)
	assert.Less(t, base, 100*time.Millisecond, "an untouched link is fast")

	const added = 200 * time.Millisecond
	require.NoError(t, links.Latency(ctx, link, added))
	slow, err := roundTrip(c, 2*time.Second)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, slow, added, "latency applies to an open connection")
	assert.Less(t, slow, added+150*time.Millisecond, "and once per round trip")

	// A second latency replaces the first rather than stacking or failing.
	require.NoError(t, links.Latency(ctx, link, 100*time.Millisecond))
	again, err := roundTrip(c, 2*time.Second)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, again, 100*time.Millisecond)
	assert.Less(t, again, added)

	require.NoError(t, links.Heal(ctx, link))
	healed, err := roundTrip(c, 2*time.Second)
	require.NoError(t, err)
	assert.Less(t, healed, 100*time.Millisecond, "heal restores the link")
	require.NoError(t, links.Heal(ctx, link), "healing a healthy link is fine")
}

func checkDrop(t *testing.T, links faults.Links, link, proxyAddr string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := dial(t, proxyAddr)
	_, err := roundTrip(c, 2*time.Second)
	require.NoError(t, err)

	require.NoError(t, links.Drop(ctx, link))
	_, err = roundTrip(c, 300*time.Millisecond)
	var ne net.Error
	require.ErrorAs(t, err, &ne, "nothing comes back while the link drops")
	assert.True(t, ne.Timeout(), "the connection stays open: a timeout, not a reset (%v)", err)

	require.NoError(t, links.Heal(ctx, link))
	fresh := dial(t, proxyAddr)
	d, err := roundTrip(fresh, 2*time.Second)
	require.NoError(t, err, "after heal the link carries data again")
	assert.Less(t, d, 100*time.Millisecond)
}

func TestServerLatencyBetweenLocalEndpoints(t *testing.T) {
	s := newServer(t)
	addr, err := s.Proxy(context.Background(), "echo", 7, echoServer(t))
	require.NoError(t, err)
	host, _, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", host, "proxies listen on loopback only")
	checkLatency(t, s, "echo:7", addr)
}

func TestServerDrop(t *testing.T) {
	s := newServer(t)
	addr, err := s.Proxy(context.Background(), "echo", 7, echoServer(t))
	require.NoError(t, err)
	checkDrop(t, s, "echo:7", addr)
}

func TestServerRejects(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	_, err := s.Proxy(ctx, "echo", 7, echoServer(t))
	require.NoError(t, err)
	_, err = s.Proxy(ctx, "echo", 7, "127.0.0.1:1")
	assert.ErrorContains(t, err, "already exists")
	assert.ErrorContains(t, s.Latency(ctx, "other:1", time.Second), "no proxy in front of other:1")
}

func TestServerCloseEndsConnections(t *testing.T) {
	s := toxi.NewServer()
	addr, err := s.Proxy(context.Background(), "echo", 7, echoServer(t))
	require.NoError(t, err)
	c := dial(t, addr)
	_, err = roundTrip(c, 2*time.Second)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	_, err = roundTrip(c, 2*time.Second)
	assert.Error(t, err, "the proxied connection is closed")
	_, err = net.DialTimeout("tcp", addr, time.Second)
	assert.Error(t, err, "the proxy no longer listens")
	_, err = s.Proxy(context.Background(), "late", 1, "127.0.0.1:1")
	assert.ErrorContains(t, err, "closed")
}

// TestClient drives a toxiproxy through its HTTP API, as the docker
// backend's toxiproxy container would be driven.
func TestClient(t *testing.T) {
	s := newServer(t)
	api := httptest.NewServer(s.Handler())
	t.Cleanup(api.Close)
	c := toxi.NewClient(api.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	addr, err := c.CreateProxy(ctx, "echo:7", "127.0.0.1:0", echoServer(t))
	require.NoError(t, err)
	require.NotEmpty(t, addr)
	checkLatency(t, c, "echo:7", addr)

	addr2, err := c.CreateProxy(ctx, "echo:8", "127.0.0.1:0", echoServer(t))
	require.NoError(t, err)
	checkDrop(t, c, "echo:8", addr2)

	_, err = c.CreateProxy(ctx, "echo:7", "127.0.0.1:0", "127.0.0.1:1")
	assert.ErrorContains(t, err, "409")
	assert.ErrorContains(t, c.Latency(ctx, "nosuch:1", time.Second), "404")
}
