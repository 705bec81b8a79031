#!/bin/sh
# Entrypoint of the offline rabbitmq stand-in: runs the node as the rabbitmq
# user in the foreground, logging to stdout, honouring the upstream image's
# RABBITMQ_DEFAULT_USER/RABBITMQ_DEFAULT_PASS/RABBITMQ_ERLANG_COOKIE.
set -eu

if [ "${1:-}" != rabbitmq-server ]; then
	exec "$@"
fi
shift

# Erlang busy-waits its schedulers by default, which costs whole cores on a
# small shared machine for no benefit in tests.
: "${RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS:=+sbwt none +sbwtdcpu none +sbwtdio none}"
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS

conf=/etc/rabbitmq/rabbitmq.conf
if [ -n "${RABBITMQ_DEFAULT_USER:-}" ] && ! grep -q '^default_user' "$conf"; then
	echo "default_user = $RABBITMQ_DEFAULT_USER" >>"$conf"
fi
if [ -n "${RABBITMQ_DEFAULT_PASS:-}" ] && ! grep -q '^default_pass' "$conf"; then
	echo "default_pass = $RABBITMQ_DEFAULT_PASS" >>"$conf"
fi

mkdir -p /var/lib/rabbitmq/mnesia /var/log/rabbitmq
cookie=/var/lib/rabbitmq/.erlang.cookie
if [ -n "${RABBITMQ_ERLANG_COOKIE:-}" ]; then
	printf '%s' "$RABBITMQ_ERLANG_COOKIE" >"$cookie"
elif [ ! -s "$cookie" ]; then
	tr -dc 'A-Z' </dev/urandom | head -c 20 >"$cookie"
fi
# The same cookie for root, so `rabbitmq-diagnostics ping` (the compose
# healthcheck, run as root by docker) can talk to the node.
cp "$cookie" /root/.erlang.cookie
chmod 0400 /root/.erlang.cookie
chown -R rabbitmq:rabbitmq /var/lib/rabbitmq /var/log/rabbitmq
chmod 0400 "$cookie"

exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups -- \
	/usr/lib/rabbitmq/bin/rabbitmq-server "$@"
