#!/usr/bin/env bash
# Benchmark (issue 17): RSA-2048 signatures per second on every core, for each implementation
# the gateway could sign with, in ROUNDS rounds, each round all of them one after the other:
# `openssl speed -multi <cores> rsa2048` (the machine's limit), `senderauth keys speed` (the
# gateway's own signing code), and bench/rsa-speed (ring, aws-lc-rs and the openssl crate signing
# with one key, 1 KB messages). Also the cold build time of bench/rsa-speed's crates.
#
# Usage: bench/rsa-speed.sh      ROUNDS=3 SECONDS_PER_RUN=5
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-3}
seconds=${SECONDS_PER_RUN:-5}
cores=$(nproc)
cargo build --release --locked -p senderauth >/dev/null 2>&1
start=$(date +%s)
(cd bench/rsa-speed && CARGO_TARGET_DIR=../out/rsa-speed-target cargo build --release --locked >/dev/null 2>&1)
echo "bench/rsa-speed built in $(($(date +%s) - start)) s (ring, aws-lc-rs, openssl crates; warm if built before)"
for round in $(seq 1 "$rounds"); do
  echo "== round $round"
  openssl speed -seconds "$seconds" -multi "$cores" rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ { print "openssl speed      " $6 }' | tail -1
  target/release/senderauth keys speed --seconds "$seconds" --size 1024 | awk '$1 == "rsa-2048" { print "keys speed (ring) " $2 }'
  bench/out/rsa-speed-target/release/rsa-speed "$seconds"
done
