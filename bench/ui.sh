#!/usr/bin/env bash
# Benchmark: the web UI's pages with N domains (default 100,000) in one account, on SQLite (and
# PostgreSQL with BACKENDS="sqlite postgres"), against Knot DNS on loopback serving every
# customer's records (bench/gen_zone.py's mix of correct and broken setups).
#
# The store is seeded with the domains, due for a check; the service checks them all (so every
# domain has a real latest result and check log), then the next checks are moved to tomorrow
# and, with the verifier idle, each kind of page is requested one at a time (wrk, 1 connection:
# the time is the server's, with no queueing) as the signed-in account: the domains list, a
# search, a status filter, a page deep in the list, a domain's setup page (planned against DNS
# now, through the service's resolver), its history page and its live state (what an open
# setup page asks every 3 s). All the while, POLLERS open setup pages (default 100) ask for
# their domains' live state every 3 s, as their script does.
#
# Usage: bench/ui.sh [N]
#   BACKENDS="sqlite"  LOAD_SECONDS=15 (per page kind)  POLLERS=100  DNS_PORT=5399 API_PORT=8099 PG_PORT=5435
# Prints Markdown table rows; results are recorded in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-100000}
backends=${BACKENDS:-sqlite}
load_seconds=${LOAD_SECONDS:-15}
pollers=${POLLERS:-100}
dns_port=${DNS_PORT:-5399}
api_port=${API_PORT:-8099}
pg_port=${PG_PORT:-5435}
out=bench/out/ui
api=http://127.0.0.1:$api_port

source bench/lib.sh
install_missing knot knot-dnsutils wrk postgresql curl
cargo build --release --locked -p senderauth >/dev/null 2>&1

zone=$out/zone-$count-1
start_knot "$zone" "$count" 1

sign_in() { # TOKEN: prints the session cookie, signing in through the form like a browser
  local jar form csrf
  jar=$(mktemp)
  form=$(curl -sf -c "$jar" "$api/ui/sign-in")
  csrf=$(printf '%s' "$form" | sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' | head -1)
  curl -sf -b "$jar" -c "$jar" -o /dev/null --data-urlencode "token=$1" --data-urlencode "csrf=$csrf" "$api/ui/sign-in"
  awk '$6 == "senderauth_session" { print "senderauth_session=" $7 }' "$jar"
  rm -f "$jar"
}

rows=()
for backend in $backends; do
  dir=$out/$backend
  open_store "$backend" "$dir"
  echo "== $backend: seeding $count domains in one account, checking them all"
  serve "$dir" "$url" --dns-listen 127.0.0.1:0 && stop_serve
  python3 bench/seed_store.py "$zone/domains.jsonl" 1 "$url" "$dir/targets.tsv"
  started=$(date +%s)
  serve "$dir" "$url" --dns-listen 127.0.0.1:0
  while [ "$(sql "$backend" "$url" "SELECT COUNT(*) FROM domains WHERE last_checked_at < $started")" -gt 0 ]; do
    kill -0 "$serve_pid" 2>/dev/null || { tail -20 "$dir/serve.log" >&2; exit 1; }
    sleep 2
  done
  for attempt in 1 2 3 4 5; do
    sql "$backend" "$url" "UPDATE domains SET next_check_at = $started + 86400 WHERE next_check_at < $started + 86400" >/dev/null && break
    sleep 2
  done
  if [ "$backend" = postgres ]; then
    sql "$backend" "$url" "VACUUM ANALYZE" >/dev/null
    sql "$backend" "$url" "CHECKPOINT" >/dev/null
  fi
  # Nothing left for the verifier: the pages are timed alone (but for the pollers).
  due=$(sql "$backend" "$url" "SELECT COUNT(*) FROM domains WHERE next_check_at < $started + 86400")
  [ "$due" = 0 ] || { echo "$due domains are still due; the measurement would include their checks" >&2; exit 1; }
  sleep 3
  token=$(head -1 "$dir/targets.tsv" | cut -f1)
  cookie=$(sign_in "$token")
  [ -n "$cookie" ] || { echo "signing in failed" >&2; exit 1; }
  domain=$(head -1 "$dir/targets.tsv" | cut -f2)
  # Each kind of page answers 200 with what it should show before it is timed (grep -c reads it
  # all: grep -q would close the pipe early, and curl's failure to write would end the script).
  curl -sf -H "Cookie: $cookie" "$api/ui/domains" | grep -c 'rel="next"' >/dev/null
  curl -sf -H "Cookie: $cookie" "$api/ui/domains/$domain" | grep -c 'id="records-title"' >/dev/null
  curl -sf -H "Cookie: $cookie" "$api/ui/domains/$domain/history" | grep -c 'id="checks-title"' >/dev/null
  curl -sf -H "Cookie: $cookie" "$api/ui/domains/$domain/state" | grep -c '"stamp"' >/dev/null
  # The open pages, polling all through the measurements.
  wrk -t 1 -c "$pollers" -d 3600s -s bench/ui-load.lua "$api" -- poll "$dir/targets.tsv" "$cookie" >"$dir/wrk-poll.txt" &
  poll_pid=$!
  row="| $backend | $count |"
  for mode in list search status page setup history state; do
    file="$dir/wrk-$mode.txt"
    wrk -t 1 -c 1 -d "${load_seconds}s" --latency -s bench/ui-load.lua "$api" -- "$mode" "$dir/targets.tsv" "$cookie" >"$file"
    wrk_latency "$file"
    echo "$backend $mode: p50 $p50 ms, p99 $p99 ms, non-2xx ${errors:-0}"
    row="$row $p50 / $p99 |"
  done
  kill "$poll_pid" 2>/dev/null; wait "$poll_pid" 2>/dev/null || true
  rows+=("$row")
  stop_serve
  close_store
done

echo
echo "| backend | domains in the account | list | search | status filter | deep page | setup page | history page | live state |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo "(p50 / p99 server time in ms, one request at a time, with $pollers open pages polling)"
