// Webhooks in the portal and the admin area. A developer registers a webhook
// pointing at a receiver this spec runs on 127.0.0.1 (the server runs in the
// `dev` profile, which lets webhooks post to loopback), is shown its secret
// once, makes a room and watches the `room.created` delivery fail while the
// receiver answers 500; once it answers 200, "Send again" delivers the same
// event with the same `webhook-id`. An admin sees an app's webhook among the
// failing ones while its receiver fails.
import { expect, test, type Page } from "@playwright/test";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { client, comms, developerOnApprovedApp, logIn, open } from "./support.js";

/** What the receiver got: each POST's `webhook-id` header and event type. */
type Received = { id: string; type: string };

/** A webhook receiver on 127.0.0.1 that records every POST. */
type Receiver = {
  /** Where it listens. */
  url: string;
  /** The POSTs so far, oldest first. */
  received: Received[];
  /** The HTTP status it answers with (500 at first). */
  status: number;
  close(): void;
};

async function startReceiver(): Promise<Receiver> {
  const received: Received[] = [];
  const receiver = { url: "", received, status: 500, close: () => server.close() };
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      received.push({ id: String(request.headers["webhook-id"]), type: JSON.parse(body).type });
      response.writeHead(receiver.status).end("receiver says no");
    });
  });
  await new Promise<void>((listening) => server.listen(0, "127.0.0.1", listening));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  return receiver;
}

/** Presses the page's "Refresh" until `check` passes: deliveries happen after the action that caused them. */
async function refreshUntil(page: Page, check: () => Promise<void>) {
  await expect(async () => {
    await page.getByRole("button", { name: "Refresh" }).click();
    await check();
  }).toPass({ timeout: 15_000 });
}

test("a developer adds a webhook, sees a delivery fail, and sends it again", async ({ page }, testInfo) => {
  const receiver = await startReceiver();
  await developerOnApprovedApp(page, "hooks@example.com", "hooked");
  const webhooks = page.getByRole("region", { name: "Webhooks", exact: true });
  await expect(webhooks).toContainText("No webhooks yet.");
  await expect(webhooks.getByLabel("room.created")).toBeChecked();
  await expect(webhooks.getByLabel("message.created")).not.toBeChecked();

  // Mistakes come back from the same checks as the REST API's.
  await webhooks.getByLabel("Webhook URL").fill("ftp://127.0.0.1/hooks");
  await webhooks.getByRole("button", { name: "Add webhook" }).click();
  await expect(webhooks.getByRole("alert")).toContainText("url must start with http:// or https://");
  await webhooks.getByLabel("Webhook URL").fill(receiver.url);
  for (const box of await webhooks.getByRole("checkbox").all()) await box.uncheck();
  await webhooks.getByRole("button", { name: "Add webhook" }).click();
  await expect(webhooks.getByRole("alert")).toContainText("events must list at least one event type");

  await webhooks.getByLabel("Webhook URL").fill(receiver.url);
  await webhooks.getByLabel("room.created").check();
  await webhooks.getByLabel("room.deleted").check();
  await webhooks.getByRole("button", { name: "Add webhook" }).click();
  await expect(webhooks.getByRole("status")).toContainText("will not be shown again");
  await expect(webhooks.getByLabel("Signing secret")).toHaveValue(/^whsec_/);
  const card = page.getByRole("region", { name: `webhook ${receiver.url}` });
  await expect(card).toContainText("Events: room.created, room.deleted.");
  await expect(card).toContainText("No deliveries yet.");

  await page.getByLabel("New room name").fill("hooked-room");
  await page.getByRole("button", { name: "Create room" }).click();
  await expect.poll(() => receiver.received.map((post) => post.type)).toEqual(["room.created"]);
  const eventId = receiver.received[0].id;
  const delivery = card.getByRole("row").filter({ hasText: "room.created" });
  await refreshUntil(page, () => expect(delivery).toContainText("the receiver answered 500", { timeout: 1_000 }));
  await expect(delivery.getByRole("cell")).toHaveText([
    /^room\.created /,
    eventId,
    "pending",
    "500",
    "1",
    "the receiver answered 500: receiver says no",
    /^\d{4}-\d\d-\d\dT/,
    "Send again",
  ]);
  await page.screenshot({ path: testInfo.outputPath("webhooks.png"), fullPage: true });

  receiver.status = 200;
  await delivery.getByRole("button", { name: "Send again" }).click();
  await expect(webhooks.getByText("Sending it again")).toBeVisible();
  await expect.poll(() => receiver.received.map((post) => post.id)).toEqual([eventId, eventId]);
  await refreshUntil(page, () => expect(delivery.getByRole("cell", { name: "delivered" })).toBeVisible({ timeout: 1_000 }));
  await expect(delivery.getByRole("cell")).toHaveText([/^room\.created /, eventId, "delivered", "200", "2", "", "", "Send again"]);

  // Shown once: a later visit lists the webhook without its secret.
  await open(page, "/portal/apps/hooked");
  await expect(card).toBeVisible();
  await expect(page.getByLabel("Signing secret")).toHaveCount(0);

  await card.getByRole("button", { name: "Delete webhook" }).click();
  await expect(webhooks.getByRole("status")).toContainText("Webhook deleted.");
  await expect(card).toHaveCount(0);
  await expect(webhooks).toContainText("No webhooks yet.");
  receiver.close();
});

test("an admin sees the webhooks whose deliveries are failing", async ({ page }, testInfo) => {
  const receiver = await startReceiver();
  const flaky = client(comms("app", "create", "flaky").api_key);
  const webhook = await flaky.createWebhook({ url: receiver.url, events: ["room.created"] });
  await flaky.createRoom({ name: "anything" });
  await expect.poll(() => receiver.received.length).toBe(1);

  const password = comms("admin", "create", "hooks-admin@example.com").password;
  await open(page, "/admin");
  await logIn(page, "hooks-admin@example.com", password);
  const failing = page.getByRole("region", { name: "Failing webhooks" });
  await expect(failing).toBeVisible();
  const row = failing.getByRole("row").filter({ hasText: webhook.id });
  // The attempt's outcome is written just after the receiver answered.
  await expect(async () => {
    await open(page, "/admin");
    await expect(row).toBeVisible({ timeout: 1_000 });
  }).toPass({ timeout: 15_000 });
  await expect(row.getByRole("cell")).toHaveText(["flaky", webhook.id, receiver.url, "0", "1"]);
  await page.screenshot({ path: testInfo.outputPath("admin-webhooks.png"), fullPage: true });
  receiver.close();
});
