#!/usr/bin/env bash
# Benchmark: the SMTP gateway. Messages of SIZE bytes (default 10 KB) go through SMTP to
# `senderauth serve` (signed in with an account token, MAIL/RCPT/DATA pipelined, CONNECTIONS
# sessions), are signed and relayed to Postfix's smtp-sink on loopback; measured: messages per
# second and latency (MAIL to the final reply, which comes once the sink has the message), for a
# domain with an RSA-2048 key, one signing with Ed25519 alongside RSA-2048 (two signatures per
# message), and a domain the account does not have
# (rewritten to the variable domain, signed with its RSA-2048 key); and an RSA-2048 domain whose
# return-path is in use (envelope sender b+...@rp.<domain>) against one without (the bounce
# domain), in turns A B A B, with their ratio. Next to them, the raw signing
# rate of the same code and key sizes in a loop (`senderauth keys speed`), on the same 2 cores,
# and the machine's limit: `openssl speed -multi <cores> rsa2048` before and after the runs, with
# the RSA-2048 domain's rate as a share of it (issue 17).
#
# The harness (smtp-sink and the load generator) shares the two cores with the gateway, which
# `openssl speed` does not. It runs at SCHED_BATCH, so that its wake-ups (two each per message)
# do not preempt the gateway's signing mid-signature: it gets the same CPU time, in fewer and
# longer turns. The RSA-2048 domain is measured once more with the harness at the normal policy,
# and both shares are printed.
#
# Usage: bench/smtp.sh [SIZE]
#   SECONDS_PER_RUN=20  CONNECTIONS=32  LOAD_GENERATOR=c|python  API_PORT=8099 SMTP_PORT=2598 SINK_PORT=2599 DNS_PORT=5397
# Prints a Markdown table; results are recorded in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-10240}
seconds=${SECONDS_PER_RUN:-20}
connections=${CONNECTIONS:-32}
api_port=${API_PORT:-8099}
smtp_port=${SMTP_PORT:-2598}
sink_port=${SINK_PORT:-2599}
dns_port=${DNS_PORT:-5397}
api=http://127.0.0.1:$api_port
admin_token=bench-admin-token-not-secret

source bench/lib.sh
install_missing postfix curl
cargo build --release --locked -p senderauth >/dev/null 2>&1

out=bench/out/smtp
rm -rf "$out" && mkdir -p "$out"
# The load generator: bench/smtp-load.c (the C compiler Rust links with builds it), or with
# LOAD_GENERATOR=python the same load from bench/smtp-load.py, which takes more of the two cores.
if [ "${LOAD_GENERATOR:-c}" = python ]; then
  load=(python3 bench/smtp-load.py)
else
  cc -O2 -pthread -o "$out/smtp-load" bench/smtp-load.c
  load=("$out/smtp-load")
fi
batch=(chrt --batch 0)
"${batch[@]}" smtp-sink -u nobody "127.0.0.1:$sink_port" 1000 &
sink_pid=$!
serve_pid=""
trap 'kill $sink_pid 2>/dev/null; [ -n "$serve_pid" ] && kill $serve_pid 2>/dev/null; wait; true' EXIT

# The machine's limit (issue 17): OpenSSL's own RSA-2048 signing rate on every core, measured
# before the gateway's runs and again after them.
openssl_rate() {
  openssl speed -seconds 3 -multi "$(nproc)" rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ { print $6 }' | tail -1
}
openssl_before=$(openssl_rate)
echo "== openssl speed -multi $(nproc) rsa2048: $openssl_before sign/s"

echo "== raw signing rate (senderauth keys speed, $size-byte messages)"
target/release/senderauth keys speed --seconds 5 --size "$size" | tee "$out/speed.txt"
raw_rsa=$(awk '$1 == "rsa-2048" { print $2 }' "$out/speed.txt")
raw_ed=$(awk '$1 == "ed25519" { print $2 }' "$out/speed.txt")
# Both signatures on each message: the raw rate of the pair.
raw_dual=$(python3 -c "print(round(1 / (1 / $raw_rsa + 1 / $raw_ed)))")

# The service: the SMTP gateway relaying to the sink; its verifier asks only its own DNS server
# (nothing leaves loopback).
SENDERAUTH_ADMIN_TOKEN=$admin_token target/release/senderauth serve --listen "127.0.0.1:$api_port" \
  --dns-listen "127.0.0.1:$dns_port" --nameserver "127.0.0.1:$dns_port" --smtp-listen "127.0.0.1:$smtp_port" --smtp-upstream "127.0.0.1:$sink_port" \
  --data-dir "$out" >>"$out/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 1 300); do curl -sf "$api/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
