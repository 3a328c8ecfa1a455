// Chatting on the demo in the browser: two visitors see each other's
// messages with author and time, each page names the room and who it
// writes as, shows the room's last messages on arrival and marks its own;
// a read-only endpoint cannot send, a lost connection comes back and
// catches up, and deleting an endpoint through the REST API ends its chat
// visibly.
import { expect, test, type Page, type WebSocketRoute } from "@playwright/test";
import { client, comms } from "./support.js";

/** The chat links of the demo page, by the endpoint's name. */
async function chatLinks(page: Page): Promise<Map<string, string>> {
  await page.goto("/demo");
  const links = new Map<string, string>();
  for (const link of await page.getByRole("link", { name: /^Chat as / }).all()) {
    links.set((await link.textContent())!.replace("Chat as ", ""), (await link.getAttribute("href"))!);
  }
  return links;
}

test("two visitors chat through demo endpoints", async ({ browser }) => {
  const first = await browser.newContext();
  const second = await browser.newContext();
  const ann = await first.newPage();
  const bob = await second.newPage();
  const links = await chatLinks(ann);
  await ann.goto(links.get("Ann")!);
  await bob.goto(links.get("Bob")!);
  await expect(ann.getByRole("status")).toContainText("Connected.");
  await expect(bob.getByRole("status")).toContainText("Connected.");

  await ann.getByLabel("Message").fill("hello from Ann");
  await ann.getByRole("button", { name: "Send" }).click();
  const seen = bob.getByRole("listitem").filter({ hasText: "hello from Ann" });
  await expect(seen).toContainText("Ann");
  await expect(seen.locator("time")).toHaveText(/^\d\d:\d\d:\d\d$/);

  await bob.getByLabel("Message").fill("hi Ann, Bob here");
  await bob.getByRole("button", { name: "Send" }).click();
  await expect(ann.getByRole("listitem").filter({ hasText: "hi Ann, Bob here" })).toContainText("Bob");
  await first.close();
  await second.close();
});

test("a read-only endpoint sees the room but cannot send", async ({ page }) => {
  const links = await chatLinks(page);
  await page.goto(links.get("Watcher")!);
  await expect(page.getByRole("status")).toContainText("read-only endpoint");
  await expect(page.getByLabel("Message")).toBeDisabled();
  await expect(page.getByRole("button", { name: "Send" })).toBeDisabled();
});

test("deleting an endpoint through the REST API ends its chat", async ({ page }) => {
  const demo = client(comms("app", "rotate-key", "demo").api_key);
  const { code } = await demo.createEndpoint("quiet", { permission: "read_and_write", meta: { name: "Temp" } });

  await page.goto(`/demo/chat/${code}`);
  await expect(page.getByRole("status")).toContainText("Connected.");
  await demo.deleteEndpoint("quiet", code);
  await expect(page.getByRole("status")).toContainText("endpoint deleted (code 4001)");
  await expect(page.getByRole("button", { name: "Send" })).toBeDisabled();
});

test("a lost connection comes back and catches up with after_seq", async ({ page }) => {
  const demo = client(comms("app", "rotate-key", "demo").api_key);
  await demo.createRoom({ name: "flaky-network" });
  const { code } = await demo.createEndpoint("flaky-network", { permission: "read_and_write", meta: { name: "Ann" } });
  // Every socket of the page goes through the test, which can end one as a
  // restarting server would.
  const sockets: WebSocketRoute[] = [];
  await page.routeWebSocket(/\/ws\/endpoint\//, (socket) => {
    socket.connectToServer();
    sockets.push(socket);
  });

  await page.goto(`/demo/chat/${code}`);
  await expect(page.getByRole("status")).toContainText("Connected.");
  await demo.publishMessage("flaky-network", { message: "before" });
  await expect(page.getByRole("listitem").filter({ hasText: "before" })).toBeVisible();

  await sockets[0].close({ code: 1001, reason: "server shutting down" });
  await expect(page.getByRole("status")).toContainText("reconnecting");
  await demo.publishMessage("flaky-network", { message: "while away" });
  await expect(page.getByRole("listitem").filter({ hasText: "while away" })).toBeVisible();
  await expect(page.getByRole("status")).toContainText("Connected.");
  expect(sockets.map((socket) => new URL(socket.url()).search)).toEqual(["", "?after_seq=1"]);
  await expect(page.getByRole("listitem").filter({ hasText: "before" })).toHaveCount(1);
});

