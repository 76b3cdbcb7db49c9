#!/usr/bin/env bash
# Starts or stops a private PostgreSQL and Redis for Souk under a data
# folder (git-ignored), on non-default ports, installing Redis from Debian's
# packages when it is missing. Used by `make up`, `make test` and .ci/run.
#
#   stack.sh start|stop|purge|env|cluster|browser|citus|install-citus
#
# SOUK_DATA_DIR (default .data/dev), SOUK_PG_PORT (55432), SOUK_REDIS_PORT (56379),
# SOUK_CLUSTER_PORTS (the three primaries of `cluster`: 46391 46392 46393; empty: none),
# SOUK_CITUS_PORTS (the coordinator and two workers of `citus`: 55440 55441 55442; empty: none).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${SOUK_DATA_DIR:-$root/.data/dev}
pg_port=${SOUK_PG_PORT:-55432}
redis_port=${SOUK_REDIS_PORT:-56379}
cluster_ports=${SOUK_CLUSTER_PORTS-46391 46392 46393}
citus_ports=${SOUK_CITUS_PORTS-55440 55441 55442}
pg_bin=${SOUK_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}

# PostgreSQL refuses to run as root, so as root it runs as the postgres
# user; its data goes under $dir unless that user cannot reach it (a clone
# under a private home), then under /var/tmp.
pg_data() {
	node_data pg "$pg_port"
}

# node_data is where the PostgreSQL instance name (on port) keeps its data.
node_data() {
	if [ "$(id -u)" != 0 ] || (cd / && runuser -u postgres -- test -x "$dir") 2>/dev/null; then
		echo "$dir/$1"
	else
		echo "/var/tmp/souk-$1-$2"
	fi
}

as_postgres() {
	if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

psql_admin() {
	"$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -v ON_ERROR_STOP=1 -qAt "$@"
}

# start_pg makes (once) and starts a PostgreSQL instance in data directory
# d, on port, with more server options.
start_pg() {
	local d=$1 port=$2 opts=$3
	mkdir -p "$d"
	if [ "$(id -u)" = 0 ]; then chown postgres: "$d"; fi
	chmod 700 "$d"
	if [ ! -f "$d/PG_VERSION" ]; then
		as_postgres "$pg_bin/initdb" -D "$d" -U postgres --auth=trust -E UTF8 --no-instructions >/dev/null
	fi
	if ! as_postgres "$pg_bin/pg_ctl" -D "$d" status >/dev/null 2>&1; then
		as_postgres "$pg_bin/pg_ctl" -D "$d" -l "$d/server.log" -w -t 60 \
			-o "-p $port -k $d -c listen_addresses=127.0.0.1 -c max_connections=300 $opts" start >/dev/null
	fi
}

start() {
	[ -n "$pg_bin" ] && [ -x "$pg_bin/postgres" ] || { echo "PostgreSQL binaries not found (set SOUK_PG_BIN)" >&2; exit 1; }
	if ! command -v redis-server >/dev/null; then
		[ "$(id -u)" = 0 ] || { echo "redis-server is missing: apt-get install -y redis-server" >&2; exit 1; }
		echo "installing redis-server from Debian's packages..."
		apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
	fi
	mkdir -p "$dir/redis"
	start_pg "$(pg_data)" "$pg_port" "${SOUK_PG_OPTS:-}"
	if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = 'souk'")" != 1 ]; then
		psql_admin -c "CREATE ROLE souk LOGIN PASSWORD 'souk' CREATEDB"
	fi
	if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = 'souk'")" != 1 ]; then
		psql_admin -c "CREATE DATABASE souk OWNER souk"
	fi
	if ! redis-cli -p "$redis_port" ping >/dev/null 2>&1; then
		redis-server --port "$redis_port" --bind 127.0.0.1 --daemonize yes --dir "$dir/redis" \
			--pidfile "$dir/redis/redis.pid" --logfile "$dir/redis/redis.log" --save '' --appendonly no \
			--notify-keyspace-events Ex >/dev/null
		for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
	fi
	redis-cli -p "$redis_port" ping >/dev/null
}

stop() {
	local pg
	pg=$(pg_data)
	if [ -f "$pg/PG_VERSION" ]; then
		as_postgres "$pg_bin/pg_ctl" -D "$pg" -m fast stop >/dev/null 2>&1 || true
	fi
	redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
	# Only the Citus nodes this data directory started (its marker).
	for port in $citus_ports; do
		[ -f "$dir/citus-$port.started" ] || continue
		local d
		d=$(node_data "citus-$port" "$port")
		as_postgres "$pg_bin/pg_ctl" -D "$d" -m fast stop >/dev/null 2>&1 || true
	done
	# Only the cluster this data directory started: `make up`'s stack must
	# never stop the tests' cluster.
	for port in $cluster_ports; do
		[ -d "$dir/cluster/$port" ] || continue
		redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
	done
}

