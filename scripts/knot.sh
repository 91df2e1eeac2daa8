#!/usr/bin/env bash
# Starts Knot DNS on loopback serving DIR/root.zone (made by bench/gen_zone.py) as the root
# zone, so every name is answered authoritatively and unknown names get NXDOMAIN.
#
# Usage: scripts/knot.sh start DIR PORT    (prints knotd's PID once it answers)
#        scripts/knot.sh queries DIR       (UDP+TCP queries answered so far)
set -euo pipefail
command=$1
dir=$(cd "$2" && pwd)
case "$command" in
start)
  port=$3
  if ! command -v knotd >/dev/null || ! command -v kdig >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq knot knot-dnsutils >/dev/null
  fi
  mkdir -p "$dir/run" "$dir/db"
  cat >"$dir/knot.conf" <<KNOT
server:
    rundir: "$dir/run"
    listen: 127.0.0.1@$port
database:
    storage: "$dir/db"
mod-stats:
  - id: default
    request-protocol: on
template:
  - id: default
    storage: "$dir"
    global-module: mod-stats
    journal-content: none
zone:
  - domain: .
    file: root.zone
log:
  - target: stderr
    any: warning
control:
    listen: "$dir/run/knot.sock"
KNOT
  knotd -c "$dir/knot.conf" >"$dir/knotd.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do
    if kdig +short +time=1 @127.0.0.1 -p "$port" . SOA >/dev/null 2>&1; then
      echo "$pid"
      exit 0
    fi
    sleep 0.2
  done
  cat "$dir/knotd.log" >&2
  echo "knotd did not start on 127.0.0.1:$port" >&2
  exit 1
  ;;
queries)
  knotc -c "$dir/knot.conf" stats mod-stats.request-protocol 2>/dev/null \
    | awk -F'= ' '/udp|tcp/ { total += $2 } END { print total + 0 }'
  ;;
*)
  echo "usage: scripts/knot.sh start DIR PORT | queries DIR" >&2
  exit 2
  ;;
esac
