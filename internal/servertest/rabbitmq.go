package servertest

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/internal/rabbitnode"
)

const rabbitBin = "/usr/lib/rabbitmq/bin"

// RabbitMQ is a private broker node.
type RabbitMQ struct {
	// URL is the AMQP URL, credentials included.
	URL string
	// Management is the management API's URL, credentials included; ""
	// unless the node was started WithManagement.
	Management string

	env  []string
	dir  string
	cred *syscall.Credential
}

// RabbitOption configures StartRabbitMQ.
type RabbitOption func(*rabbitConfig)

type rabbitConfig struct {
	management      bool
	consumerTimeout time.Duration
}

// WithManagement enables the management plugin on a loopback port.
func WithManagement() RabbitOption { return func(c *rabbitConfig) { c.management = true } }

// WithConsumerTimeout sets how long the broker lets a delivery go
// unacknowledged before it closes the consumer's channel (default 2 s, so a
// test can watch it happen; checked on each channel tick, every 500 ms).
func WithConsumerTimeout(d time.Duration) RabbitOption {
	return func(c *rabbitConfig) { c.consumerTimeout = d }
}

// StartRabbitMQ runs a RabbitMQ node with its own epmd, ports and cookie,
// and returns once it accepts AMQP connections (and, WithManagement, once
// its management API answers).
func StartRabbitMQ(t *testing.T, opts ...RabbitOption) *RabbitMQ {
	t.Helper()
	cfg := rabbitConfig{consumerTimeout: 2 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	server := mustStat(t, filepath.Join(rabbitBin, "rabbitmq-server"), "rabbitmq-server")
	epmd := lookPath(t, "epmd", "erlang-base")
	dir, cred := privateDir(t, "rabbitmq")
	epmdPort, distPort, amqpPort := FreePort(t), FreePort(t), FreePort(t)
	pass := secret(t)
	lines := []string{
		"listeners.tcp.default = 127.0.0.1:" + strconv.Itoa(amqpPort),
		"default_user = test",
		"default_pass = " + pass,
		"consumer_timeout = " + strconv.FormatInt(cfg.consumerTimeout.Milliseconds(), 10),
	}
	plugins, mgmtPort := "[].\n", 0
	if cfg.management {
		mgmtPort = FreePort(t)
		plugins = "[rabbitmq_management].\n"
		lines = append(lines, "management.tcp.ip = 127.0.0.1", "management.tcp.port = "+strconv.Itoa(mgmtPort))
	}
	conf := strings.Join(lines, "\n") + "\n"
	for name, content := range map[string]string{
		"rabbitmq.conf": conf, "enabled_plugins": plugins, "rabbitmq-env.conf": "",
		"advanced.config":     "[{rabbit, [{channel_tick_interval, 500}]}].\n",
		"home/.erlang.cookie": secret(t) + "\n",
	} {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o400))
	}
	for _, d := range []string{"mnesia", "log", "plugins-expand"} {
		require.NoError(t, os.Mkdir(filepath.Join(dir, d), 0o700))
	}
	chownTree(t, dir, cred)
	node := "mptest" + strconv.Itoa(amqpPort) + "@localhost"
	env := baseEnv(rabbitnode.Env(dir, node, rabbitnode.Ports{EPMD: epmdPort, AMQP: amqpPort, Dist: distPort})...)
	ep := start(t, cred, env, dir, epmd, "-port", strconv.Itoa(epmdPort), "-address", "127.0.0.1")
	waitFor(t, "epmd", ep, func(ctx context.Context) error { return dialTCP(ctx, epmdPort) })
	r := &RabbitMQ{URL: "amqp://test:" + pass + "@127.0.0.1:" + strconv.Itoa(amqpPort) + "/", env: env, dir: dir, cred: cred}
	srv := start(t, cred, env, dir, server)
	waitFor(t, "rabbitmq", srv, func(context.Context) error {
		c, err := amqp.Dial(r.URL)
		if err == nil {
			_ = c.Close()
		}
		return err
	})
	if cfg.management {
		r.Management = "http://test:" + pass + "@127.0.0.1:" + strconv.Itoa(mgmtPort)
		waitFor(t, "rabbitmq management", srv, func(ctx context.Context) error { return httpOK(ctx, r.Management+"/api/overview") })
	}
	return r
}

// httpOK GETs u (basic auth from its credentials) and wants a 200.
func httpOK(ctx context.Context, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	parsed, err := url.Parse(u)
	if err != nil {
		return err
	}
	if parsed.User != nil {
		pass, _ := parsed.User.Password()
		req.SetBasicAuth(parsed.User.Username(), pass)
		parsed.User = nil
		req.URL = parsed
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", parsed.Redacted(), resp.Status)
	}
	return nil
}

// Ctl runs rabbitmqctl against the node and returns its output; the
// command failing fails the test.
func (r *RabbitMQ) Ctl(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(rabbitBin, "rabbitmqctl"), args...)
	cmd.Env, cmd.Dir = r.env, r.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: r.cred}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "rabbitmqctl %s:\n%s", strings.Join(args, " "), out)
	return string(out)
}
