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
// Docker and on a machine without it. A detached backend leaves what it
// starts running after the harness exits, safe from GC, until `down`.
func SelectBackend(ctx context.Context, name string, detached bool) (environment.Backend, error) {
	var dopts []docker.Option
	var lopts []local.Option
	if detached {
		dopts = append(dopts, docker.WithDetached())
		lopts = append(lopts, local.WithDetached())
	}
	switch name {
	case "", "auto":
		if DockerAvailable(ctx) {
			return docker.New(dopts...), nil
		}
		return local.New(lopts...), nil
	case "docker":
		return docker.New(dopts...), nil
	case "local":
		return local.New(lopts...), nil
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
