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
# The benchmark harness in smoke mode: a few seconds, a few connections,
# failing if any message is lost or duplicated (speed is not checked).
if [ "$status" -eq 0 ]; then
    cargo build --locked -p comms-server -p comms-bench
    set +e
    "${CARGO_TARGET_DIR:-target}/debug/comms-bench" --smoke
    smoke=$?
    set -e
    if [ "$smoke" -eq 0 ]; then echo "test result: ok. 1 passed; 0 failed (benchmark smoke run)" >> "$log"; else
        echo "test result: FAILED. 0 passed; 1 failed (benchmark smoke run)" >> "$log"; status=$smoke; fi
fi

awk '/^test result:/ { passed += $4; failed += $6 } END { printf "tests: %d passed, %d failed\n", passed, failed }' "$log"
exit "$status"
