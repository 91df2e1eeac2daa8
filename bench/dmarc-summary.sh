#!/usr/bin/env bash
# Benchmark: a domain's DMARC summary with ROWS report records stored about it (default
# 1,000,000: 120 reports over 30 days, bench/dmarc-summary.py's mix of a large sender), on SQLite
# and PostgreSQL. The reports are taken in with `senderauth dmarc import` (the same path as the
# report listener: classed, added up, the original kept), then `senderauth serve` answers, one
# request at a time (wrk, 1 connection), the summary (`GET /api/v1/domains/D/dmarc?days=30`: the
# totals, the way to enforcement with the failing senders, each receiver's coverage: what the
# reports page reads) and the sources (`.../dmarc/sources?days=30`, the 100 largest).
#
# Usage: bench/dmarc-summary.sh [ROWS]   BACKENDS="sqlite postgres" LOAD_SECONDS=15 API_PORT=8097 PG_PORT=5435
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-1000000}
backends=${BACKENDS:-sqlite postgres}
load_seconds=${LOAD_SECONDS:-15}
api_port=${API_PORT:-8097}
pg_port=${PG_PORT:-5435}
dns_port=5399
api=http://127.0.0.1:$api_port
domain=big.example.com
token=bench-dmarc-summary-token-0123456789abcdef
source bench/lib.sh
install_missing wrk postgresql curl
cargo build --release --locked -p senderauth >/dev/null 2>&1
out=bench/out/dmarc-summary
now=$(date +%s)
rm -rf "$out/reports"
python3 bench/dmarc-summary.py "$out/reports" "$domain" "$now" "$rows"
serve_pid=""
pg_dir=""
trap '[ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null; [ -n "$pg_dir" ] && scripts/postgres.sh stop "$pg_dir"' EXIT

results=()
for backend in $backends; do
  dir=$out/$backend
  open_store "$backend" "$dir"
  serve "$dir" "$url" --dns-listen 127.0.0.1:0 && stop_serve
  python3 bench/dmarc-summary.py seed "$url" "$domain" "$now" "$token"
  started=$(date +%s.%N)
  target/release/senderauth dmarc import --database-url "$url" "$out"/reports/*.xml.gz >"$dir/import.log"
  took=$(echo "$(date +%s.%N) - $started" | bc)
  stored=$(sql "$backend" "$url" "SELECT COUNT(*) FROM dmarc_rows")
  echo "== $backend: $stored rows imported in ${took}s ($(echo "$stored / $took" | bc) rows/s)"
  # The import raised dmarc.platform_failing (the mix has the platform's mail failing), which
  # brings the domain's check forward; with no DNS here that check would find nothing.
  sql "$backend" "$url" "UPDATE domains SET next_check_at = $((now + 30 * 86400))" >/dev/null
  serve "$dir" "$url" --dns-listen 127.0.0.1:0
  curl -sf -H "Authorization: Bearer $token" "$api/api/v1/domains/$domain/dmarc?days=30" >"$dir/summary.json"
  python3 -c "import json, sys
summary = json.load(open(sys.argv[1]))
print('   summary:', summary['messages'], 'messages,', len(summary['receivers']), 'receivers, verdict', summary['recommendation']['verdict'],
      ', failing senders', len(summary['recommendation']['failing_senders']))" "$dir/summary.json"
  row="| $backend | $stored |"
  for path in "dmarc?days=30" "dmarc/sources?days=30"; do
    file="$dir/wrk-${path%%\?*}.txt"
    file=${file//\//-}
    wrk -t 1 -c 1 -d "${load_seconds}s" --latency -H "Authorization: Bearer $token" "$api/api/v1/domains/$domain/$path" >"$file"
    wrk_latency "$file"
    echo "   $path: p50 $p50 ms, p99 $p99 ms, non-2xx ${errors:-0}"
    row="$row $p50 / $p99 |"
  done
  results+=("$row")
  stop_serve
  close_store
done
echo
echo "| backend | rows stored | summary (30 days) | sources (30 days) |"
echo "|---|---|---|---|"
printf '%s\n' "${results[@]}"
echo "(p50 / p99 server time in ms, one request at a time)"
