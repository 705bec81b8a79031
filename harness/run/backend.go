package run

import (
	"context"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/meshproof/meshproof/harness/backend/docker"
	"github.com/meshproof/meshproof/harness/backend/local"
	"github.com/meshproof/meshproof/harness/environment"
)

// SelectBackend returns the named backend; "auto" picks docker when a daemon
// answers and local otherwise, so the same command works on a laptop with
// Docker and on a machine without it.
func SelectBackend(ctx context.Context, name string) (environment.Backend, error) {
	switch name {
	case "", "auto":
		if DockerAvailable(ctx) {
			return docker.New(), nil
		}
		return local.New(), nil
	case "docker":
		return docker.New(), nil
	case "local":
		return local.New(), nil
	}
	return nil, inputErr("--backend %q: want auto, docker or local", name)
}

// DockerAvailable reports whether a Docker daemon answers a ping within a
// second, on DOCKER_HOST or the default socket.
func DockerAvailable(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		host = "unix:///var/run/docker.sock"
	}
	var hc http.Client
	url := "http://docker/_ping"
	switch {
	case strings.HasPrefix(host, "unix://"):
		path := strings.TrimPrefix(host, "unix://")
		hc.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}}
	case strings.HasPrefix(host, "tcp://"):
		url = "http://" + strings.TrimPrefix(host, "tcp://") + "/_ping"
	default:
		return false
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// allBackends are the backends GC and Down sweep.
func allBackends(ctx context.Context) []environment.Backend {
	bs := []environment.Backend{local.New()}
	if DockerAvailable(ctx) {
		bs = append(bs, docker.New())
	}
	return bs
}
