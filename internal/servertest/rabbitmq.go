package servertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/meshproof/meshproof/internal/rabbitnode"
)

const rabbitBin = "/usr/lib/rabbitmq/bin"

// RabbitMQ is a private broker node.
type RabbitMQ struct {
	// URL is the AMQP URL, credentials included.
	URL string

	env  []string
	dir  string
	cred *syscall.Credential
}

// StartRabbitMQ runs a RabbitMQ node with its own epmd, ports and cookie,
// and returns once it accepts AMQP connections.
func StartRabbitMQ(t *testing.T) *RabbitMQ {
	t.Helper()
	server := mustStat(t, filepath.Join(rabbitBin, "rabbitmq-server"), "rabbitmq-server")
	epmd := lookPath(t, "epmd", "erlang-base")
	dir, cred := privateDir(t, "rabbitmq")
	epmdPort, distPort, amqpPort := FreePort(t), FreePort(t), FreePort(t)
	pass := secret(t)
	conf := strings.Join([]string{
		"listeners.tcp.default = 127.0.0.1:" + strconv.Itoa(amqpPort),
		"default_user = test",
		"default_pass = " + pass,
		// Short enough that a test can watch a consumer being timed out
		// (checked on each channel tick, see advanced.config).
		"consumer_timeout = 2000",
	}, "\n") + "\n"
	for name, content := range map[string]string{
		"rabbitmq.conf": conf, "enabled_plugins": "[].\n", "rabbitmq-env.conf": "",
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
	return r
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
