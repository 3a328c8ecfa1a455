// Presence and signals in the demo's chat: in a presence room each page
// lists who is online (from the welcome, then `join` and `leave`); in every
// room, typing in one page shows "… is typing" in the others.
import { expect, test, type Page } from "@playwright/test";
import { client, comms } from "./support.js";

test("in a presence room each sees who is online and who is typing", async ({ browser }) => {
  const demo = client(comms("app", "rotate-key", "demo").api_key);
  await demo.createRoom({ name: "together", presence: true });
  const annEndpoint = await demo.createEndpoint("together", { permission: "read_and_write", meta: { name: "Ann" } });
  const bobEndpoint = await demo.createEndpoint("together", { permission: "read_and_write", meta: { name: "Bob" } });
  for (const n of [1, 2, 3]) {
    await demo.publishMessage("together", { message: `earlier ${n}`, meta: { name: "backend" } });
  }

  const bob = await (await browser.newContext()).newPage();
  const errors = watchErrors(bob);
  await bob.goto(`/demo/chat/${bobEndpoint.code}`);
  await expect(bob.getByRole("heading", { level: 1 })).toHaveText("Chat in together");
  await expect(bob.getByText("You are Bob.")).toBeVisible();
  await expect(bob.getByRole("listitem").filter({ hasText: "earlier 1" })).toBeVisible();
  const bobOnline = bob.getByRole("list", { name: "Online" });
  await expect(bobOnline.getByRole("listitem")).toHaveText(["Bob (you)"]);

  // Ann arrives: her welcome lists both, Bob hears of her through `join`.
  const ann = await (await browser.newContext()).newPage();
  await ann.goto(`/demo/chat/${annEndpoint.code}`);
  await expect(ann.getByRole("listitem").filter({ hasText: "earlier 3" })).toBeVisible();
  const annOnline = ann.getByRole("list", { name: "Online" });
  await expect(annOnline.getByRole("listitem")).toHaveText(["Ann (you)", "Bob"]);
  await expect(bobOnline.getByRole("listitem")).toHaveText(["Ann", "Bob (you)"]);
  // Her page swapped sockets to load the history; past the leave grace
  // period, nobody has seen her leave.
  await bob.waitForTimeout(3_000);
  await expect(bobOnline.getByRole("listitem")).toHaveText(["Ann", "Bob (you)"]);

  // Typing shows on the other side only, and goes once the message is sent.
  await bob.getByLabel("Message").pressSequentially("hello Ann");
  await expect(ann.getByText("Bob is typing…")).toBeVisible();
  await expect(bob.getByText("is typing…")).toHaveCount(0);
  await bob.getByRole("button", { name: "Send" }).click();
  const received = ann.getByRole("listitem").filter({ hasText: "hello Ann" });
  await expect(received).toContainText("Bob");
  await expect(received).not.toHaveClass(/\bown\b/);
  await expect(bob.getByRole("listitem").filter({ hasText: "hello Ann" })).toHaveClass(/\bown\b/);
  await expect(ann.getByText("Bob is typing…")).toHaveCount(0);
  expect(errors).toEqual([]);

  // Bob leaves: after the grace period, Ann hears of it through `leave`.
  await bob.context().close();
  await expect(annOnline.getByRole("listitem")).toHaveText(["Ann (you)"], { timeout: 10_000 });
  await ann.context().close();
});

test("a room without presence lists nobody but still shows typing", async ({ browser }) => {
  const demo = client(comms("app", "rotate-key", "demo").api_key);
  await demo.createRoom({ name: "no-presence" });
  const first = await demo.createEndpoint("no-presence", { permission: "read_and_write", meta: { name: "Cleo" } });
  const second = await demo.createEndpoint("no-presence", { permission: "read_and_write", meta: { name: "Dan" } });
  const cleo = await (await browser.newContext()).newPage();
  const dan = await (await browser.newContext()).newPage();
  await cleo.goto(`/demo/chat/${first.code}`);
  await dan.goto(`/demo/chat/${second.code}`);
  await expect(dan.getByRole("status")).toContainText("Connected.");
  await expect(cleo.getByRole("status")).toContainText("Connected.");
  await expect(cleo.getByRole("list", { name: "Online" })).toHaveCount(0);
  await dan.getByLabel("Message").pressSequentially("hi");
  await expect(cleo.getByText("Dan is typing…")).toBeVisible();
  await cleo.context().close();
  await dan.context().close();
});

/** Collects a page's console errors and uncaught exceptions. */
function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  page.on("pageerror", (error) => errors.push(error.message));
  return errors;
}
