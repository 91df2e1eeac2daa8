#!/usr/bin/env bash
# Benchmark: the embedded authoritative DNS server of `senderauth serve` against Knot DNS serving
# the same records, with dnsperf, and the server's memory with N domains' keys published.
#
# The store (SQLite) is seeded with N connected domains in ACCOUNTS accounts (default 1,000,000
# and 10,000), each with its two hosted DKIM keys (real RSA-2048 public keys) and its account's
# SPF include: 2N key records. `senderauth zone export` writes the zone, Knot loads that file,
# and `senderauth serve` serves the same from the store. Both are then asked the same queries
# (random key names, 10% names that do not exist) by dnsperf, one server at a time: in each of
# ROUNDS rounds Knot then senderauth over UDP, then both over TCP (dnsperf -m tcp); medians
# reported.
#
# Usage: bench/dns.sh [N] [ACCOUNTS]
#   SECONDS_PER_RUN=20  ROUNDS=3  CLIENTS=16 (dnsperf's -c)  THREADS=2 (dnsperf's -T)
#   KNOT_PORT=5397 OURS_PORT=5398 API_PORT=8098
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-1000000}
accounts=${2:-10000}
seconds=${SECONDS_PER_RUN:-20}
clients=${CLIENTS:-16}
threads=${THREADS:-2}
knot_port=${KNOT_PORT:-5397}
ours_port=${OURS_PORT:-5398}
api_port=${API_PORT:-8098}
out=bench/out/dns
zone=bench/out/service/zone-$count-$accounts

need=()
for package in knot knot-dnsutils dnsperf openssl; do
  dpkg -s "$package" >/dev/null 2>&1 || need+=("$package")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --locked -p senderauth >/dev/null 2>&1
binary=target/release/senderauth

if [ ! -f "$zone/domains.jsonl" ]; then
  echo "== generating $count domains in $accounts accounts"
  mkdir -p "$zone"
  python3 bench/gen_zone.py "$count" "$zone" "$accounts" >"$zone/mix.json.tmp"
  mv "$zone/mix.json.tmp" "$zone/mix.json"
fi

