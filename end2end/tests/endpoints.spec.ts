// Endpoints as living capabilities, in the demo's chat: the lobby's
// moderator redacts a message and every open chat (and a later visitor's
// history) shows it removed; the app changes an endpoint while its chat is
// open (permission, name, budget, expiry) and the page follows; the maker
// of a throwaway room invites a guest with a link that works once.
import { expect, test, type Page } from "@playwright/test";
import { client, comms } from "./support.js";

/** The chat links of the demo's lobby, by the endpoint's name (other rooms may have an Ann too). */
async function lobbyLinks(page: Page): Promise<Map<string, string>> {
  await page.goto("/demo");
  const links = new Map<string, string>();
  const lobby = page.getByRole("region", { name: "room lobby" });
  for (const link of await lobby.getByRole("link", { name: /^Chat as / }).all()) {
    links.set((await link.textContent())!.replace("Chat as ", ""), (await link.getAttribute("href"))!);
  }
  return links;
}

/** The lines of a chat page's conversation. */
function conversation(page: Page) {
  return page.getByRole("list", { name: "Conversation" }).getByRole("listitem");
}

test("the lobby's moderator redacts a message and every chat sees it go", async ({ browser }) => {
  const annContext = await browser.newContext();
  const moderatorContext = await browser.newContext();
  const ann = await annContext.newPage();
  const moderator = await moderatorContext.newPage();
  const links = await lobbyLinks(ann);
  await expect(ann.getByRole("region", { name: "room lobby" }).getByRole("cell", { name: "moderate", exact: true })).toBeVisible();
  await ann.goto(links.get("Ann")!);
  await moderator.goto(links.get("Moderator")!);
  await expect(ann.getByRole("status")).toContainText("Connected.");
  await expect(moderator.getByRole("status")).toContainText("As a moderator you may also redact any message.");
  // Only a moderator's chat has the buttons.
  await expect(ann.getByRole("button", { name: "Redact" })).toHaveCount(0);

  const text = `not for everyone ${Date.now()}`;
  await ann.getByLabel("Message").fill(text);
  await ann.getByRole("button", { name: "Send" }).click();
  const annLine = conversation(ann).filter({ hasText: text });
  await expect(annLine).toBeVisible();
  const seq = /#(\d+)/.exec((await annLine.textContent())!)![1];

  const seen = conversation(moderator).filter({ hasText: text });
  await expect(seen).toContainText("Ann");
  await seen.getByRole("button", { name: "Redact" }).click();

  const removed = (page: Page) => conversation(page).filter({ hasText: `#${seq} ` });
  await expect(conversation(ann).filter({ hasText: text })).toHaveCount(0);
  await expect(removed(ann)).toContainText("Ann");
  await expect(removed(ann)).toContainText("message removed");
  await expect(conversation(moderator).filter({ hasText: text })).toHaveCount(0);
  await expect(removed(moderator)).toContainText("message removed");
  await expect(removed(moderator).getByRole("button", { name: "Redact" })).toHaveCount(0);

  // A visitor arriving later gets it removed in the room's history.
  const later = await (await browser.newContext()).newPage();
  await later.goto(links.get("Bob")!);
  await expect(removed(later)).toContainText("message removed");
  await expect(conversation(later).filter({ hasText: text })).toHaveCount(0);
  await annContext.close();
  await moderatorContext.close();
  await later.context().close();
});

test("the app changes an endpoint while its chat is open, and the chat follows", async ({ page }) => {
  const demo = client(comms("app", "rotate-key", "demo").api_key);
  await demo.createRoom({ name: "living" });
  const { code } = await demo.createEndpoint("living", { permission: "read_and_write", meta: { name: "Ann" } });
  await page.goto(`/demo/chat/${code}`);
  await expect(page.getByRole("status")).toContainText("Connected.");
  await expect(page.getByText("You are Ann.")).toBeVisible();

  await demo.updateEndpoint("living", code, {
    permission: "read",
    meta: { name: "Ann (muted)" },
    expires_at: "2099-01-01T00:00:00Z",
  });
  await expect(page.getByRole("status")).toContainText("read-only endpoint");
  await expect(page.getByText("You are Ann (muted).")).toContainText("Your code works until 2099-01-01 00:00 UTC.");
  await expect(page.getByRole("button", { name: "Send" })).toBeDisabled();

  // Writing again, with a budget of one more message.
  await demo.updateEndpoint("living", code, { permission: "read_and_write", max_messages: 1 });
  await expect(page.getByRole("button", { name: "Send" })).toBeEnabled();
  await page.getByLabel("Message").fill("my last word");
  await page.getByRole("button", { name: "Send" }).click();
  await expect(conversation(page).filter({ hasText: "my last word" })).toBeVisible();
  await page.getByLabel("Message").fill("one too many");
  await page.getByRole("button", { name: "Send" }).click();
  await expect(page.getByRole("status")).toContainText("has sent all the messages it may");
  await expect(page.getByRole("button", { name: "Send" })).toBeDisabled();
  await expect(conversation(page).filter({ hasText: /^#\d+.*one too many/ })).toHaveCount(0);

  // Expiring ends the chat for good: no reconnection.
  await demo.updateEndpoint("living", code, { expires_at: new Date(Date.now() + 1500).toISOString() });
  await expect(page.getByRole("status")).toContainText("(code 4004)");
  await expect(page.getByRole("button", { name: "Send" })).toBeDisabled();
});

test("the maker of a throwaway room invites a guest with a link that works once", async ({ browser }) => {
  const maker = await (await browser.newContext()).newPage();
  await maker.goto("/demo");
  // The buttons work once the wasm has hydrated the page.
  await maker.waitForLoadState("networkidle");
  const region = maker.getByRole("region", { name: "throwaway room" });
  await region.getByRole("button", { name: "Make a throwaway room" }).click();
  const writerUrl = (await region.getByRole("link", { name: "open the writer" }).getAttribute("href"))!;
  await region.getByRole("button", { name: "Make an invite link" }).click();
  const invite = region.getByRole("status").filter({ hasText: "Send this link to your guest" });
  const link = invite.getByRole("link");
  await expect(link).toHaveText(/^http:\/\/127\.0\.0\.1:\d+\/demo\/chat\/[\w-]+$/);
  const inviteUrl = (await link.getAttribute("href"))!;

  const writer = await maker.context().newPage();
  await writer.goto(writerUrl);
  await expect(writer.getByRole("status")).toContainText("Connected.");

  const guest = await (await browser.newContext()).newPage();
  await guest.goto(inviteUrl);
  await expect(guest.getByRole("status")).toContainText("Connected.");
  await expect(guest.getByText("You are Guest.")).toContainText("Your code works until");
  await guest.getByLabel("Message").fill("thanks for having me");
  await guest.getByRole("button", { name: "Send" }).click();
  await expect(conversation(writer).filter({ hasText: "thanks for having me" })).toContainText("Guest");

  // The link was for one connection: a second visitor is turned away.
  const second = await (await browser.newContext()).newPage();
  await second.goto(inviteUrl);
  await expect(second.getByRole("status")).toContainText("The connection ended");
  await expect(second.getByRole("button", { name: "Send" })).toBeDisabled();
  await maker.context().close();
  await guest.context().close();
  await second.context().close();
});
