#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on loopback, for the tests and the benchmarks.
#
# Usage: scripts/postgres.sh start DIR PORT [durable]   (prints the cluster's URL once it answers)
#        scripts/postgres.sh stop DIR                   (stops it; DIR can then be removed)
# Without `durable` the cluster runs with fsync off (tests); with it, PostgreSQL's defaults.
# POSTGRES_SETTINGS adds server settings, e.g. "-c shared_buffers=1GB".
# Needs Debian's postgresql; run as root, the cluster belongs to the postgres user.
set -euo pipefail
command=$1
dir=$2
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi
}
case "$command" in
start)
  port=$3
  options="-p $port -k $dir -c listen_addresses=127.0.0.1"
  [ "${4:-}" = durable ] || options="$options -c fsync=off"
  options="$options ${POSTGRES_SETTINGS:-}"
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
  as_postgres "$pg_bin/initdb -D $dir/data -U senderauth --auth=trust >$dir/initdb.log 2>&1"
  as_postgres "$pg_bin/pg_ctl -D $dir/data -l $dir/server.log -w -o \"$options\" start >/dev/null"
  echo "postgres://senderauth@127.0.0.1:$port/postgres"
  ;;
stop)
  as_postgres "$pg_bin/pg_ctl -D $dir/data -m immediate stop" >/dev/null 2>&1 || true
  ;;
*)
  echo "usage: scripts/postgres.sh start DIR PORT [durable] | stop DIR" >&2
  exit 2
  ;;
esac
