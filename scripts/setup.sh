# Sourced by serve.sh and test.sh: installs what building the site needs,
# only when it is missing or at the wrong version, so running twice is cheap.
# Versions are pinned to what works together (see the README).

CARGO_LEPTOS_VERSION=0.3.8
WASM_BINDGEN_VERSION=0.2.130

# Release builds of the tools without fat LTO: several times faster to
# install, and just as good for a build tool.
fast_install() {
    CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 cargo install "$@"
}

ensure_rust() {
    if ! command -v cargo >/dev/null; then
        echo "cargo is missing: install Rust from https://rustup.rs first" >&2
        exit 1
    fi
}

ensure_site_tools() {
    if ! rustup target list --installed | grep -q '^wasm32-unknown-unknown$'; then
        rustup target add wasm32-unknown-unknown
    fi
    if ! cargo leptos --version 2>/dev/null | grep -q "$CARGO_LEPTOS_VERSION"; then
        fast_install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked
    fi
    # Must match the wasm-bindgen crate in Cargo.lock exactly. Not --locked:
    # one of its locked dependencies is no longer on crates.io.
    if ! wasm-bindgen --version 2>/dev/null | grep -q "$WASM_BINDGEN_VERSION"; then
        fast_install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
    fi
}

# Node.js and npm, from Debian when missing.
ensure_node() {
    if ! command -v npm >/dev/null; then
        apt-get update && apt-get install -y nodejs npm
    fi
}

# npm packages: binaryen's wasm-opt for release builds (Debian's breaks
# hydration).
ensure_npm_packages() {
    ensure_node
    if [ ! -x node_modules/.bin/wasm-opt ]; then
        npm install --no-audit --no-fund
    fi
    export PATH="$PWD/node_modules/.bin:$PATH"
}

# The browser tests: Playwright from npm, driving Debian's Chromium
# (Playwright's own browser downloads are not reachable here).
ensure_browser_tests() {
    ensure_node
    if [ ! -x /usr/bin/chromium ]; then
        apt-get update && apt-get install -y chromium
    fi
    if [ ! -d end2end/node_modules/@playwright/test ]; then
        (cd end2end && npm install --no-audit --no-fund)
    fi
}

# Debian's nginx and openssl, for the test that runs deploy/nginx.conf in
# front of comms with a certificate of its own.
ensure_proxy_tests() {
    if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
        apt-get update && apt-get install -y nginx
    fi
    if ! command -v openssl >/dev/null 2>&1; then
        apt-get update && apt-get install -y openssl
    fi
}

# The JS SDK's build and test tools (TypeScript, and ws for Node 20, which
# has no global WebSocket).
ensure_sdk_js() {
    ensure_node
    # npm records what it installed in node_modules/.package-lock.json: an
    # older record than the lock file means a dependency was added since.
    if [ ! -x sdk-js/node_modules/.bin/tsc ] || [ sdk-js/package-lock.json -nt sdk-js/node_modules/.package-lock.json ]; then
        (cd sdk-js && npm install --no-audit --no-fund && touch node_modules/.package-lock.json)
    fi
}

# The Python implementation of Standard Webhooks, which the webhook tests
# verify real deliveries with: an implementation sharing no code with ours.
STANDARDWEBHOOKS_VERSION=1.3.0
ensure_webhook_verifier() {
    if ! command -v python3 >/dev/null; then
        apt-get update && apt-get install -y python3 python3-pip
    fi
    if ! python3 -c 'import standardwebhooks' 2>/dev/null; then
        python3 -m pip install --quiet --disable-pip-version-check "standardwebhooks==$STANDARDWEBHOOKS_VERSION" \
            || python3 -m pip install --quiet --break-system-packages "standardwebhooks==$STANDARDWEBHOOKS_VERSION"
    fi
}