test("a visitor makes a throwaway room and uses it from two tabs", async ({ page, context }) => {
  await page.goto("/demo");
  // The button works once the wasm has hydrated the page.
  await page.waitForLoadState("networkidle");
  await page.getByRole("button", { name: "Make a throwaway room" }).click();
  const made = page.getByRole("region", { name: "throwaway room" }).getByRole("status");
  await expect(made).toContainText("is yours for a while");
  const writerUrl = (await made.getByRole("link", { name: "open the writer" }).getAttribute("href"))!;
  const readerUrl = (await made.getByRole("link", { name: "open the reader" }).getAttribute("href"))!;

  const writer = await context.newPage();
  const reader = await context.newPage();
  await writer.goto(writerUrl);
  await reader.goto(readerUrl);
  await expect(writer.getByRole("status")).toContainText("Connected.");
  await expect(reader.getByRole("status")).toContainText("read-only endpoint");

  await writer.getByLabel("Message").fill("my own room");
  await writer.getByRole("button", { name: "Send" }).click();
  await expect(reader.getByRole("listitem").filter({ hasText: "my own room" })).toContainText("Writer");
});

test("the chat names the room and you, shows the last messages and marks your own", async ({ browser }) => {
  const demo = client(comms("app", "rotate-key", "demo").api_key);
  await demo.createRoom({ name: "history" });
  const ann = await demo.createEndpoint("history", { permission: "read_and_write", meta: { name: "Ann" } });
  const bob = await demo.createEndpoint("history", { permission: "read_and_write" });
  for (let n = 1; n <= 40; n++) {
    await demo.publishMessage("history", { message: `old ${n}`, meta: { name: "backend" } });
  }

  const first = await (await browser.newContext()).newPage();
  await first.goto(`/demo/chat/${ann.code}`);
  await expect(first.getByRole("heading", { level: 1 })).toHaveText("Chat in history");
  await expect(first).toHaveTitle("history — comms chat");
  await expect(first.getByText("You are Ann.")).toBeVisible();
  const lines = first.getByRole("list", { name: "Conversation" }).getByRole("listitem");
  // The last messages, in order, but not the whole history.
  await expect(lines.filter({ hasText: /: old 40$/ })).toContainText("#40");
  await expect(lines.filter({ hasText: /: old 39$/ })).toBeVisible();
  await expect(lines.filter({ hasText: /: old 1$/ })).toHaveCount(0);
  const shown = (await lines.allTextContents()).map(seq);
  expect(shown).toEqual([...shown].sort((a, b) => a - b));

  // An endpoint without a name in its meta goes by its id.
  const second = await (await browser.newContext()).newPage();
  await second.goto(`/demo/chat/${bob.code}`);
  await expect(second.getByText(`You are ${bob.id}.`)).toBeVisible();
  await expect(second.getByRole("listitem").filter({ hasText: /: old 40$/ })).toBeVisible();

  await first.getByLabel("Message").fill("this one is mine");
  await first.getByRole("button", { name: "Send" }).click();
  const mine = lines.filter({ hasText: "this one is mine" });
  await expect(mine).toHaveClass(/\bown\b/);
  await expect(mine).toContainText("Ann (you)");
  const theirs = second.getByRole("listitem").filter({ hasText: "this one is mine" });
  await expect(theirs).toContainText("Ann");
  await expect(theirs).not.toHaveClass(/\bown\b/);
  await expect(theirs).not.toContainText("(you)");
  await expect(lines.filter({ hasText: "this one is mine" })).toHaveCount(1);
  await first.context().close();
  await second.context().close();
});

/** The seq a conversation line starts with (`#12 …`). */
function seq(line: string): number {
  return Number(/#(\d+)/.exec(line)?.[1] ?? 0);
}
