// The developer portal and the admin area, as a developer and an admin use
// them: sign up, confirm the address through the emailed link (which the
// server, without an SMTP server, writes to its log), request a key, the
// admin approves, the key works on the REST API, rooms and endpoints are
// made in the portal and one of them chats in the browser; then the key is
// rotated and revoked, the app limited to the origins of its own pages, and
// a forgotten password replaced through its emailed link. The server runs
// with `portal.auto_approve` off (see playwright.config.ts), as in
// production.
import { expect, test, type APIRequestContext, type Browser, type Page } from "@playwright/test";
import { comms, logIn, mailedLinks, open } from "./support.js";

const base = () => process.env.COMMS_E2E_BASE_URL!;

/** An admin account made with the command line, as an operator would. */
function createAdmin(email: string): string {
  return comms("admin", "create", email).password;
}

/** The first test's developer, signed in again, on their app's page. */
async function developersGamePage(browser: Browser): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  await open(page, "/portal");
  await logIn(page, "dev@example.com", "correct horse battery");
  await expect(page.getByText("Signed in as")).toBeVisible();
  await open(page, "/portal/apps/game");
  return page;
}

async function roomsStatus(request: APIRequestContext, key: string): Promise<number> {
  return (await request.get(`${base()}/api/v1/rooms`, { headers: { "X-API-Key": key } })).status();
}

test("a developer gets an approved key, makes a room and endpoints, and chats", async ({ browser, request }, testInfo) => {
  const developer = await (await browser.newContext()).newPage();
  await open(developer, "/portal");
  await developer.screenshot({ path: testInfo.outputPath("portal.png"), fullPage: true });
  const signUp = developer.getByRole("region", { name: "Sign up" });
  await signUp.getByLabel("Your email").fill("dev@example.com");
  await signUp.getByLabel("Choose a password").fill("correct horse battery");
  await signUp.getByRole("button", { name: "Sign up" }).click();
  await expect(signUp.getByRole("status")).toContainText("Check your inbox");
  await logIn(developer, "dev@example.com", "correct horse battery");
  await expect(developer.getByText("Signed in as")).toContainText("dev@example.com");
  await expect(developer.getByRole("region", { name: "Confirm your email address" })).toBeVisible();
  await expect(developer.getByRole("region", { name: "Register an app" })).toHaveCount(0);

  await expect.poll(() => mailedLinks("dev@example.com", "/portal/confirm").length).toBe(1);
  await open(developer, mailedLinks("dev@example.com", "/portal/confirm")[0]);
  await developer.getByLabel("Password", { exact: true }).fill("correct horse battery");
  await developer.getByRole("button", { name: "Confirm and log in" }).click();
  await expect(developer.getByRole("status")).toContainText("Address confirmed");
  await open(developer, "/portal");

  const register = developer.getByRole("region", { name: "Register an app" });
  await register.getByLabel("App name").fill("game");
  await register.getByLabel("Intended use").fill("chat between players");
  await register.getByRole("button", { name: "Request a key" }).click();
  await developer.getByRole("link", { name: "game" }).click();
  await expect(developer.getByRole("heading", { name: "Status: pending" })).toBeVisible();

  const password = createAdmin("admin@example.com");
  const admin = await (await browser.newContext()).newPage();
  await open(admin, "/admin");
  await logIn(admin, "admin@example.com", password);
  await admin.getByRole("button", { name: "Approve game" }).click();
  await expect(admin.getByRole("button", { name: "Suspend game" })).toBeVisible();
  await admin.screenshot({ path: testInfo.outputPath("admin.png"), fullPage: true });

  await open(developer, "/portal/apps/game");
  await expect(developer.getByRole("heading", { name: "Status: approved" })).toBeVisible();
  await developer.getByRole("button", { name: "Issue a key" }).click();
  const keyField = developer.getByLabel("New API key");
  await expect(keyField).toHaveValue(/^ck_/);
  const key = await keyField.inputValue();
  expect(await roomsStatus(request, key)).toBe(200);

  await developer.getByLabel("New room name").fill("lobby");
  await developer.getByRole("button", { name: "Create room" }).click();
  const room = developer.getByRole("region", { name: "room lobby" });
  await room.getByLabel("Meta (JSON object)").fill('{"name": "Dev"}');
  await room.getByRole("button", { name: "Add endpoint" }).click();
  await expect(room.getByRole("cell", { name: '{"name": "Dev"}' })).toBeVisible();
  await room.getByLabel("Permission").selectOption("read");
  await room.getByLabel("Meta (JSON object)").fill('{"name": "Watcher"}');
  await room.getByRole("button", { name: "Add endpoint" }).click();
  await expect(room.getByRole("row")).toHaveCount(3);
  await developer.screenshot({ path: testInfo.outputPath("portal-app.png"), fullPage: true });

  const chatUrl = await room.getByRole("row").filter({ hasText: "Dev" }).getByRole("link", { name: "Open chat" }).getAttribute("href");
  const chat = await developer.context().newPage();
  await chat.goto(chatUrl!);
  await expect(chat.getByRole("status")).toContainText("Connected.");
  await chat.getByLabel("Message").fill("hello from the portal");
  await chat.getByRole("button", { name: "Send" }).click();
  await expect(chat.getByRole("listitem").filter({ hasText: "hello from the portal" })).toContainText("Dev");

  await open(developer, "/portal/apps/game");
  await expect(developer.getByRole("region", { name: "room lobby" })).toContainText("hello from the portal");
});

