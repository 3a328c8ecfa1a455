// What several browser tests share: running the `comms` command line on the
// test server's data folder, and the JS SDK's client for an app's REST calls.
import { execFileSync } from "node:child_process";
import { resolve } from "node:path";
import { CommsClient } from "../../sdk-js/dist/index.js";

/** Runs `comms ARGS…` on the test server's data folder; its JSON answer. */
export function comms(...args: string[]): Record<string, string> {
  const binary = resolve("..", process.env.COMMS_BIN ?? "target/debug/comms");
  const output = execFileSync(binary, args, {
    env: { ...process.env, COMMS_DATA_DIR: process.env.COMMS_E2E_DATA_DIR },
  });
  return JSON.parse(output.toString());
}

/** A REST client of the test server for an app's key. */
export function client(apiKey: string): CommsClient {
  return new CommsClient(process.env.COMMS_E2E_BASE_URL!, apiKey);
}