account=$(curl -sf -H "Authorization: Bearer $admin_token" --json '{"name": "Bench"}' "$api/api/v1/accounts")
token=$(printf '%s' "$account" | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
for domain in "rsa.bench.example rsa-2048" "ed.bench.example ed25519" "aligned.bench.example rsa-2048"; do
  set -- $domain
  curl -sf -H "Authorization: Bearer $token" --json "{\"email\": \"news@$1\", \"dkim_algorithm\": \"$2\"}" \
    "$api/api/v1/domains" >/dev/null
done
# Their DNS records are taken as verified (this measures the gateway, not the verifier).
sql sqlite "sqlite://$out/senderauth.db" "UPDATE domains SET status = 'verified'" >/dev/null
sql sqlite "sqlite://$out/senderauth.db" "UPDATE domains SET rp_status = 'verified' WHERE domain = 'aligned.bench.example'" >/dev/null

rows=()
for case in "rsa.bench.example RSA-2048 $raw_rsa" "ed.bench.example RSA-2048+Ed25519 $raw_dual" "rewritten.example RSA-2048 $raw_rsa"; do
  set -- $case
  echo "== news@$1 ($2), $connections connections, $seconds s"
  result=$("${batch[@]}" "${load[@]}" "127.0.0.1:$smtp_port" "$token" "news@$1" "$size" "$seconds" "$connections")
  echo "$result"
  rate=$(printf '%s' "$result" | python3 -c 'import json, sys; print(json.load(sys.stdin)["per_second"])')
  p50=$(printf '%s' "$result" | python3 -c 'import json, sys; print(json.load(sys.stdin)["p50_ms"])')
  p99=$(printf '%s' "$result" | python3 -c 'import json, sys; print(json.load(sys.stdin)["p99_ms"])')
  failures=$(printf '%s' "$result" | python3 -c 'import json, sys; print(json.load(sys.stdin)["failures"])')
  share=$(python3 -c "print(round(100 * $rate / $3))")
  label=$([ "$1" = rewritten.example ] && echo "rewritten, variable domain's $2" || echo "$1 ($2)")
  rows+=("| $label | $rate | $p50 / $p99 ms | $3 | $share% | $failures |")
  [ "$1" = rsa.bench.example ] && rows_rsa_rate=$rate
done

# The RSA-2048 domain again with the harness at the normal policy (smtp-sink switched, the load
# generator started without chrt): the share as measured before the harness ran at SCHED_BATCH.
chrt --all-tasks --other -p 0 "$sink_pid"
echo "== news@rsa.bench.example (RSA-2048), the harness at the normal policy, $connections connections, $seconds s"
result=$("${load[@]}" "127.0.0.1:$smtp_port" "$token" "news@rsa.bench.example" "$size" "$seconds" "$connections")
echo "$result"
normal_rate=$(printf '%s' "$result" | python3 -c 'import json, sys; print(json.load(sys.stdin)["per_second"])')
chrt --all-tasks --batch -p 0 "$sink_pid"

# The return-path's envelope against the bounce domain's, in turns.
declare -A turns
for turn in 1 2; do
  for domain in aligned.bench.example rsa.bench.example; do
    result=$("${batch[@]}" "${load[@]}" "127.0.0.1:$smtp_port" "$token" "news@$domain" "$size" "$seconds" "$connections")
    echo "== turn $turn news@$domain: $result"
    rate=$(printf '%s' "$result" | python3 -c 'import json, sys; print(json.load(sys.stdin)["per_second"])')
    turns[$domain]="${turns[$domain]:-} $rate"
  done
done
aligned=$(python3 -c "import sys; print(sum(map(float, sys.argv[1:])) / 2)" ${turns[aligned.bench.example]})
bounce=$(python3 -c "import sys; print(sum(map(float, sys.argv[1:])) / 2)" ${turns[rsa.bench.example]})
ratio=$(python3 -c "print(round($aligned / $bounce, 3))")
rss=$(awk '/^VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$serve_pid/status")
openssl_after=$(openssl_rate)
openssl_mean=$(python3 -c "print(round(($openssl_before + $openssl_after) / 2, 1))")

echo
echo "| messages from | through the gateway (msg/s) | latency p50 / p99 | raw signing rate (sig/s) | share | failed |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo "(peak RSS of the service: $rss MiB)"
echo "openssl speed -multi $(nproc) rsa2048: $openssl_before before, $openssl_after after (mean $openssl_mean sign/s);" \
  "the gateway's RSA-2048 domain: $(python3 -c "print(round(100 * ${rows_rsa_rate:-0} / $openssl_mean, 1))")% of it;" \
  "with the harness at the normal policy: $normal_rate msg/s, $(python3 -c "print(round(100 * $normal_rate / $openssl_mean, 1))")%"
echo "return-path envelopes: $aligned msg/s (turns:${turns[aligned.bench.example]}), bounce domain: $bounce msg/s (turns:${turns[rsa.bench.example]}), ratio $ratio"