# cluster starts a small Redis Cluster (three primaries, no replicas) for
# the tests that run against one, and empties it.
cluster() {
	local addrs=()
	for port in $cluster_ports; do
		local d="$dir/cluster/$port"
		mkdir -p "$d"
		if ! redis-cli -p "$port" ping >/dev/null 2>&1; then
			rm -f "$d/nodes.conf"
			redis-server --port "$port" --bind 127.0.0.1 --daemonize yes --dir "$d" --cluster-enabled yes \
				--cluster-config-file "$d/nodes.conf" --pidfile "$d/redis.pid" --logfile "$d/redis.log" \
				--save '' --appendonly no --notify-keyspace-events Ex >/dev/null
			for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
		fi
		addrs+=("127.0.0.1:$port")
	done
	local first=${cluster_ports%% *}
	if ! redis-cli -p "$first" cluster info | grep -q 'cluster_state:ok'; then
		redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes >/dev/null
		for _ in $(seq 100); do redis-cli -p "$first" cluster info | grep -q 'cluster_state:ok' && break; sleep 0.1; done
	fi
	for port in $cluster_ports; do redis-cli -p "$port" flushall >/dev/null; done
	redis-cli -p "$first" cluster info | grep -q 'cluster_state:ok' || { echo "the Redis Cluster did not come up" >&2; exit 1; }
}

# install_citus builds and installs the extension with
# ../shared/citus/install.sh (once: it does nothing when it is installed);
# Debian's package lists are fetched first on a machine that has none yet.
# It may upgrade PostgreSQL 15 itself to Debian's latest minor release, and a
# server started before runs on with the old binary and the new libraries
# (plpgsql fails to load): make test installs it before it starts any. The
# script stamps the build with the version it found before the upgrade,
# so the next call would build it again; the stamp is set to the version
# it was built for.
install_citus() {
	local install="$root/../shared/citus/install.sh"
	[ -f "$install" ] || { echo "$install is missing: the shared folder must sit beside the repository" >&2; exit 1; }
	# Called from make, the environment carries make's flags (the Makefile's
	# --no-builtin-rules among them) into Citus's own make, which builds
	# its objects by the built-in rules: run it without them.
	if ! env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL bash "$install"; then
		apt-get update -qq >/dev/null && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL bash "$install"
	fi
	local lib=/usr/lib/postgresql/15/lib version # install.sh's
	version=$(dpkg-query -W -f='${Version}' postgresql-15 2>/dev/null) || return 0
	if [ -f "$lib/citus.so" ] && [ -w "$lib/citus.built-for" ]; then echo "$version" >"$lib/citus.built-for"; fi
}

# citus starts a Citus cluster (a coordinator and two workers, on
# citus_ports, the first the coordinator) for the tests that run on a
# distributed PostgreSQL: each node loads the extension (built by
# ../shared/citus/install.sh), and the coordinator knows itself and its
# workers.
citus() {
	install_citus
	local ports=($citus_ports)
	[ ${#ports[@]} -ge 2 ] || { echo "SOUK_CITUS_PORTS needs a coordinator and a worker" >&2; exit 1; }
	for port in "${ports[@]}"; do
		mkdir -p "$dir"
		touch "$dir/citus-$port.started"
		start_pg "$(node_data "citus-$port" "$port")" "$port" "-c shared_preload_libraries=citus ${SOUK_PG_OPTS_CITUS:-}"
		PGOPTIONS="-c client_min_messages=warning" "$pg_bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -qAt \
			-c "CREATE EXTENSION IF NOT EXISTS citus" >/dev/null
	done
	local coord=${ports[0]}
	local q=("$pg_bin/psql" -h 127.0.0.1 -p "$coord" -U postgres -d postgres -v ON_ERROR_STOP=1 -qAt)
	"${q[@]}" -c "SELECT citus_set_coordinator_host('127.0.0.1', $coord)" >/dev/null
	for port in "${ports[@]:1}"; do
		if [ "$("${q[@]}" -c "SELECT count(*) FROM pg_dist_node WHERE nodeport = $port")" = 0 ]; then
			"${q[@]}" -c "SELECT citus_add_node('127.0.0.1', $port)" >/dev/null
		fi
	done
}

# browser installs Debian's chromium for the dashboard's browser tests.
browser() {
	command -v chromium >/dev/null && return
	[ "$(id -u)" = 0 ] || { echo "chromium is missing: apt-get install -y chromium" >&2; exit 1; }
	echo "installing chromium from Debian's packages (the dashboard's browser tests)..."
	apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
}

case "${1:-}" in
start) start ;;
browser) browser ;;
cluster) cluster ;;
citus) citus ;;
install-citus) install_citus ;;
stop) stop ;;
purge)
	stop
	for port in $citus_ports; do
		[ -f "$dir/citus-$port.started" ] && rm -rf "$(node_data "citus-$port" "$port")"
	done
	rm -rf "$(pg_data)" "$dir"
	;;
env)
	echo "SOUK_DATABASE_URL=postgres://souk:souk@127.0.0.1:$pg_port/souk?sslmode=disable"
	echo "SOUK_REDIS_ADDR=127.0.0.1:$redis_port"
	;;
*) echo "usage: $0 start|stop|purge|env|cluster|browser|citus|install-citus" >&2; exit 2 ;;
esac