test("a developer rotates and revokes the app's key", async ({ browser, request }) => {
  const page = await developersGamePage(browser);

  await page.getByRole("button", { name: "Rotate key" }).click();
  const first = await page.getByLabel("New API key").inputValue();
  expect(first).toMatch(/^ck_/);
  await page.getByRole("button", { name: "Rotate key" }).click();
  await expect(page.getByLabel("New API key")).not.toHaveValue(first);
  const second = await page.getByLabel("New API key").inputValue();
  expect(await roomsStatus(request, first)).toBe(403);
  expect(await roomsStatus(request, second)).toBe(200);

  await page.getByRole("button", { name: "Revoke keys" }).click();
  await expect(page.getByText("Every key of the app is revoked.")).toBeVisible();
  expect(await roomsStatus(request, second)).toBe(403);
  await expect(page.getByRole("button", { name: "Issue a key" })).toBeVisible();
});

test("a developer limits the app to its own pages' origins", async ({ browser, request }) => {
  const page = await developersGamePage(browser);
  await page.getByRole("button", { name: "Issue a key" }).click();
  const key = await page.getByLabel("New API key").inputValue();
  const fromPage = (origin: string) =>
    request.get(`${base()}/api/v1/rooms`, { headers: { "X-API-Key": key, Origin: origin } });
  expect((await fromPage("https://elsewhere.example")).status()).toBe(200);

  const origins = page.getByRole("region", { name: "Allowed origins" });
  await origins.getByLabel("Origins").fill("https://game.example\nhttp://localhost:3000");
  await origins.getByRole("button", { name: "Save origins" }).click();
  await expect(page.getByText("Only pages from these origins")).toContainText("https://game.example, http://localhost:3000");
  expect((await fromPage("https://elsewhere.example")).status()).toBe(403);
  expect((await fromPage("https://game.example")).status()).toBe(200);

  await origins.getByLabel("Origins").fill("game.example");
  await origins.getByRole("button", { name: "Save origins" }).click();
  await expect(origins.getByRole("alert")).toContainText("is not an origin");

  await origins.getByLabel("Origins").fill("");
  await origins.getByRole("button", { name: "Save origins" }).click();
  await expect(page.getByText("Any origin may use the app's key")).toBeVisible();
  expect((await fromPage("https://elsewhere.example")).status()).toBe(200);
});

test("a developer makes a presence room and sees who is in it", async ({ browser }) => {
  const page = await developersGamePage(browser);
  await page.getByLabel("New room name").fill("meeting");
  await page.getByLabel("Presence: track who is online").check();
  await page.getByRole("button", { name: "Create room" }).click();
  const room = page.getByRole("region", { name: "room meeting" });
  await expect(room).toContainText("no members online");
  await room.getByLabel("Meta (JSON object)").fill('{"name": "Eve"}');
  await room.getByRole("button", { name: "Add endpoint" }).click();
  const chatUrl = await room.getByRole("row").filter({ hasText: "Eve" }).getByRole("link", { name: "Open chat" }).getAttribute("href");

  const chat = await page.context().newPage();
  await chat.goto(chatUrl!);
  await expect(chat.getByRole("list", { name: "Online" }).getByRole("listitem")).toHaveText(["Eve (you)"]);
  await page.getByRole("button", { name: "Refresh" }).click();
  await expect(room.getByRole("heading", { level: 3 })).toContainText("1 online");
  await expect(room.getByRole("list", { name: "Members" }).getByRole("listitem")).toContainText(["Eve"]);
  await expect(room.getByRole("list", { name: "Members" })).toContainText("(1 connection)");
  // A room without presence shows its online count only.
  await expect(page.getByRole("region", { name: "room lobby" }).getByRole("list", { name: "Members" })).toHaveCount(0);
});

