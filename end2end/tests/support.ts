// What several browser tests share: running the `comms` command line on the
// test server's data folder, the links of the emails the server wrote to its
// log, the JS SDK's client for an app's REST calls, opening a page, logging
// in to the portal or the admin area, and a developer with an approved app.
import { expect, type Page } from "@playwright/test";
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

/** A developer with a confirmed address, signed in, on the page of their approved app `app`. */
export async function developerOnApprovedApp(page: Page, email: string, app: string) {
  const password = "a developer's password";
  await open(page, "/portal");
  const signUp = page.getByRole("region", { name: "Sign up" });
  await signUp.getByLabel("Your email").fill(email);
  await signUp.getByLabel("Choose a password").fill(password);
  await signUp.getByRole("button", { name: "Sign up" }).click();
  await expect(signUp.getByRole("status")).toContainText("Check your inbox");
  await expect.poll(() => mailedLinks(email, "/portal/confirm").length).toBe(1);
  await open(page, mailedLinks(email, "/portal/confirm")[0]);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByRole("button", { name: "Confirm and log in" }).click();
  await expect(page.getByRole("status")).toContainText("Address confirmed");

  await open(page, "/portal");
  const register = page.getByRole("region", { name: "Register an app" });
  await register.getByLabel("App name").fill(app);
  await register.getByLabel("Intended use").fill("trying comms out");
  await register.getByRole("button", { name: "Request a key" }).click();
  await expect(page.getByRole("link", { name: app })).toBeVisible();
  // The approval in the admin area is the portal spec's; here an operator's.
  comms("app", "approve", app);
  await open(page, `/portal/apps/${app}`);
  await expect(page.getByRole("heading", { name: "Status: approved" })).toBeVisible();
}
