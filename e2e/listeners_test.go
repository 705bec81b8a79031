package e2e

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/harness/backend/docker"
	"github.com/meshproof/meshproof/harness/backend/local"
	"github.com/meshproof/meshproof/harness/environment"
	"github.com/meshproof/meshproof/harness/faults/toxi"
	"github.com/meshproof/meshproof/harness/run"
	"github.com/meshproof/meshproof/harness/topology"
)

// interposed is the link the listener runs put a proxy on, so the proxy's
// own listener (toxiproxy in the harness on local, a container on docker)
// is measured along with the services.
const interposed = "service-c:50051"

// TestListeners brings the whole environment up as `meshproof up` does and
// requires that nothing it started listens beyond loopback: a port on
// 0.0.0.0 on a shared CI machine is a port anyone on the network can reach,
// with the credentials the run printed or the defaults everyone knows.
func TestListeners(t *testing.T) {
	for _, backend := range backends(t) {
		t.Run(backend, func(t *testing.T) {
			switch backend {
			case "local":
				localListeners(t)
			case "docker":
				dockerListeners(t)
			}
		})
	}
}

func upTopology(t *testing.T) *topology.Topology {
	t.Helper()
	compose, err := filepath.Abs("../docker-compose.yml")
	require.NoError(t, err)
	topo, err := run.LoadTopology(t.Context(), compose)
	require.NoError(t, err, "load %s", compose)
	return topo
}

func downAtEnd(t *testing.T, env environment.Environment) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		assert.NoError(t, env.Down(ctx), "down")
	})
}

// localListeners reads every listening socket of the run's processes —
// the harness (the test, which also runs the proxy) and everything below
// it, plus any daemon that left the tree but carries the run dir in its
// environment — and fails on any non-loopback one, naming it.
func localListeners(t *testing.T) {
	px := toxi.NewServer()
	t.Cleanup(func() { _ = px.Close() })
	runID := run.NewRunID("listeners")
	env, err := local.New(local.WithStateDir(t.TempDir())).Up(t.Context(), upTopology(t), environment.Options{
		RunID: runID, LogDir: t.TempDir(), Interpose: []string{interposed}, Proxy: px.Proxy,
	})
	require.NoError(t, err, "local up")
	downAtEnd(t, env)
	runDirs, err := filepath.Glob(filepath.Join(os.TempDir(), "meshproof-local-"+runID+"-*"))
	require.NoError(t, err)
	require.Len(t, runDirs, 1, "the run dir of %s", runID)

	socks, err := listeningSockets()
	require.NoError(t, err)
	procs, err := processes()
	require.NoError(t, err)
	var seen []string
	for _, p := range procs {
		if !ofRun(procs, p.pid, runDirs[0]) {
			continue
		}
		for _, l := range processListeners(p.pid, socks) {
			seen = append(seen, fmt.Sprintf("%s (pid %d) %s", p.comm, p.pid, l))
			assert.True(t, l.addr.Addr().IsLoopback(), "%s (pid %d) listens on %s/%s, beyond loopback", p.comm, p.pid, l.proto, l.addr)
		}
	}
	t.Logf("%d listeners:\n  %s", len(seen), strings.Join(seen, "\n  "))
	// Evidence: every service of the run and the proxy must have been seen.
	require.GreaterOrEqual(t, len(seen), len(env.Services())+1, "fewer listeners than services: the scan missed processes")
	privateSecrets(t, runID, filepath.Join(runDirs[0], "rabbitmq"))
}

// ofRun: the harness itself, its descendants, and escaped daemons that
// inherited a path under the run dir.
func ofRun(procs []process, pid int, runDir string) bool {
	self := os.Getpid()
	if pid == self || descendsFrom(procs, pid, self) {
		return true
	}
	env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	return err == nil && strings.Contains(string(env), runDir+"/")
}

// privateSecrets checks what the local backend invents for the run: the
// Erlang cookie is not derived from the (printed) run id, and it sits in a
// dir nobody else can enter.
func privateSecrets(t *testing.T, runID, dir string) {
	st, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), st.Mode().Perm(), "mode of %s", dir)
	cookie, err := os.ReadFile(filepath.Join(dir, "home", ".erlang.cookie"))
	require.NoError(t, err)
	c := strings.TrimSpace(string(cookie))
	assert.GreaterOrEqual(t, len(c), 32, "cookie length")
	for part := range strings.SplitSeq(runID, "-") {
		assert.NotContains(t, c, part, "cookie derived from the run id")
	}
	assert.NotContains(t, c, "meshproof")
}

