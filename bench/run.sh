#!/usr/bin/env bash
# Builds comms and the load generator in release mode and runs every
# benchmark scenario: the server pinned to core 0, the load generator to
# core 1. Prints a Markdown table and writes target/bench/results.json.
# Extra arguments go to comms-bench (e.g. --only fanout).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p comms-server -p comms-bench
target="${CARGO_TARGET_DIR:-target}"
export COMMS_BENCH_CORE=1
exec taskset -c "$COMMS_BENCH_CORE" "$target/release/comms-bench" --server-core 0 --json "$target/bench/results.json" "$@"
