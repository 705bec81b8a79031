package docker

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"

	"github.com/meshproof/meshproof/harness/backend/probe"
	"github.com/meshproof/meshproof/harness/environment"
	"github.com/meshproof/meshproof/harness/faults/toxi"
	"github.com/meshproof/meshproof/harness/topology"
)

// Latency and drop faults need a proxy between a service and its consumers.
// A proxy in the harness process would listen on the host's 127.0.0.1,
// which containers on the run's bridge network cannot reach (and binding
// elsewhere would break the loopback-only rule), so a docker run with
// Options.Interpose runs a toxiproxy container of its own on the run
// network. Its upstreams are compose aliases, which survive a restart of
// the service behind it; consumers are pointed at it by rewriting their
// service:port references, exactly as the local backend points them at the
// in-process proxy.
const (
	// ProxyAlias is the toxiproxy container's name on the run network.
	ProxyAlias = "meshproof-toxiproxy"
	// DefaultProxyImage is used when Options.ProxyImage is empty; `meshproof
	// images` builds an offline stand-in and the runner passes its ref.
	DefaultProxyImage = "shopify/toxiproxy:2.12.0"
	proxyAPIPort      = 8474
	// proxyFirstPort is where the proxy listens for Interpose[0]; entry i
	// gets proxyFirstPort+i.
	proxyFirstPort = 20000
	proxyService   = "toxiproxy"
	proxyReady     = 60 * time.Second
)

// ProxyListen is the address inside the run network that consumers of
// Interpose[i] are pointed at.
func ProxyListen(i int) string {
	return net.JoinHostPort(ProxyAlias, strconv.Itoa(proxyFirstPort+i))
}

// startProxy starts the toxiproxy container, waits for its API and creates
// one proxy per Interpose entry. It records the container before waiting,
// so Down removes it whatever happens next.
func (e *env) startProxy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, proxyReady)
	defer cancel()
	image := e.opts.ProxyImage
	if image == "" {
		image = DefaultProxyImage
	}
	if _, err := e.cli.ImageInspect(ctx, image); err != nil {
		return fmt.Errorf("toxiproxy image %s is not present (latency/drop faults need it; build the offline one with `meshproof images`): %w", image, err)
	}
	labels := e.labels()
	labels[LabelService] = proxyService
	netName := e.network.Name
	apiPort := strconv.Itoa(proxyAPIPort) + "/tcp"
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:          image,
			Name:           containerName(e.opts.RunID, proxyService),
			ExposedPorts:   []string{apiPort},
			Labels:         labels,
			Networks:       []string{netName},
			NetworkAliases: map[string][]string{netName: {ProxyAlias}},
			HostConfigModifier: func(hc *container.HostConfig) {
				hc.PortBindings = loopbackBindings([]int{proxyAPIPort})
			},
		},
		Started: true,
		Logger:  tcLogger{e.b.cfg.log},
	})
	if c != nil {
		e.mu.Lock()
		e.proxyID = c.GetContainerID()
		e.mu.Unlock()
	}
	if err != nil {
		return fmt.Errorf("start toxiproxy (%s): %w", image, err)
	}
	api, err := e.proxyAPIAddr(ctx)
	if err != nil {
		return err
	}
	if err := probe.Wait(ctx, probe.Spec{Type: "http", Addr: api, Path: "/version"}, 100*time.Millisecond); err != nil {
		return fmt.Errorf("toxiproxy API on %s: %w", api, err)
	}
	cl := toxi.NewClient(api)
	for i, key := range e.opts.Interpose {
		if _, err := cl.CreateProxy(ctx, key, fmt.Sprintf("0.0.0.0:%d", proxyFirstPort+i), key); err != nil {
			return fmt.Errorf("interpose %s: %w", key, err)
		}
	}
	e.mu.Lock()
	e.proxyAPI = api
	e.mu.Unlock()
	return nil
}

// proxyAPIAddr reads the published 127.0.0.1 port of the toxiproxy API.
func (e *env) proxyAPIAddr(ctx context.Context) (string, error) {
	port, _ := network.PortFrom(proxyAPIPort, network.TCP)
	for {
		res, err := e.cli.ContainerInspect(ctx, e.proxyID, client.ContainerInspectOptions{})
		if err != nil {
			return "", fmt.Errorf("inspect toxiproxy: %w", err)
		}
		if ns := res.Container.NetworkSettings; ns != nil {
			for _, bnd := range ns.Ports[port] {
				if bnd.HostPort != "" && (!bnd.HostIP.IsValid() || bnd.HostIP == loopback) {
					return net.JoinHostPort(loopback.String(), bnd.HostPort), nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("published port of toxiproxy: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ToxiproxyAPI is the 127.0.0.1:port of the run's toxiproxy API, "" when
// the run interposes nothing.
func (e *env) ToxiproxyAPI() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.proxyAPI
}

var _ environment.ToxiproxyAPI = (*env)(nil)

// consumerRewrite points service self's references to interposed ports of
// other services at the proxy; everything else is left as written (the run
// network resolves compose aliases).
func (e *env) consumerRewrite(self, s string) string {
	if len(e.opts.Interpose) == 0 {
		return s
	}
	idx := make(map[string]int, len(e.opts.Interpose))
	for i, k := range e.opts.Interpose {
		idx[k] = i
	}
	return topology.Rewrite(s, e.topo.Resolver(func(svc string, port int) (string, bool) {
		if svc == self {
			return "", false
		}
		i, ok := idx[svc+":"+strconv.Itoa(port)]
		if !ok {
			return "", false
		}
		return ProxyListen(i), true
	}))
}

// removeProxy removes the toxiproxy container (before the network, which
// cannot be removed while a container is attached).
func (e *env) removeProxy(ctx context.Context) error {
	e.mu.Lock()
	id := e.proxyID
	e.mu.Unlock()
	if id == "" {
		return nil
	}
	if _, err := e.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove toxiproxy: %w", err)
	}
	return nil
}
