package local

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/meshproof/meshproof/internal/rabbitnode"
)

// rabbitServer is the real start script; /usr/sbin/rabbitmq-server is a
// wrapper that su's to the rabbitmq user and hides the output in
// /var/log, which we do ourselves with a credential and our log file.
const rabbitServer = "/usr/lib/rabbitmq/bin/rabbitmq-server"

// rabbitPlan runs a private RabbitMQ node: its own node name, AMQP,
// distribution and epmd ports, and mnesia/log dirs under the run dir owned
// by the rabbitmq user. epmd is started by us on its own port as a helper,
// because the one Erlang starts itself daemonizes, outlives the node and
// would be shared with other runs.
func (e *env) rabbitPlan(s *service, dir string) (*plan, error) {
	server := rabbitServer
	if _, err := os.Stat(server); err != nil {
		return nil, fmt.Errorf("%s not found: install the Debian package rabbitmq-server (make deps)", server)
	}
	epmd, err := lookPathPackage("epmd", "erlang-base")
	if err != nil {
		return nil, err
	}
	epmdPort, err := e.freePort()
	if err != nil {
		return nil, err
	}
	distPort, err := e.freePort()
	if err != nil {
		return nil, err
	}
	amqpPort := e.portFor(s.spec, 5672)
	if err := e.rabbitFiles(s, dir, amqpPort); err != nil {
		return nil, err
	}
	cred, err := runAs("rabbitmq", dir)
	if err != nil {
		return nil, err
	}
	node := "mp" + strings.ReplaceAll(e.runID, "-", "") + strings.ReplaceAll(s.spec.Name, "-", "") + "@localhost"
	env := rabbitEnv(dir, node, epmdPort, amqpPort, distPort)
	return &plan{
		helpers: []launch{{path: epmd, args: []string{"-port", strconv.Itoa(epmdPort), "-address", "127.0.0.1"}, env: env, dir: dir, cred: cred,
			listens: loopback(epmdPort)}},
		main:    launch{path: server, env: env, dir: dir, cred: cred},
		version: rabbitVersion(),
	}, nil
}

// randomCookie is 32 random bytes, hex: an Erlang cookie must be an atom's
// text, and hex needs no quoting.
func randomCookie() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("rabbitmq cookie: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// rabbitFiles writes the node's dirs, config and cookie under dir.
func (e *env) rabbitFiles(s *service, dir string, amqpPort int) error {
	for _, d := range []string{"home", "mnesia", "log", "plugins-expand"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return fmt.Errorf("rabbitmq dirs: %w", err)
		}
	}
	// Whoever holds the cookie can run code in the node: it is random per
	// run and lives only in the node's 0700 dir, never in a log or the
	// environment.
	cookie, err := randomCookie()
	if err != nil {
		return err
	}
	cenv := e.declaredEnv(s.spec)
	conf := []string{
		"listeners.tcp.default = 127.0.0.1:" + strconv.Itoa(amqpPort),
		// The image lets guest in from anywhere; so do we, on loopback.
		"loopback_users = none",
		"default_user = " + envOr(cenv, "RABBITMQ_DEFAULT_USER", "guest"),
		"default_pass = " + envOr(cenv, "RABBITMQ_DEFAULT_PASS", "guest"),
	}
	plugins := "[]."
	// The management plugin only when the compose file publishes its port
	// (the -management image), since it adds seconds to the start.
	if mgmt, ok := e.hostPort(s.spec.Name, 15672); ok && rabbitPluginAvailable("rabbitmq_management") {
		plugins = "[rabbitmq_management]."
		conf = append(conf, "management.tcp.ip = 127.0.0.1", "management.tcp.port = "+strconv.Itoa(mgmt))
	}
	files := map[string]string{
		"rabbitmq.conf":       strings.Join(conf, "\n") + "\n",
		"enabled_plugins":     plugins + "\n",
		"rabbitmq-env.conf":   "",
		"home/.erlang.cookie": cookie + "\n",
	}
	for name, content := range files {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, "cookie") {
			mode = 0o400
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), mode); err != nil {
			return fmt.Errorf("rabbitmq %s: %w", name, err)
		}
	}
	return nil
}

// rabbitEnv is the node's environment: the shared loopback-only recipe on
// top of the backend's base environment.
func rabbitEnv(dir, node string, epmdPort, amqpPort, distPort int) []string {
	return append(baseEnv(), rabbitnode.Env(dir, node, rabbitnode.Ports{EPMD: epmdPort, AMQP: amqpPort, Dist: distPort})...)
}

func rabbitPluginAvailable(name string) bool {
	m, _ := filepath.Glob("/usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins/" + name + "-*")
	return len(m) > 0
}

// rabbitVersion reads the version from the installed server's lib dir
// (cheaper than asking a running node).
func rabbitVersion() string {
	m, _ := filepath.Glob("/usr/lib/rabbitmq/lib/rabbitmq_server-*")
	if len(m) == 0 {
		return ""
	}
	return "rabbitmq " + strings.TrimPrefix(filepath.Base(m[0]), "rabbitmq_server-")
}
