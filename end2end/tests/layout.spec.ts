// The header and footer every page shares: the site's sections from any
// page, the admin area only for a signed-in admin, and a layout that a phone
// can use (nothing wider than the screen, the header's links within reach).
import { expect, test, type Page } from "@playwright/test";
import { client, comms } from "./support.js";

/** Opens a page and waits until the wasm has hydrated it. */
async function open(page: Page, path: string) {
  const response = await page.goto(path);
  expect(response?.status(), path).toBe(200);
  await page.waitForLoadState("networkidle");
}

/** A chat page of the demo, through a fresh endpoint of its quiet room. */
async function chatPath(): Promise<string> {
  const demo = client(comms("app", "rotate-key", "demo").api_key);
  const { code } = await demo.createEndpoint("quiet", { permission: "read_and_write", meta: { name: "Phone" } });
  return `/demo/chat/${code}`;
}

const sections = ["Demo", "Docs", "Portal"];

test("every page has the header's sections and the footer's documents", async ({ page }) => {
  for (const path of ["/", "/demo", "/docs/protocol", "/portal", "/admin", "/no/such/page", await chatPath()]) {
    await page.goto(path);
    const nav = page.getByRole("banner").getByRole("navigation", { name: "Site" });
    for (const section of sections) {
      await expect(nav.getByRole("link", { name: section, exact: true }), `${section} on ${path}`).toBeVisible();
    }
    await expect(page.getByRole("banner").getByRole("link", { name: "comms", exact: true })).toHaveAttribute("href", "/");
    const footer = page.getByRole("contentinfo");
    for (const document of ["Documentation", "Protocol", "REST API", "Security"]) {
      await expect(footer.getByRole("link", { name: document, exact: true }), `${document} on ${path}`).toBeVisible();
    }
  }
  await open(page, "/portal");
  await page.getByRole("banner").getByRole("link", { name: "Docs", exact: true }).click();
  await expect(page).toHaveURL(/\/docs$/);
  await expect(page.getByRole("banner").getByRole("link", { name: "Docs", exact: true })).toHaveAttribute("aria-current", "page");
});

test("the header links to the admin area for admins only", async ({ page, browser }) => {
  const password = comms("admin", "create", "header-admin@example.com").password;
  await open(page, "/admin");
  const adminLink = page.getByRole("banner").getByRole("link", { name: "Admin", exact: true });
  await expect(adminLink).toHaveCount(0);
  const form = page.getByRole("region", { name: "Log in" });
  await form.getByLabel("Email", { exact: true }).fill("header-admin@example.com");
  await form.getByLabel("Password", { exact: true }).fill(password);
  await form.getByRole("button", { name: "Log in" }).click();
  // The header follows the login without a reload, and every page has it.
  await expect(adminLink).toBeVisible();
  await open(page, "/docs");
  await expect(adminLink).toBeVisible();

  const visitor = await (await browser.newContext()).newPage();
  await open(visitor, "/docs");
  await expect(visitor.getByRole("banner").getByRole("link", { name: "Docs", exact: true })).toBeVisible();
  await expect(visitor.getByRole("banner").getByRole("link", { name: "Admin", exact: true })).toHaveCount(0);
});

test.describe("on a phone", () => {
  test.use({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });

  test("no page scrolls sideways and the header's links work", async ({ page }, testInfo) => {
    for (const path of ["/", "/demo", "/docs", "/docs/protocol", "/docs/rest", "/portal", await chatPath()]) {
      await open(page, path);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      expect(overflow, `${path} is wider than the screen`).toBeLessThanOrEqual(0);
      for (const section of sections) {
        await expect(page.getByRole("banner").getByRole("link", { name: section, exact: true })).toBeInViewport();
      }
    }
    await page.screenshot({ path: testInfo.outputPath("chat-phone.png"), fullPage: true });
    await page.getByRole("banner").getByRole("link", { name: "Portal", exact: true }).tap();
    await expect(page).toHaveURL(/\/portal$/);
    await expect(page.getByRole("heading", { level: 1 })).toHaveText("Developer portal");
  });
});
