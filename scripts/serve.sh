#!/usr/bin/env bash
# Builds comms and its site in release mode and runs the server on
# http://127.0.0.1:3000, keeping its data in ./data (COMMS_DATA_DIR). Extra
# arguments go to `comms serve`, e.g. `scripts/serve.sh --addr 0.0.0.0:8080`.
# Installs what is missing (wasm target, cargo-leptos, wasm-bindgen, npm
# packages); safe to run again: only what changed is rebuilt.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

ensure_rust
ensure_site_tools
ensure_npm_packages
# --split: the portal's and admin's pages are lazy routes, whose code the
# browser loads only when they are visited (see docs/performance.md).
cargo leptos build --release --split
exec "${CARGO_TARGET_DIR:-target}/release/comms" serve "$@"
