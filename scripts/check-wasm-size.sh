#!/usr/bin/env bash
# Checks the site's wasm against its size budget (docs/performance.md): the
# main wasm, which every page of the site loads before it works, must be at
# most 350 KiB gzipped (gzip -9). Also prints the size of each lazy chunk,
# which only the pages that need it load.
#
# Run after a release build with split lazy routes (npm's wasm-opt on PATH,
# see scripts/setup.sh):
#   cargo leptos build --release --split --frontend-only
#   scripts/check-wasm-size.sh [SITE_PKG_DIR]
# A debug wasm is several times larger: the budget is for release builds.
set -euo pipefail
cd "$(dirname "$0")/.."

pkg="${1:-${LEPTOS_SITE_ROOT:-target/site}/pkg}"
budget_kib="${WASM_BUDGET_KIB:-350}"

gzipped() { gzip -9 -c "$1" | wc -c; }
sizes() { awk -v raw="$(stat -c %s "$1")" -v gz="$(gzipped "$1")" 'BEGIN { printf "%.1f KiB, %.1f KiB gzipped", raw / 1024, gz / 1024 }'; }

# cargo-leptos empties pkg/ before it writes a build's files there.
main=$(ls "$pkg"/comms.*wasm 2>/dev/null | head -1 || true)
if [ -z "$main" ]; then
    echo "no main wasm (comms.*wasm) in $pkg: build the site first (cargo leptos build --release --split)" >&2
    exit 2
fi
echo "main wasm $(basename "$main"): $(sizes "$main") (budget: $budget_kib KiB gzipped)"
for chunk in "$pkg"/*.wasm; do
    if [ "$chunk" != "$main" ]; then
        echo "  lazy chunk $(basename "$chunk"): $(sizes "$chunk")"
    fi
done
main_gz=$(gzipped "$main")
if [ "$main_gz" -gt $((budget_kib * 1024)) ]; then
    echo "the main wasm is over its budget of $budget_kib KiB gzipped: see docs/performance.md" >&2
    exit 1
fi
