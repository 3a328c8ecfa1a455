// Usage in the portal and the admin area. A developer's app does a scripted
// workload (a socket, five messages through the REST API); its page then
// charts them, shows its quotas (warning near a limit) and offers the CSV,
// and its live connection count follows a socket opened and closed in
// another browser context, without a reload. An admin sees the app among
// the busiest, and this node's connections.
import { expect, test, type Browser, type Page } from "@playwright/test";
import { client, comms, developerOnApprovedApp, logIn, open } from "./support.js";

/** The sum of the values of the bars of the chart titled `title`. */
async function chartTotal(page: Page, title: string): Promise<number> {
  const chart = page.locator("figure.chart").filter({ hasText: title });
  const values = await chart.locator("rect.bar").evaluateAll((bars) => bars.map((bar) => Number(bar.getAttribute("data-value"))));
  return values.reduce((sum, value) => sum + value, 0);
}

/** Opens a WebSocket with `wsUrl` from a page of another browser context; that page. */
async function socketElsewhere(browser: Browser, wsUrl: string): Promise<Page> {
  const other = await (await browser.newContext()).newPage();
  await open(other, "/");
  await other.evaluate(
    (url) =>
      new Promise<void>((opened, failed) => {
        const socket = new WebSocket(url);
        (window as unknown as { socket: WebSocket }).socket = socket;
        socket.onmessage = () => opened();
        socket.onerror = () => failed(new Error("the socket failed"));
      }),
    wsUrl,
  );
  return other;
}

test("a developer's app page charts its usage and follows its connections live", async ({ page, browser }, testInfo) => {
  await developerOnApprovedApp(page, "meter@example.com", "metered");
  await page.getByRole("button", { name: "Issue a key" }).click();
  const api = client(await page.getByLabel("New API key").inputValue());
  await api.createRoom({ name: "lobby" });
  const endpoint = await api.createEndpoint("lobby", { permission: "read" });
  const other = await socketElsewhere(browser, endpoint.ws_url);
  for (const n of [1, 2, 3, 4, 5]) await api.publishMessage("lobby", { message: { n } });

  await open(page, "/portal/apps/metered");
  const usage = page.getByRole("region", { name: "Usage", exact: true });
  await expect(usage.locator("#connections-now")).toHaveText("1");
  await expect(usage.locator("figure.chart")).toHaveCount(3);
  // Five in, and five delivered to the open socket.
  await expect.poll(() => chartTotal(page, "Messages in and out per hour")).toBe(10);
  await expect.poll(() => chartTotal(page, "Messages in and out per day")).toBe(10);
  expect(await chartTotal(page, "Connections, peak per hour")).toBeGreaterThanOrEqual(1);
  const quotas = usage.getByRole("table", { name: "Quotas" });
  await expect(quotas.getByRole("row").filter({ hasText: "rooms_per_app" }).getByRole("cell")).toHaveText([
    "rooms_per_app",
    "1",
    "10000",
    "",
  ]);
  const csv = usage.getByRole("link", { name: /as CSV/ });
  expect(decodeURIComponent((await csv.getAttribute("href"))!)).toMatch(/^data:text\/csv;charset=utf-8,at,connections_peak,messages_in.*\n.*,1,5,5,35,\d+,0,0,0,0,0,0\n$/s);
  await page.screenshot({ path: testInfo.outputPath("usage.png"), fullPage: true });

  // Live: the count follows the other context's socket without a reload.
  await other.evaluate(() => (window as unknown as { socket: WebSocket }).socket.close());
  await expect(usage.locator("#connections-now")).toHaveText("0");
  const again = await socketElsewhere(browser, endpoint.ws_url);
  await expect(usage.locator("#connections-now")).toHaveText("1");
  await again.close();

  // A quota near its limit is pointed out.
  comms("app", "quota", "metered", "rooms_per_app", "1");
  await open(page, "/portal/apps/metered");
  const rooms = usage.getByRole("table", { name: "Quotas" }).getByRole("row").filter({ hasText: "rooms_per_app" });
  await expect(rooms.getByRole("cell")).toHaveText(["rooms_per_app", "1", "1", "near the limit"]);
});

test("an admin sees the busiest apps, their refusals and each node's connections", async ({ page }, testInfo) => {
  const busy = client(comms("app", "create", "busy").api_key);
  await busy.createRoom({ name: "hall" });
  for (const n of [1, 2, 3]) await busy.publishMessage("hall", { message: { n } });
  const deep = JSON.parse("[".repeat(40) + "]".repeat(40));
  await expect(busy.publishMessage("hall", { message: deep })).rejects.toMatchObject({ code: "invalid" });

  const password = comms("admin", "create", "usage-admin@example.com").password;
  await open(page, "/admin");
  await logIn(page, "usage-admin@example.com", password);
  const busiest = page.getByRole("region", { name: "Busiest apps, last 24 hours" });
  await expect(busiest).toBeVisible();
  const row = busiest.getByRole("row").filter({ hasText: /^busy/ });
  // Counts reach the database within `usage.flush_ms` (a second here).
  await expect(async () => {
    await open(page, "/admin");
    await expect(row.getByRole("cell")).toHaveText(["busy", "0", "3", "0", "0", "0", "1", "0"], { timeout: 1_000 });
  }).toPass({ timeout: 15_000 });
  const nodes = page.getByRole("region", { name: "Connections per node" });
  await expect(nodes.getByRole("row")).toHaveCount(2);
  await expect(nodes.getByRole("cell").first()).toHaveText("this node");
  await page.screenshot({ path: testInfo.outputPath("admin-usage.png"), fullPage: true });
});
