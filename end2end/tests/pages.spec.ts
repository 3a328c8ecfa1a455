// The site's pages render on the server, hydrate without console errors,
// and unknown paths get a real 404 page. Each page's screenshot is saved as
// a test artifact.
import { expect, test, type Page } from "@playwright/test";

/**
 * Collects console errors and uncaught exceptions of a page. Chromium also
 * logs a page's own 404 status as an error; that one is the point of the 404
 * test, not a fault, so it is left out.
 */
function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (message) => {
    const ownStatus = message.location().url === page.url() && message.text().startsWith("Failed to load resource");
    if (message.type() === "error" && !ownStatus) errors.push(message.text());
  });
  page.on("pageerror", (error) => errors.push(error.message));
  return errors;
}

test("the landing page renders and hydrates without errors", async ({ page }, testInfo) => {
  const errors = watchErrors(page);
  const response = await page.goto("/");
  expect(response?.status()).toBe(200);
  await expect(page).toHaveTitle("comms — real-time rooms for your app");
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("comms");
  await expect(page.getByRole("link", { name: "REST API (OpenAPI 3 document)" })).toBeVisible();
  // Hydration has run once the wasm is instantiated and idle.
  await page.waitForLoadState("networkidle");
  expect(errors).toEqual([]);
  await page.screenshot({ path: testInfo.outputPath("landing.png"), fullPage: true });
});

test("the original home /main/ shows the landing page", async ({ page }) => {
  const response = await page.goto("/main/");
  expect(response?.status()).toBe(200);
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("comms");
});

test("unknown paths get the 404 page with status 404", async ({ page }, testInfo) => {
  const errors = watchErrors(page);
  const response = await page.goto("/no/such/page");
  expect(response?.status()).toBe(404);
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Not found");
  await page.waitForLoadState("networkidle");
  expect(errors).toEqual([]);
  await page.screenshot({ path: testInfo.outputPath("not-found.png"), fullPage: true });
});

test("the demo page lists the demo rooms and their endpoints", async ({ page }, testInfo) => {
  const errors = watchErrors(page);
  const response = await page.goto("/demo");
  expect(response?.status()).toBe(200);
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Live demo");
  const lobby = page.getByRole("region", { name: "room lobby" });
  await expect(lobby.getByRole("cell", { name: "Ann", exact: true })).toBeVisible();
  await expect(lobby.getByRole("cell", { name: "Watcher", exact: true })).toBeVisible();
  await page.waitForLoadState("networkidle");
  expect(errors).toEqual([]);
  await page.screenshot({ path: testInfo.outputPath("demo.png"), fullPage: true });
});

test("the portal, admin and mailed-link pages render and hydrate without errors", async ({ page }) => {
  const errors = watchErrors(page);
  for (const [path, heading] of [
    ["/portal", "Developer portal"],
    ["/admin", "Admin"],
  ]) {
    const response = await page.goto(path);
    expect(response?.status(), path).toBe(200);
    await expect(page.getByRole("heading", { level: 1 })).toHaveText(heading);
    await expect(page.getByRole("region", { name: "Log in" })).toBeVisible();
    await page.waitForLoadState("networkidle");
  }
  expect((await page.goto("/portal/"))?.url()).toMatch(/\/portal$/);
  for (const [path, heading, form] of [
    ["/portal/reset", "Choose a new password", "Forgot your password?"],
    ["/portal/reset?token=x", "Choose a new password", "New password"],
    ["/portal/confirm?token=x", "Confirm your email address", "Enter your password"],
  ]) {
    const response = await page.goto(path);
    expect(response?.status(), path).toBe(200);
    await expect(page.getByRole("heading", { level: 1 })).toHaveText(heading);
    await expect(page.getByRole("region", { name: form })).toBeVisible();
    await page.waitForLoadState("networkidle");
  }
  expect(errors).toEqual([]);
});
