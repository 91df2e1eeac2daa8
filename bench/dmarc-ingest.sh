#!/usr/bin/env bash
# Benchmark: 10,000 distinct DMARC report messages (gzip attachments, as receivers send them)
# into the report listener of `senderauth serve` on SQLite, over CONNECTIONS sessions: messages
# per second and the latency from the end of DATA to the 250 (given once the report is stored).
#
# Usage: bench/dmarc-ingest.sh [COUNT]     CONNECTIONS=8 REPORTS_PORT=2599 API_PORT=8098
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-10000}
connections=${CONNECTIONS:-8}
api_port=${API_PORT:-8098}
reports_port=${REPORTS_PORT:-2599}
dns_port=5399
api=http://127.0.0.1:$api_port
source bench/lib.sh
cargo build --release --locked -p senderauth >/dev/null 2>&1
dir=bench/out/dmarc-ingest
open_store sqlite "$dir"
serve "$dir" "$url" --dns-listen 127.0.0.1:0 --smtp-listen 127.0.0.1:0 --reports-listen "127.0.0.1:$reports_port"
python3 bench/dmarc-ingest.py "127.0.0.1:$reports_port" dmarc@reports.esp.example "$count" "$connections" shop.example.com
stored=$(sql sqlite "$url" "SELECT COUNT(*) FROM dmarc_reports")
echo "reports stored: $stored"
stop_serve
