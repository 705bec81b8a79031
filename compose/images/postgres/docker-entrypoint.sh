#!/bin/sh
# Entrypoint of the offline postgres stand-in. It follows the postgres:16
# image's contract so docker-compose.yml and fixtures serve both images:
# POSTGRES_USER (default postgres), POSTGRES_PASSWORD (required unless
# POSTGRES_HOST_AUTH_METHOD=trust), POSTGRES_DB (default the user), PGDATA,
# and /docker-entrypoint-initdb.d run once when the data dir is empty.
set -eu

# `docker run image -c foo=bar` means postgres flags, as upstream.
case "${1:-}" in -*) set -- postgres "$@" ;; esac
if [ "${1:-}" != postgres ]; then
	exec "$@"
fi
shift

: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
: "${POSTGRES_PASSWORD:=}"
: "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA

as_postgres() {
	setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
}

mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 0700 "$PGDATA"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
		echo "postgres stand-in: POSTGRES_PASSWORD is empty; set it or POSTGRES_HOST_AUTH_METHOD=trust" >&2
		exit 1
	fi
	pwfile=$(mktemp)
	printf '%s\n' "${POSTGRES_PASSWORD:-postgres}" >"$pwfile"
	chown postgres "$pwfile"
	as_postgres initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" \
		--auth-local=trust --auth-host="$POSTGRES_HOST_AUTH_METHOD" --encoding=UTF8 >/dev/null
	rm -f "$pwfile"
	# Clients reach the server from other containers and through a published
	# port, never only from loopback.
	echo "host all all all $POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"

	# A private, socket-only server for the init scripts, as upstream does.
	as_postgres pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' -k /run/postgresql" start >/dev/null
	psql_init() {
		as_postgres psql -v ON_ERROR_STOP=1 -X -q -h /run/postgresql -U "$POSTGRES_USER" "$@"
	}
	if [ "$POSTGRES_DB" != postgres ]; then
		psql_init -d postgres -c "CREATE DATABASE \"$POSTGRES_DB\""
	fi
	for f in /docker-entrypoint-initdb.d/*; do
		[ -e "$f" ] || continue
		case "$f" in
		*.sql) echo "postgres stand-in: running $f"; psql_init -d "$POSTGRES_DB" -f "$f" ;;
		*.sql.gz) echo "postgres stand-in: running $f"; gzip -dc "$f" | psql_init -d "$POSTGRES_DB" ;;
		*.sh) echo "postgres stand-in: sourcing $f"; . "$f" ;;
		*) echo "postgres stand-in: ignoring $f" ;;
		esac
	done
	as_postgres pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
	echo "postgres stand-in: init done"
fi

exec setpriv --reuid=postgres --regid=postgres --init-groups -- \
	postgres -D "$PGDATA" -c listen_addresses='*' -k /run/postgresql "$@"
