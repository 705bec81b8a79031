// Package rabbitnode is how a private RabbitMQ node runs as a plain
// process with every listener on 127.0.0.1. The local backend and the
// mesh's broker tests both start such a node, and mesh/ may not import
// harness/, so the recipe — a security boundary, not just configuration —
// lives here once.
package rabbitnode

import (
	"path/filepath"
	"strconv"
)

// LoopbackDist keeps an Erlang node's (and rabbitmqctl's) distribution
// listener on 127.0.0.1; it binds every interface otherwise
// (RABBITMQ_NODE_IP_ADDRESS covers AMQP only).
const LoopbackDist = "-kernel inet_dist_use_interface {127,0,0,1}"

// Ports are the node's private listeners.
type Ports struct {
	EPMD, AMQP, Dist int
}

// Env points the node (and rabbitmqctl) at the files under dir and at its
// private ports. Callers add their own base environment (PATH, locale).
func Env(dir, node string, p Ports) []string {
	return []string{
		"HOME=" + filepath.Join(dir, "home"),
		"ERL_EPMD_PORT=" + strconv.Itoa(p.EPMD),
		"ERL_EPMD_ADDRESS=127.0.0.1",
		"RABBITMQ_NODENAME=" + node,
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT=" + strconv.Itoa(p.AMQP),
		"RABBITMQ_DIST_PORT=" + strconv.Itoa(p.Dist),
		"RABBITMQ_CONFIG_FILE=" + filepath.Join(dir, "rabbitmq.conf"),
		"RABBITMQ_ADVANCED_CONFIG_FILE=" + filepath.Join(dir, "advanced.config"),
		"RABBITMQ_CONF_ENV_FILE=" + filepath.Join(dir, "rabbitmq-env.conf"),
		"RABBITMQ_ENABLED_PLUGINS_FILE=" + filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_PLUGINS_EXPAND_DIR=" + filepath.Join(dir, "plugins-expand"),
		"RABBITMQ_MNESIA_BASE=" + filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE=" + filepath.Join(dir, "log"),
		"RABBITMQ_LOGS=-",
		"RABBITMQ_PID_FILE=" + filepath.Join(dir, "rabbitmq.pid"),
		// Erlang's schedulers busy-wait otherwise, eating the 2 cores the
		// system under test needs.
		// -start_epmd false: the node must use our epmd, never start its
		// own "epmd -daemon", which leaves the process group and outlives
		// the run.
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=+sbwt none +sbwtdcpu none +sbwtdio none -start_epmd false " + LoopbackDist,
		"RABBITMQ_CTL_ERL_ARGS=" + LoopbackDist,
	}
}
