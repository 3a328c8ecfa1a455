#!/usr/bin/env bash
# Runs every check and test of the project: formatting, clippy, unit and
# integration tests (the integration tests start real servers on loopback
# ports with temporary SQLite files). Installs the Rust components it needs.
# Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null; then
    echo "cargo is missing: install Rust from https://rustup.rs first" >&2
    exit 1
fi
for component in rustfmt clippy; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^${component}"; then
        rustup component add "$component"
    fi
done

cargo fmt --all --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked
