#!/usr/bin/env bash
# Benchmark: bulk `senderauth verify` of N generated domains against Knot DNS on loopback,
# side by side with checkdmarc's SPF+DMARC checks (2 processes) on the same server, and the
# server's own ceiling measured with dnsperf.
#
# Usage: bench/verify.sh [N]      (default 10000; CONCURRENCY=256 and PORT=5399 may be set)
# Prints a Markdown table row set; results are recorded in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-10000}
port=${PORT:-5399}
concurrency=${CONCURRENCY:-256}
out=bench/out/verify
rm -rf "$out" && mkdir -p "$out"

need=()
for package in knot knot-dnsutils dnsperf time python3-venv; do
  dpkg -s "$package" >/dev/null 2>&1 || need+=("$package")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! .venv/bin/python3 -c "import checkdmarc" >/dev/null 2>&1; then
  python3 -m venv .venv && .venv/bin/pip install --quiet --disable-pip-version-check checkdmarc==6.0.4 dkimpy==1.1.8
fi
cargo build --release --locked -p senderauth >/dev/null 2>&1

echo "== generating $count domains"
python3 bench/gen_zone.py "$count" "$out" | tee "$out/mix.json"

knot_pid=$(scripts/knot.sh start "$out" "$port")
trap 'kill $knot_pid 2>/dev/null || true' EXIT
queries() { scripts/knot.sh queries "$out"; }

echo "== senderauth verify (concurrency $concurrency), 3 runs"
before=$(queries)
for run in 1 2 3; do
  /usr/bin/time -v target/release/senderauth verify --input "$out/domains.jsonl" --output "$out/senderauth.jsonl" \
    --nameserver "127.0.0.1:$port" --concurrency "$concurrency" --timeout 2 --quiet 2>"$out/senderauth-$run.err" || true
  grep -E "^senderauth:" "$out/senderauth-$run.err"
done
after=$(queries)
# The median run's rate (from the run's own clock, not its rounded seconds); the highest peak
# RSS of the three.
ours_rate=$(for run in 1 2 3; do grep -oP '\(\K[0-9.]+(?= domains/s\))' "$out/senderauth-$run.err"; done | sort -n | sed -n 2p)
ours_rss=$(for run in 1 2 3; do grep -oP 'Maximum resident set size \(kbytes\): \K[0-9]+' "$out/senderauth-$run.err"; done | sort -n | tail -1)
ours_server_queries=$(((after - before) / 3))

echo "== checkdmarc SPF+DMARC, 2 processes"
before=$(queries)
/usr/bin/time -v .venv/bin/python3 scripts/checkdmarc-json.py --nameserver "127.0.0.1:$port" --processes 2 \
  --input "$out/domains.jsonl" >"$out/checkdmarc.jsonl" 2>"$out/checkdmarc.err"
after=$(queries)
grep -E "^checkdmarc:" "$out/checkdmarc.err"
theirs_seconds=$(grep -oP 'in \K[0-9.]+(?=s \()' "$out/checkdmarc.err")
theirs_server_queries=$((after - before))

echo "== dnsperf against Knot (10 s)"
dnsperf -s 127.0.0.1 -p "$port" -d "$out/queries.txt" -l 10 -c 4 -T 2 -q 500 >"$out/dnsperf.txt" 2>&1 || true
ceiling=$(grep -oP 'Queries per second:\s+\K[0-9.]+' "$out/dnsperf.txt")

python3 - "$count" "$ours_rate" "$theirs_seconds" "$ours_rss" "$ours_server_queries" "$theirs_server_queries" "$ceiling" "$out" <<'PY'
import json, sys
count, ours_rate, theirs, rss, ours_q, theirs_q, ceiling, out = sys.argv[1:]
count = int(count); ours = count / float(ours_rate); theirs = float(theirs)
statuses = {}
for line in open(f"{out}/senderauth.jsonl"):
    status = json.loads(line)["status"]
    statuses[status] = statuses.get(status, 0) + 1
print()
print(f"| domains | {count} |")
print(f"| senderauth verify (DKIM+SPF+DMARC, SPF evaluated), median of 3 | {count / ours:,.0f} domains/s ({ours:.2f} s) |")
print(f"| checkdmarc check_spf+check_dmarc, 2 processes | {count / theirs:,.1f} domains/s ({theirs:.1f} s) |")
print(f"| ratio | {theirs / ours:,.1f}x |")
print(f"| senderauth queries reaching the server per domain | {int(ours_q) / count:.1f} |")
print(f"| checkdmarc queries reaching the server per domain | {int(theirs_q) / count:.1f} |")
print(f"| senderauth peak RSS | {int(rss) / 1024:.0f} MiB |")
print(f"| Knot ceiling (dnsperf, same query mix) | {float(ceiling):,.0f} queries/s |")
print(f"| statuses | {json.dumps(statuses, sort_keys=True)} |")
PY
