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

# Every crate's unit tests and the integration suite; then one summary line
# over all test binaries.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --locked --all-targets 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "tests: %d passed, %d failed\n", passed, failed }' "$log"
exit "$status"
