#!/usr/bin/env bash
# Benchmark: the fuzz-style run of the report reader. CASES random and mutated inputs made from
# the real samples (../shared/testdata) go through unpacking and parsing on every core; any
# panic fails the run and keeps its input in target/fuzz-failures/.
#
# Usage: bench/dmarc-fuzz.sh [CASES] [SEED]     (1,000,000 and 1 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release --locked -q -p senderauth-reports --example fuzz -- "${1:-1000000}" "${2:-1}"
