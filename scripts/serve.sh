#!/usr/bin/env bash
# Builds comms in release mode and runs the server on http://127.0.0.1:3000,
# keeping its data in ./data (COMMS_DATA_DIR). Extra arguments go to
# `comms serve`, e.g. `scripts/serve.sh --addr 0.0.0.0:8080`.
# Safe to run again: cargo rebuilds only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null; then
    echo "cargo is missing: install Rust from https://rustup.rs first" >&2
    exit 1
fi

cargo build --release --locked -p comms-server
exec ./target/release/comms serve "$@"
