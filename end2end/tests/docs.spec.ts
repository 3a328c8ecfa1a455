// Every documentation page in the menu renders and hydrates without console
// errors, and one opened by a link within the site gets its HTML from the
// server (the wasm has none). A screenshot of the first and of the REST
// reference is saved. The README's browser snippet runs in a page as its
// quickstart shows it.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { expect, test } from "@playwright/test";
import { comms } from "./support.js";

test("every docs page renders without console errors", async ({ page }, testInfo) => {
  const errors: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  page.on("pageerror", (error) => errors.push(error.message));

  await page.goto("/docs");
  const links = await page.getByRole("navigation", { name: "Documentation" }).getByRole("link").all();
  const paths = await Promise.all(links.map((link) => link.getAttribute("href")));
  expect(paths.length).toBeGreaterThanOrEqual(8);
  await page.screenshot({ path: testInfo.outputPath("docs.png"), fullPage: true });

  for (const path of paths) {
    const response = await page.goto(path!);
    expect(response?.status(), path!).toBe(200);
    await expect(page.getByRole("heading", { level: 1 })).toBeVisible();
    await page.waitForLoadState("networkidle");
    if (path === "/docs/rest") {
      await page.screenshot({ path: testInfo.outputPath("docs-rest.png"), fullPage: true });
    }
  }
  expect(errors).toEqual([]);
});

test("a docs page opened by a link within the site gets its HTML from the server", async ({ page }) => {
  await page.goto("/docs");
  await page.waitForLoadState("networkidle");
  // Hydrated: the router renders the page itself, asking only for its HTML.
  const fetched = page.waitForRequest((request) => request.url().includes("/docs/fn/page"));
  await page.getByRole("navigation", { name: "Documentation" }).getByRole("link", { name: "Configuration" }).click();
  await fetched;
  await expect(page).toHaveURL(/\/docs\/configuration$/);
  await expect(page.locator("article")).toContainText("max_message_bytes");
});

test("the README's browser snippet chats as the quickstart says", async ({ page, request }) => {
  const readme = readFileSync(resolve("..", "README.md"), "utf8");
  const quickstart = readme.slice(readme.indexOf("\n## Quickstart\n"));
  const snippet = /```js\n([\s\S]*?)```/.exec(quickstart)![1];

  const headers = { "X-API-Key": comms("app", "create", "snippet").api_key };
  const base = process.env.COMMS_E2E_BASE_URL!;
  expect((await request.post(`${base}/api/v1/rooms`, { headers, data: { name: "lobby" } })).status()).toBe(201);
  const made = await request.post(`${base}/api/v1/rooms/lobby/endpoints`, {
    headers,
    data: { permission: "read_and_write", meta: { name: "Ann" } },
  });
  const endpoint = await made.json();

  await page.goto("/");
  const logged = page.waitForEvent("console", (message) => message.text().endsWith(" hello"));
  await page.evaluate(`{ const endpoint = ${JSON.stringify(endpoint)};\n${snippet} }`);
  expect((await logged).text()).toBe("1 Ann hello");
});