func descendsFrom(procs []process, pid, root int) bool {
	parent := map[int]int{}
	for _, p := range procs {
		parent[p.pid] = p.ppid
	}
	for i := 0; i < 64 && pid > 1; i++ {
		if pid = parent[pid]; pid == root {
			return true
		}
	}
	return false
}

// listener is one listening socket.
type listener struct {
	proto string
	addr  netip.AddrPort
}

func (l listener) String() string { return l.proto + " " + l.addr.String() }

// listeningSockets maps socket inode to address for every TCP socket in
// LISTEN and every unconnected bound UDP socket of this network namespace.
func listeningSockets() (map[string]listener, error) {
	out := map[string]listener{}
	for _, f := range []struct{ file, proto, state string }{
		{"tcp", "tcp", "0A"}, {"tcp6", "tcp6", "0A"}, {"udp", "udp", "07"}, {"udp6", "udp6", "07"},
	} {
		if err := readNetTable("/proc/net/"+f.file, f.proto, f.state, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func readNetTable(path, proto, state string, out map[string]listener) error {
	fh, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read sockets: %w", err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	sc.Scan() // header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[3] != state {
			continue
		}
		addr, err := parseProcAddr(f[1])
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if addr.Port() == 0 {
			continue
		}
		out[f[9]] = listener{proto: proto, addr: addr}
	}
	return sc.Err()
}

// parseProcAddr decodes "0100007F:1F90": the address as host-order 32-bit
// words in hex, then the port.
func parseProcAddr(s string) (netip.AddrPort, error) {
	h, p, ok := strings.Cut(s, ":")
	raw, err := hex.DecodeString(h)
	if !ok || err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", s)
	}
	for i := 0; i < len(raw); i += 4 {
		slices.Reverse(raw[i : i+4])
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad port in %q", s)
	}
	addr, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(addr.Unmap(), uint16(port)), nil
}

// processListeners are the sockets among socks that pid holds open.
func processListeners(pid int, socks map[string]listener) []listener {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil // exited meanwhile
	}
	var out []listener
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		inode, ok := strings.CutPrefix(target, "socket:[")
		if !ok {
			continue
		}
		if l, ok := socks[strings.TrimSuffix(inode, "]")]; ok {
			out = append(out, l)
		}
	}
	return out
}

// dockerListeners requires every port the run's containers publish (the
// toxiproxy container's included) to be bound on the host's loopback.
func dockerListeners(t *testing.T) {
	topo := upTopology(t)
	runID := run.NewRunID("listeners")
	env, err := docker.New().Up(t.Context(), topo, environment.Options{
		RunID: runID, LogDir: t.TempDir(), Interpose: []string{interposed},
		ProxyImage: offlineImage(t, "TOXIPROXY_IMAGE"),
	})
	require.NoError(t, err, "docker up")
	downAtEnd(t, env)

	cli, err := client.New(client.FromEnv)
	require.NoError(t, err)
	defer cli.Close()
	list, err := cli.ContainerList(t.Context(), client.ContainerListOptions{
		Filters: client.Filters{}.Add("label", docker.LabelRun+"="+runID),
	})
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(list.Items), len(env.Services())+1, "containers of run %s", runID)
	published := 0
	for _, c := range list.Items {
		res, err := cli.ContainerInspect(t.Context(), c.ID, client.ContainerInspectOptions{})
		require.NoError(t, err)
		name := c.Labels[docker.LabelService]
		for port, bnds := range res.Container.HostConfig.PortBindings {
			for _, b := range bnds {
				assert.True(t, b.HostIP.IsValid() && b.HostIP.IsLoopback(), "%s asks to publish %s on %q", name, port, b.HostIP)
			}
		}
		for port, bnds := range res.Container.NetworkSettings.Ports {
			for _, b := range bnds {
				published++
				assert.True(t, b.HostIP.IsValid() && b.HostIP.IsLoopback(), "%s publishes %s on %s:%s", name, port, b.HostIP, b.HostPort)
			}
		}
	}
	require.Positive(t, published, "no published ports seen")
	t.Logf("%d containers, %d published ports, all on loopback", len(list.Items), published)
}

// offlineImage reads a stand-in image ref from .env.offline (written by
// `meshproof images`), else the environment.
func offlineImage(t *testing.T, name string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	data, err := os.ReadFile("../.env.offline")
	require.NoError(t, err, "`meshproof images` writes .env.offline with %s", name)
	for line := range strings.SplitSeq(string(data), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf(".env.offline has no %s", name)
	return ""
}
