package local

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
	epmdPort, err := freePort()
	if err != nil {
		return nil, err
	}
	distPort, err := freePort()
	if err != nil {
		return nil, err
	}
	amqpPort := e.portFor(s.spec, 5672)
	home, mnesia, logs, expand := filepath.Join(dir, "home"), filepath.Join(dir, "mnesia"), filepath.Join(dir, "log"), filepath.Join(dir, "plugins-expand")
	for _, d := range []string{home, mnesia, logs, expand} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("rabbitmq dirs: %w", err)
		}
	}

	cenv := map[string]string{}
	for k, v := range s.spec.Environment {
		cenv[k] = v
	}
	for k, v := range e.over[s.spec.Name] {
		cenv[k] = v
	}
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
		"home/.erlang.cookie": "meshproof" + strings.ReplaceAll(e.runID, "-", "") + "\n",
	}
	for name, content := range files {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, "cookie") {
			mode = 0o400
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), mode); err != nil {
			return nil, fmt.Errorf("rabbitmq %s: %w", name, err)
		}
	}
	cred, err := runAs("rabbitmq", dir)
	if err != nil {
		return nil, err
	}
	node := "mp" + strings.ReplaceAll(e.runID, "-", "") + strings.ReplaceAll(s.spec.Name, "-", "") + "@localhost"
	env := append(baseEnv(),
		"HOME="+home,
		"ERL_EPMD_PORT="+strconv.Itoa(epmdPort),
		"RABBITMQ_NODENAME="+node,
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT="+strconv.Itoa(amqpPort),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(distPort),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(dir, "rabbitmq.conf"),
		"RABBITMQ_ADVANCED_CONFIG_FILE="+filepath.Join(dir, "advanced.config"),
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(dir, "rabbitmq-env.conf"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_PLUGINS_EXPAND_DIR="+expand,
		"RABBITMQ_MNESIA_BASE="+mnesia,
		"RABBITMQ_LOG_BASE="+logs,
		"RABBITMQ_LOGS=-",
		"RABBITMQ_PID_FILE="+filepath.Join(dir, "rabbitmq.pid"),
		// Erlang's schedulers busy-wait otherwise, eating the 2 cores the
		// system under test needs.
		// -start_epmd false: the node must use our epmd, never start its
		// own "epmd -daemon", which leaves the process group and outlives
		// the run.
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=+sbwt none +sbwtdcpu none +sbwtdio none -start_epmd false",
	)
	return &plan{
		helpers: []launch{{path: epmd, args: []string{"-port", strconv.Itoa(epmdPort), "-address", "127.0.0.1"}, env: env, dir: dir, cred: cred,
			listens: loopback(epmdPort)}},
		main:    launch{path: server, env: env, dir: dir, cred: cred},
		version: rabbitVersion(),
	}, nil
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
