// Every documentation page in the menu renders and hydrates without console
// errors. A screenshot of the first and of the REST reference is saved.
import { expect, test } from "@playwright/test";

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
