// What several browser tests share: running the `comms` command line on the
// test server's data folder, the links of the emails the server wrote to its
// log, the JS SDK's client for an app's REST calls, and opening a page and
// logging in to the portal or the admin area.
import type { Page } from "@playwright/test";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
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

/**
 * The links to `path` (`/portal/confirm`, `/portal/reset`) of the emails to
 * `to`, oldest first, as the test server (without an SMTP server, as in
 * development) wrote them to its log.
 */
export function mailedLinks(to: string, path: string): string[] {
  const log = readFileSync(process.env.COMMS_E2E_SERVER_LOG!, "utf8");
  const link = new RegExp(`https?://[^\\s]+${path}\\?token=[\\w-]+`);
  const links: string[] = [];
  for (const line of log.split("\n")) {
    if (!line.startsWith("{")) continue;
    const entry = JSON.parse(line);
    if (entry.fields?.to !== to) continue;
    const found = String(entry.fields?.message ?? "").match(link);
    if (found) links.push(found[0]);
  }
  return links;
}

/** Opens a page and waits until the wasm has hydrated it. */
export async function open(page: Page, path: string) {
  await page.goto(path);
  await page.waitForLoadState("networkidle");
}

/** Fills in and sends the "Log in" form of the portal or the admin area. */
export async function logIn(page: Page, email: string, password: string) {
  const form = page.getByRole("region", { name: "Log in" });
  await form.getByLabel("Email", { exact: true }).fill(email);
  await form.getByLabel("Password", { exact: true }).fill(password);
  await form.getByRole("button", { name: "Log in" }).click();
}
