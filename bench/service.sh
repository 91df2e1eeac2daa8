#!/usr/bin/env bash
# Benchmark: `senderauth serve` holding N connected domains in ACCOUNTS accounts (default
# 1,000,000 and 10,000), on SQLite and on PostgreSQL, against Knot DNS on loopback serving every
# customer's records (bench/gen_zone.py's mix of correct and broken setups).
#
# For each backend: the store is seeded with every domain verified a day ago and due for its
# recheck now; the service starts and runs the full recheck round while wrk loads the API; then
# the domains due again soon (failing ones are confirmed 10 minutes later) are moved to
# tomorrow, and the API is loaded again with the verifier idle. Measured: the round's time, the service's peak
# RSS, and the latency of GET /api/v1/domains/{domain} and GET /api/v1/domains (first page) as a
# random one of the accounts, both during the round and after it.
#
# Usage: bench/service.sh [N] [ACCOUNTS]
#   BACKENDS="sqlite postgres"  CONNECTIONS=16 (wrk's)  LOAD_SECONDS=20 (per wrk run)
#   DNS_PORT=5399 API_PORT=8099 PG_PORT=5435  POSTGRES_SETTINGS="-c shared_buffers=1GB" (say)
# Prints Markdown table rows; results are recorded in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-1000000}
accounts=${2:-10000}
backends=${BACKENDS:-sqlite postgres}
connections=${CONNECTIONS:-16}
load_seconds=${LOAD_SECONDS:-20}
dns_port=${DNS_PORT:-5399}
api_port=${API_PORT:-8099}
pg_port=${PG_PORT:-5435}
out=bench/out/service
api=http://127.0.0.1:$api_port
admin_token=bench-admin-token-not-secret

source bench/lib.sh
install_missing knot knot-dnsutils wrk postgresql curl
cargo build --release --locked -p senderauth >/dev/null 2>&1

# The zone takes a minute to make and Knot most of one to load: kept per N and ACCOUNTS.
zone=$out/zone-$count-$accounts
start_knot "$zone" "$count" "$accounts"

checks_done() {
  curl -sf "$api/metrics" | awk '/^senderauth_checks_total/ { total += $2 } END { print total + 0 }'
}
load() { # LABEL MODE DIR: one wrk run; prints "p50 p99 requests/s errors"
  local file="$3/wrk-$1-$2.txt"
  wrk -t 1 -c "$connections" -d "${load_seconds}s" --latency -s bench/api-load.lua "$api" -- "$2" "$3/targets.tsv" >"$file"
  local p50 p99 rate errors
  p50=$(awk '$1 == "50%" { print $2 }' "$file")
  p99=$(awk '$1 == "99%" { print $2 }' "$file")
  rate=$(awk '/^Requests\/sec/ { printf "%.0f", $2 }' "$file")
  errors=$(awk '/Non-2xx or 3xx responses/ { print $NF } /Socket errors/ { print "socket" }' "$file" | paste -sd, -)
  echo "$(milliseconds "$p50") $(milliseconds "$p99") $rate ${errors:-0}"
}

rows=()
for backend in $backends; do
  dir=$out/$backend
  open_store "$backend" "$dir"
  echo "== $backend: creating the schema, seeding $count domains"
  serve "$dir" "$url" && stop_serve
  python3 bench/seed_store.py "$zone/domains.jsonl" "$accounts" "$url" "$dir/targets.tsv"

  echo "== $backend: full recheck round, with the API under load"
  started=$(date +%s.%N)
  serve "$dir" "$url"
  sleep 5
  during_detail=$(load during detail "$dir")
  during_list=$(load during list "$dir")
  # Done when no domain is left whose last check is older than the round's start (polled
  # every 2 s once the counters say enough checks ran; failing domains are checked again 10
  # minutes after their first failure, so the counters alone would end the round too early).
  while [ "$(checks_done)" -lt "$count" ] || [ "$(sql "$backend" "$url" "SELECT COUNT(*) FROM domains WHERE last_checked_at < ${started%.*}")" -gt 0 ]; do
    kill -0 "$serve_pid" 2>/dev/null || { tail -20 "$dir/serve.log" >&2; exit 1; }
    sleep 2
  done
  round=$(echo "$(date +%s.%N) - $started" | bc)
  # The failing domains' confirmation checks would keep the verifier busy for the next half
  # hour: they are moved to tomorrow, so the second measurement has the verifier idle.
  # (Checks still being written can deadlock with this on PostgreSQL, which then aborts one
  # side: the worker's batch is released and retried, and so is this.)
  for attempt in 1 2 3 4 5; do
    sql "$backend" "$url" "UPDATE domains SET next_check_at = ${started%.*} + 86400 WHERE next_check_at < ${started%.*} + 86400" >/dev/null && break
    sleep 2
  done
  # At rest: the million rows the round rewrote vacuumed and written out (otherwise autovacuum
  # and the checkpointer work through them during the idle loads, docs/benchmarks.md).
  if [ "$backend" = postgres ]; then
    sql "$backend" "$url" "VACUUM ANALYZE" >/dev/null
    sql "$backend" "$url" "CHECKPOINT" >/dev/null
  fi
  sleep 5
  echo "== $backend: the API with the verifier idle"
  idle_detail=$(load idle detail "$dir")
  idle_list=$(load idle list "$dir")
  peak_rss=$(awk '/^VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$serve_pid/status")
  stopping=$(date +%s.%N)
  stop_serve
  shutdown=$(echo "$(date +%s.%N) - $stopping" | bc)
  unchecked=$(sql "$backend" "$url" "SELECT COUNT(*) FROM domains WHERE last_checked_at < ${started%.*}")
  if [ "$backend" = sqlite ]; then
    size=$(du -cm "$dir"/senderauth.db* | tail -1 | cut -f1)
  else
    size=$(sql "$backend" "$url" "SELECT pg_database_size('postgres') / 1048576")
    close_store
  fi
  rate=$(echo "$count / $round" | bc)
  read -r dd50 dd99 ddrate dderr <<<"$during_detail"
  read -r dl50 dl99 dlrate dlerr <<<"$during_list"
  read -r id50 id99 idrate iderr <<<"$idle_detail"
  read -r il50 il99 ilrate ilerr <<<"$idle_list"
  echo "$backend: round $(printf %.0f "$round") s ($rate domains/s), not checked $unchecked, peak RSS $peak_rss MiB, database $size MiB, shutdown $(printf %.1f "$shutdown") s"
  echo "$backend: detail p50/p99 during $dd50/$dd99 ms ($ddrate req/s, errors $dderr), idle $id50/$id99 ms ($idrate req/s, errors $iderr)"
  echo "$backend: list   p50/p99 during $dl50/$dl99 ms ($dlrate req/s, errors $dlerr), idle $il50/$il99 ms ($ilrate req/s, errors $ilerr)"
  rows+=("| $backend | $(printf %.0f "$round") s ($rate/s) | $peak_rss MiB | $dd99 / $id99 ms | $dl99 / $il99 ms | $ddrate / $idrate | $dlrate / $ilrate |")
done

echo
echo "| backend | full recheck round | peak RSS | p99 detail (during round / idle) | p99 list (during / idle) | detail req/s (during / idle) | list req/s (during / idle) |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