test("a developer watches an endpoint's use, changes it live and redacts a message", async ({ browser }) => {
  const page = await developersGamePage(browser);
  await page.getByLabel("New room name").fill("moderated");
  await page.getByRole("button", { name: "Create room" }).click();
  const room = page.getByRole("region", { name: "room moderated" });
  await room.getByLabel("Meta (JSON object)").fill('{"name": "Mia"}');
  await room.getByRole("button", { name: "Add endpoint" }).click();
  const mia = room.getByRole("row").filter({ hasText: '"Mia' });
  await expect(mia).toContainText("0 online");
  await expect(mia).toContainText("0 messages sent");
  await room.getByLabel("Permission").selectOption("moderate");
  await room.getByLabel("Meta (JSON object)").fill('{"name": "Mo"}');
  await room.getByRole("button", { name: "Add endpoint" }).click();
  await expect(room.getByRole("row").filter({ hasText: '"Mo"' }).getByRole("cell", { name: "moderate" })).toBeVisible();

  const chat = await page.context().newPage();
  await chat.goto((await mia.getByRole("link", { name: "Open chat" }).getAttribute("href"))!);
  await expect(chat.getByRole("status")).toContainText("Connected.");
  await chat.getByLabel("Message").fill("to be redacted");
  await chat.getByRole("button", { name: "Send" }).click();
  await expect(chat.getByRole("listitem").filter({ hasText: "to be redacted" })).toBeVisible();
  await page.getByRole("button", { name: "Refresh" }).click();
  await expect(mia).toContainText("1 online");
  await expect(mia).toContainText("1 message sent");

  await mia.getByRole("button", { name: "Edit" }).click();
  await mia.getByLabel("Expires at").fill("tomorrow");
  await mia.getByRole("button", { name: "Save endpoint" }).click();
  await expect(page.getByRole("alert")).toContainText("expires_at must be an RFC 3339 time");

  await mia.getByLabel("Permission").selectOption("read");
  await mia.getByLabel("Meta (JSON object)").fill('{"name": "Mia R."}');
  await mia.getByLabel("Expires at").fill("2099-01-01T00:00:00Z");
  await mia.getByLabel("Max messages").fill("3");
  await mia.getByRole("button", { name: "Save endpoint" }).click();
  await expect(mia.getByRole("cell", { name: "read", exact: true })).toBeVisible();
  await expect(mia).toContainText('{"name": "Mia R."}');
  await expect(mia).toContainText("1 of 3 messages sent");
  await expect(mia).toContainText("expires 2099-01-01T00:00:00.000Z");
  // The open chat takes the change at once.
  await expect(chat.getByRole("status")).toContainText("read-only endpoint");
  await expect(chat.getByText("You are Mia R.")).toContainText("Your code works until 2099-01-01 00:00 UTC.");

  const latest = room.getByRole("listitem").filter({ hasText: "to be redacted" });
  await latest.getByRole("button", { name: "Redact" }).click();
  await expect(room.getByRole("listitem").filter({ hasText: "to be redacted" })).toHaveCount(0);
  await expect(room.locator("ol.latest li")).toContainText(["removed"]);
  await expect(chat.getByRole("listitem").filter({ hasText: "to be redacted" })).toHaveCount(0);
  await expect(chat.getByRole("listitem").filter({ hasText: "message removed" })).toContainText("Mia");
  await page.context().close();
});

test("a developer who forgot the password chooses a new one through the emailed link", async ({ browser }) => {
  const page = await (await browser.newContext()).newPage();
  await open(page, "/portal");
  await page.getByRole("link", { name: "Forgot your password?" }).first().click();
  await page.waitForLoadState("networkidle");
  const request = page.getByRole("region", { name: "Forgot your password?" });
  await request.getByLabel("Your email").fill("dev@example.com");
  await request.getByRole("button", { name: "Send me a link" }).click();
  await expect(request.getByRole("status")).toContainText("If this address has an account");

  await expect.poll(() => mailedLinks("dev@example.com", "/portal/reset").length).toBe(1);
  await open(page, mailedLinks("dev@example.com", "/portal/reset")[0]);
  await page.getByLabel("New password (10 to 128 characters)").fill("a battery of new horses");
  await page.getByRole("button", { name: "Save and log in" }).click();
  await expect(page.getByRole("status")).toContainText("Password changed");
  await open(page, "/portal");
  await expect(page.getByText("Signed in as")).toContainText("dev@example.com");

  const other = await (await browser.newContext()).newPage();
  await open(other, "/portal");
  await logIn(other, "dev@example.com", "correct horse battery");
  await expect(other.getByRole("region", { name: "Log in" }).getByRole("alert")).toContainText("wrong email or password");
  await logIn(other, "dev@example.com", "a battery of new horses");
  await expect(other.getByText("Signed in as")).toContainText("dev@example.com");
});
