#!/usr/bin/env bash
# Try senderauth on one machine, without internet: Knot DNS on 127.0.0.1:5390 serves 40
# generated customer domains (correct, partial and broken setups) and the platform's zone
# esp.example; senderauth shows the records a customer adds, verifies domains one by one and
# in bulk, and analyses a domain. Runs on the defaults in config/provider.example.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${PORT:-5390}
dir=$(mktemp -d /tmp/senderauth-demo.XXXXXX)
cargo build --release --locked -p senderauth >/dev/null 2>&1 || cargo build --release --locked -p senderauth
python3 bench/gen_zone.py 40 "$dir" >/dev/null
knot_pid=$(scripts/knot.sh start "$dir" "$port")
trap 'kill $knot_pid 2>/dev/null || true; rm -rf "$dir"' EXIT
senderauth() { target/release/senderauth "$@" --nameserver "127.0.0.1:$port"; }
# The first generated domain with a given kind of setup, as "DOMAIN ACCOUNT".
pick() { python3 -c "import json; rows=[json.loads(l) for l in open('$dir/domains.jsonl')]; r=next(r for r in rows if r['setup']=='$1'); print(r['domain'], r['account'])"; }
step() { printf '\n\033[1m$ senderauth %s\033[0m\n' "$*"; }

read -r good good_account < <(pick verified)
read -r merged merged_account < <(pick verified_other_includes)
step "records news@$good --account $good_account"
senderauth records "news@$good" --account "$good_account" || true

step "records hello@$merged --account $merged_account --format zone"
senderauth records "hello@$merged" --account "$merged_account" --format zone || true

for setup in verified dkim_only inherits_dmarc wrong_cname too_many_lookups; do
  read -r domain account < <(pick $setup)
  step "verify --account $account $domain      # $setup"
  senderauth verify --account "$account" "$domain" || true
done

step "verify --input domains.jsonl --output results.jsonl      # all 40, in bulk"
senderauth verify --input "$dir/domains.jsonl" --output "$dir/results.jsonl" || true
echo "first result:"
head -1 "$dir/results.jsonl" | cut -c1-300
echo "..."

step "check $good --dkim-selector sa1-$good_account"
senderauth check "$good" --dkim-selector "sa1-$good_account" || true
