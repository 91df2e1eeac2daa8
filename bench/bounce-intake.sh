#!/usr/bin/env bash
# Benchmark: COUNT (10,000) bounces (RFC 3464 DSNs, as Postfix writes them) into the bounce
# listener of `senderauth serve` on SQLite, over CONNECTIONS sessions, each to one of 100
# envelope senders at the domain's return-path (each token checked at RCPT):
# messages per second and the latency from the end of DATA to the 250 (given once the bounce
# and its recipient are stored, with the message.bounced event).
#
# Usage: bench/bounce-intake.sh [COUNT]     CONNECTIONS=8 BOUNCES_PORT=2597 API_PORT=8097
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-10000}
connections=${CONNECTIONS:-8}
api_port=${API_PORT:-8097}
bounces_port=${BOUNCES_PORT:-2597}
dns_port=5397
api=http://127.0.0.1:$api_port
admin_token=sa_bench_admin_token_bounce_intake
source bench/lib.sh
cargo build --release --locked -p senderauth >/dev/null 2>&1
dir=bench/out/bounce-intake
open_store sqlite "$dir"
serve "$dir" "$url" --dns-listen 127.0.0.1:0 --smtp-listen 127.0.0.1:0 --reports-listen 127.0.0.1:0 \
  --bounces-listen "127.0.0.1:$bounces_port"
token=$(curl -sf -X POST "$api/api/v1/accounts" -H "authorization: Bearer $admin_token" \
  -H 'content-type: application/json' -d '{"name": "Bench"}' | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
curl -sf -X POST "$api/api/v1/domains" -H "authorization: Bearer $token" -H 'content-type: application/json' \
  -d '{"email": "news@shop.example.com"}' >/dev/null
# Bounces to the domain's return-path (the listener takes it for the domain's tokens whatever
# its state), each tied to the domain: its recipients stored, its message.bounced event queued.
python3 bench/bounce-intake.py "127.0.0.1:$bounces_port" "$dir/master-key" 1 1 rp.shop.example.com "$count" "$connections"
stored=$(sql sqlite "$url" "SELECT COUNT(*) FROM bounces")
recipients=$(sql sqlite "$url" "SELECT COUNT(*) FROM bounce_recipients")
echo "bounces stored: $stored, recipients: $recipients"
stop_serve
