// Browser tests of the comms site. Playwright starts the server itself (the
// `comms` binary built by `cargo leptos build`, given in COMMS_BIN) with a
// fresh data folder, and drives Debian's Chromium: Playwright's own browser
// downloads are not available here.
import { defineConfig } from "@playwright/test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const port = Number(process.env.COMMS_E2E_PORT ?? 3107);
// Shared with the tests (workers inherit the environment), which run
// `comms app …` against the same data folder as the server.
process.env.COMMS_E2E_DATA_DIR ??= mkdtempSync(join(tmpdir(), "comms-e2e-"));
process.env.COMMS_E2E_BASE_URL = `http://127.0.0.1:${port}`;
// The server has no SMTP server, as in development: it writes each email,
// links included, to its log (JSON lines here), where the tests read them.
process.env.COMMS_E2E_SERVER_LOG = join(process.env.COMMS_E2E_DATA_DIR, "server.log");
const baseURL = `http://127.0.0.1:${port}`;
// Relative to the repository root, where the server runs (it serves
// `target/site` from there).
const binary = process.env.COMMS_BIN ?? "target/debug/comms";

export default defineConfig({
  testDir: "./tests",
  timeout: 30_000,
  workers: 1,
  reporter: [["list"]],
  outputDir: "test-results",
  use: {
    baseURL,
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    },
  },
  webServer: {
    command: `exec ${binary} serve --addr 127.0.0.1:${port} 2> "${process.env.COMMS_E2E_SERVER_LOG}"`,
    cwd: "..",
    url: `${baseURL}/healthz`,
    timeout: 60_000,
    reuseExistingServer: false,
    // Apps wait for an admin, as in production, so the portal test goes
    // through the approval.
    env: {
      COMMS_DATA_DIR: process.env.COMMS_E2E_DATA_DIR,
      COMMS_PORTAL__AUTO_APPROVE: "false",
      COMMS_LOG__FORMAT: "json",
      COMMS_EMAIL__SMTP_URL: "",
      // No automatic webhook retry within a test's time (the default is
      // 10 s), so a delivery a test sends again is sent by "Send again".
      COMMS_WEBHOOKS__FIRST_RETRY_MS: "600000",
      // Usage reaches the database (and the admin area) within a second.
      COMMS_USAGE__FLUSH_MS: "1000",
    },
  },
});
