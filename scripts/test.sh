#!/usr/bin/env bash
# Runs every check and test of the project: formatting, clippy, the site's
# build, unit and integration tests (the integration tests start real
# servers on loopback ports with temporary SQLite files, and with fresh
# databases and key prefixes on the PostgreSQL and Redis of 127.0.0.1 for
# the PostgreSQL store and the multi-node tests; under CI=true those fail
# when the services are missing, elsewhere they are skipped), the benchmark
# harness's smoke run, the Playwright browser tests, and the size budget of
# the site's release wasm (scripts/check-wasm-size.sh). Installs what it
# needs when missing (Rust components, the wasm target, cargo-leptos,
# wasm-bindgen, Node.js, Debian's Chromium, npm packages, Python's
# standardwebhooks). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/setup.sh

ensure_rust
ensure_site_tools
ensure_proxy_tests
ensure_webhook_verifier
for component in rustfmt clippy; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^${component}"; then
        rustup component add "$component"
    fi
done

cargo fmt --all --check
cargo clippy --locked --all-targets -- -D warnings

# Runs a test tool (after NAME, LABEL and the patterns of its pass and fail
# counts) and adds its counts to the summary; a tool that fails without
# reporting a failure counts as one.
run_counted() {
    local name=$1 label=$2 pass_re=$3 fail_re=$4
    shift 4
    local out code passed failed
    out=$(mktemp)
    set +e
    "$@" 2>&1 | tee "$out"
    code=${PIPESTATUS[0]}
    set -e
    passed=$(grep -oE "$pass_re" "$out" | grep -oE '[0-9]+' | tail -1 || true)
    failed=$(grep -oE "$fail_re" "$out" | grep -oE '[0-9]+' | tail -1 || true)
    rm -f "$out"
    if [ "$code" -ne 0 ] && [ "${failed:-0}" -eq 0 ]; then failed=1; fi
    echo "test result: $name. ${passed:-0} passed; ${failed:-0} failed ($label)" >> "$log"
    if [ "$code" -ne 0 ]; then status=$code; fi
}

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
    # The site as the run command builds it: the server with its pages and
    # the wasm bundle that hydrates them (cargo-leptos builds both with the
    # same flags, which hydration needs). The smoke run then uses that server.
    cargo leptos build --split
    # The wasm as a release build compiles it: debug builds through
    # cargo-leptos add `--cfg erase_components`, which hides view types too
    # deep for a release build (`scripts/serve.sh`). A plain build does not.
    cargo build --locked -p comms-frontend --target wasm32-unknown-unknown
    cargo build --locked -p comms-bench
    set +e
    "${CARGO_TARGET_DIR:-target}/debug/comms-bench" --smoke
    smoke=$?
    set -e
    if [ "$smoke" -eq 0 ]; then echo "test result: ok. 1 passed; 0 failed (benchmark smoke run)" >> "$log"; else
        echo "test result: FAILED. 0 passed; 1 failed (benchmark smoke run)" >> "$log"; status=$smoke; fi

    # The JS SDK: built with tsc, tested against that server binary, then
    # packed with npm pack and installed from the tarball into an empty
    # project, as a user would.
    ensure_sdk_js
    server_bin="$(realpath "${CARGO_TARGET_DIR:-target}")/debug/comms"
    run_counted "sdk-js" "node --test" '^# pass [0-9]+' '^# fail [0-9]+' \
        bash -c 'cd sdk-js && COMMS_BIN="$0" npm test' "$server_bin"
    if scripts/check-sdk-pack.sh; then echo "test result: ok. 1 passed; 0 failed (npm pack)" >> "$log"; else
        echo "test result: FAILED. 0 passed; 1 failed (npm pack)" >> "$log"; status=1; fi

    # Browser tests of the site, against the server cargo-leptos just built.
    ensure_browser_tests
    run_counted "browser" "Playwright" '^ *[0-9]+ passed' '^ *[0-9]+ failed' \
        bash -c 'cd end2end && COMMS_BIN="$0" npx playwright test' "$server_bin"

    # The wasm as browsers get it, against its size budget: a release build
    # of the frontend only (the server's release build would cost minutes
    # and changes nothing here), through npm's wasm-opt. Last, since it
    # replaces the site files the browser tests used.
    ensure_npm_packages
    cargo leptos build --release --split --frontend-only
    if scripts/check-wasm-size.sh; then echo "test result: ok. 1 passed; 0 failed (wasm size budget)" >> "$log"; else
        echo "test result: FAILED. 0 passed; 1 failed (wasm size budget)" >> "$log"; status=1; fi
fi

awk '/^test result:/ { passed += $4; failed += $6 } END { printf "tests: %d passed, %d failed\n", passed, failed }' "$log"
exit "$status"