rm -rf "$out" && mkdir -p "$out/data" "$out/knot/run" "$out/knot/db"
serve_pid=""
knot_pid=""
cleanup() {
  [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null
  [ -n "$knot_pid" ] && kill "$knot_pid" 2>/dev/null
  true
}
trap cleanup EXIT
url="sqlite://$PWD/$out/data/senderauth.db"
serve() {
  SENDERAUTH_ADMIN_TOKEN=bench-admin-token-not-secret $binary serve --listen "127.0.0.1:$api_port" \
    --dns-listen "127.0.0.1:$ours_port" --data-dir "$out/data" --database-url "$url" >>"$out/serve.log" 2>&1 &
  serve_pid=$!
}

# Seeding is deterministic and takes minutes at a million domains: the seeded data directory
# is kept next to the generated domains and copied for the next run.
seeded=$zone/seeded-store
if [ -f "$seeded/senderauth.db" ]; then
  echo "== the store seeded by an earlier run ($seeded)"
  cp -r "$seeded/." "$out/data/"
else
  echo "== seeding $count domains with 2 keys each"
  serve
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$api_port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  kill "$serve_pid" && wait "$serve_pid" || true
  serve_pid=""
  SEED_KEYS=1 SEED_NOT_DUE=1 python3 bench/seed_store.py "$zone/domains.jsonl" "$accounts" "$url" "$out/targets.tsv"
  rm -rf "$seeded.tmp" && cp -r "$out/data" "$seeded.tmp" && mv "$seeded.tmp" "$seeded"
fi

echo "== zone export"
started=$(date +%s.%N)
$binary zone export --data-dir "$out/data" --database-url "$url" -o "$out/knot/esp.example.zone"
export_seconds=$(echo "$(date +%s.%N) - $started" | bc)
records=$(grep -c " IN TXT " "$out/knot/esp.example.zone")

echo "== Knot loads it"
cat >"$out/knot/knot.conf" <<KNOT
server:
    rundir: "$PWD/$out/knot/run"
    listen: 127.0.0.1@$knot_port
database:
    storage: "$PWD/$out/knot/db"
template:
  - id: default
    storage: "$PWD/$out/knot"
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: esp.example
    file: esp.example.zone
log:
  - target: stderr
    any: warning
KNOT
started=$(date +%s.%N)
knotd -c "$out/knot/knot.conf" >"$out/knot/knotd.log" 2>&1 &
knot_pid=$!
until kdig +short +time=1 @127.0.0.1 -p "$knot_port" esp.example SOA 2>/dev/null | grep -q hostmaster; do
  kill -0 "$knot_pid" || { cat "$out/knot/knotd.log"; exit 1; }
  sleep 0.5
done
knot_load=$(echo "$(date +%s.%N) - $started" | bc)

echo "== senderauth serve loads it from the store"
started=$(date +%s.%N)
serve
until kdig +short +time=1 @127.0.0.1 -p "$ours_port" esp.example SOA 2>/dev/null | grep -q hostmaster; do
  kill -0 "$serve_pid" || { tail "$out/serve.log"; exit 1; }
  sleep 0.5
done
ours_load=$(echo "$(date +%s.%N) - $started" | bc)
sleep 2

# The queries: key names of random domains (both selectors), and 10% that do not exist.
python3 - "$zone/domains.jsonl" "$out/queries.txt" <<'PY'
import json, random, sys
rng = random.Random(5353)
domains = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8")]
with open(sys.argv[2], "w", encoding="utf-8") as out:
    for _ in range(200_000):
        entry = rng.choice(domains)
        name = f"sa{rng.choice((1, 2))}-{entry['account']}.{entry['domain'].replace('-', '--').replace('.', '-')}.dkim.esp.example"
        if rng.random() < 0.1:
            name = "missing-" + name
        out.write(f"{name} TXT\n")
PY

perf() { # PORT MODE: prints "qps avg-latency-ms lost"
  dnsperf -s 127.0.0.1 -p "$1" -m "$2" -d "$out/queries.txt" -l "$seconds" -c "$clients" -T "$threads" -e -b 4096 \
    >"$out/dnsperf-$1-$2.txt" 2>&1 || true
  awk '/Queries per second/ { qps = $4 } /Average Latency/ { latency = $4 } /Queries lost/ { lost = $3 }
    END { printf "%.0f %.3f %s", qps, latency * 1000, lost }' "$out/dnsperf-$1-$2.txt"
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# The servers in turns, UDP then TCP, in each round; the medians are reported.
rounds=${ROUNDS:-3}
echo "== $rounds rounds of $seconds s per server and transport (dnsperf -c $clients -T $threads)"
: >"$out/rounds.txt"
for round in $(seq 1 "$rounds"); do
  for mode in udp tcp; do
    read -r knot_qps knot_latency knot_lost <<<"$(perf "$knot_port" "$mode")"
    read -r ours_qps ours_latency ours_lost <<<"$(perf "$ours_port" "$mode")"
    ratio=$(echo "scale=2; $ours_qps / $knot_qps" | bc)
    echo "$round $mode $knot_qps $ours_qps $ratio $knot_latency $ours_latency $knot_lost $ours_lost" >>"$out/rounds.txt"
    echo "round $round $mode: Knot $knot_qps q/s (avg $knot_latency ms, lost $knot_lost), senderauth $ours_qps q/s (avg $ours_latency ms, lost $ours_lost): ratio $ratio"
  done
done
ours_rss=$(awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$serve_pid/status")
ours_hwm=$(awk '/^VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$serve_pid/status")
knot_rss=$(awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$knot_pid/status")

echo
echo "zone: $records TXT records; zone export $(printf %.1f "$export_seconds") s"
echo "Knot:             RSS $knot_rss MiB, loaded in $(printf %.1f "$knot_load") s"
echo "senderauth serve: RSS $ours_rss MiB (peak $ours_hwm MiB), loaded in $(printf %.1f "$ours_load") s"
for mode in udp tcp; do
  knot=$(awk -v m="$mode" '$2 == m { print $3 }' "$out/rounds.txt" | median)
  ours=$(awk -v m="$mode" '$2 == m { print $4 }' "$out/rounds.txt" | median)
  ratios=$(awk -v m="$mode" '$2 == m { printf "%s%s", sep, $5; sep = " / " }' "$out/rounds.txt")
  echo "$mode: median Knot $knot q/s, senderauth $ours q/s; ratios by round $ratios; median ratio $(awk -v m="$mode" '$2 == m { print $5 }' "$out/rounds.txt" | median)"
done
