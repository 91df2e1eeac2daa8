#!/usr/bin/env bash
# Benchmark: DMARC aggregate report parsing, one core, no DNS, against parsedmarc (PyPI) in the
# same run: records per second on parsedmarc's largest sample (2,286 records) and reports per
# second on a one-record report. senderauth is timed through `senderauth dmarc parse` (the whole
# command: reading, unpacking, parsing, and writing JSON Lines to /dev/null) over the file given
# many times; parsedmarc through parse_report_file(offline=True) in a loop (no output written).
#
# Usage: bench/dmarc-parse.sh        SECONDS_EACH=10 (per measurement, roughly)
# Prints a Markdown table; results are recorded in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${SECONDS_EACH:-10}
source bench/lib.sh
install_missing bc
samples=../shared/testdata/dmarc-reports/parsedmarc/samples/aggregate
large="$samples/!large-example.com!1711897200!1711983600.xml"
small="$samples/!example.com!1538204542!1538463818.xml"
[ -f "$large" ] && [ -f "$small" ] || { echo "the shared test data is missing beside the project" >&2; exit 1; }
if ! .venv/bin/python3 -c "import parsedmarc" >/dev/null 2>&1; then
  python3 -m venv .venv
  .venv/bin/pip install -q parsedmarc==11.1.0
fi
cargo build --release --locked -p senderauth >/dev/null 2>&1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$large" "$work/l.xml"
cp "$small" "$work/s.xml"

ours() { # FILE COPIES: seconds for one `dmarc parse` of FILE given COPIES times, on core 0
  local file=$1 copies=$2 started ended
  local args=()
  for _ in $(seq 1 "$copies"); do args+=("$file"); done
  started=$(date +%s.%N)
  (cd "$work" && taskset -c 0 "$OLDPWD/target/release/senderauth" dmarc parse "${args[@]}" >/dev/null)
  ended=$(date +%s.%N)
  echo "$ended - $started" | bc -l
}

theirs() { # FILE: parsedmarc's reports per second on FILE, on core 0, for about $seconds
  taskset -c 0 .venv/bin/python3 - "$1" "$seconds" <<'PY'
import sys, time, logging
logging.disable(logging.CRITICAL)
import parsedmarc
path, budget = sys.argv[1], float(sys.argv[2])
parsedmarc.parse_report_file(path, offline=True)  # warm up
count, started = 0, time.perf_counter()
while time.perf_counter() - started < budget:
    parsedmarc.parse_report_file(path, offline=True)
    count += 1
print(count / (time.perf_counter() - started))
PY
}

# Enough copies for about $seconds each (a first short run sizes it).
rate_ours() { # FILE: reports per second
  local file=$1 probe copies took
  probe=$(ours "$file" 20)
  copies=$(echo "c = $seconds / ($probe / 20); if (c < 20) c = 20; scale=0; c / 1" | bc -l)
  took=$(ours "$file" "$copies")
  echo "$copies / $took" | bc -l
}

large_ours=$(rate_ours l.xml)
large_theirs=$(theirs "$work/l.xml")
small_ours=$(rate_ours s.xml)
small_theirs=$(theirs "$work/s.xml")
printf '| report | senderauth (reports/s) | parsedmarc (reports/s) | records/s, senderauth | records/s, parsedmarc | ratio |\n'
printf '|---|---|---|---|---|---|\n'
printf '| largest sample, 2,286 records | %.1f | %.2f | %.0f | %.0f | %.1fx |\n' \
  "$large_ours" "$large_theirs" "$(echo "$large_ours * 2286" | bc -l)" "$(echo "$large_theirs * 2286" | bc -l)" \
  "$(echo "$large_ours / $large_theirs" | bc -l)"
printf '| one record | %.0f | %.1f | %.0f | %.1f | %.1fx |\n' \
  "$small_ours" "$small_theirs" "$small_ours" "$small_theirs" "$(echo "$small_ours / $small_theirs" | bc -l)"
echo "(one core each: taskset -c 0; no DNS: parsedmarc offline)"
