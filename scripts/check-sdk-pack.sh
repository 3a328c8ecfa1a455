#!/usr/bin/env bash
# Packs the JS SDK with npm pack and installs the tarball into an empty
# project, then imports it there, and requires it (Node >= 20.19 loads the
# ES module with require): what a user of the SDK does.
set -euo pipefail
cd "$(dirname "$0")/../sdk-js"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tarball=$(npm pack --silent --pack-destination "$work" | tail -1)
cd "$work"
npm init -y >/dev/null
npm install --no-audit --no-fund "./$tarball" >/dev/null
node --input-type=module -e '
import { CommsClient, connectEndpoint, CommsError } from "comms-sdk";
const client = new CommsClient("http://127.0.0.1:1", "ck_x");
if (typeof client.listRooms !== "function" || typeof connectEndpoint !== "function" || !CommsError) process.exit(1);
console.log("comms-sdk installs from its tarball and imports");
'
node -e '
const { CommsClient, connectEndpoint } = require("comms-sdk");
if (typeof CommsClient !== "function" || typeof connectEndpoint !== "function") process.exit(1);
console.log("comms-sdk loads with require (Node >= 20.19)");
'
test -f node_modules/comms-sdk/dist/index.d.ts
