// The JS SDK in the browser: the page imports the built SDK (served from
// sdk-js/dist), connects through an endpoint given as a path, so `ws` or `wss`
// comes from the page's protocol, and chats. The setup uses the SDK's
// CommsClient from Node, as a backend would.
import { resolve } from "node:path";
import { expect, test } from "@playwright/test";
import { client, comms } from "./support.js";

const dist = resolve("..", "sdk-js", "dist");

test("the JS SDK chats from a browser page", async ({ page }) => {
  const sdk = client(comms("app", "create", "browser-sdk").api_key);
  await sdk.createRoom({ name: "lobby" });
  const endpoint = await sdk.createEndpoint("lobby", { permission: "read_and_write", meta: { name: "Browser" } });

  await page.route("**/sdk/*.js", (route) =>
    route.fulfill({ path: resolve(dist, new URL(route.request().url()).pathname.split("/").pop()!), contentType: "text/javascript" }),
  );
  await page.goto("/");
  const received = await page.evaluate(async (code: string) => {
    const module = await import("/sdk/index.js" as string);
    const connection = await module.connectEndpoint(`/ws/endpoint/${code}/`);
    const message = new Promise((done) =>
      connection.on((event: { type: string; message?: unknown }) => {
        if (event.type === "message") done(event.message);
      }),
    );
    connection.send({ text: "hello from the browser" });
    const result = await message;
    connection.close();
    return result as { seq: number; message: unknown; sender: { meta: { name: string } } };
  }, endpoint.code);
  expect(received.seq).toBe(1);
  expect(received.message).toEqual({ text: "hello from the browser" });
  expect(received.sender.meta.name).toBe("Browser");
  const history = await sdk.listMessages("lobby", { after_seq: 0 });
  expect(history.messages).toHaveLength(1);
});

// A browser tells a refused upgrade only as close code 1006; the SDK asks the address over
// HTTP and stops for good on a 404, both when connecting and when reconnecting.
test("the JS SDK in a browser tells a gone code from a server that is away", async ({ page }) => {
  const sdk = client(comms("app", "create", "browser-gone").api_key);
  await sdk.createRoom({ name: "lobby" });
  const endpoint = await sdk.createEndpoint("lobby", { permission: "read_and_write" });

  await page.route("**/sdk/*.js", (route) =>
    route.fulfill({ path: resolve(dist, new URL(route.request().url()).pathname.split("/").pop()!), contentType: "text/javascript" }),
  );
  await page.goto("/");
  const unknown = await page.evaluate(async () => {
    const module = await import("/sdk/index.js" as string);
    try {
      await module.connectEndpoint("/ws/endpoint/no-such-code/");
      return "connected";
    } catch (err) {
      return (err as { code: string }).code;
    }
  });
  expect(unknown).toBe("not_found");

  // Joined, then the socket drops (the page closes it under the SDK, with a code the SDK
  // retries after), the code is deleted while it is away, and the next attempt is refused:
  // the browser says 1006, the SDK's probe finds the 404 and ends for good.
  await page.evaluate(async (code: string) => {
    const module = await import("/sdk/index.js" as string);
    const sockets: WebSocket[] = [];
    class Breakable extends WebSocket {
      constructor(url: string) {
        super(url);
        sockets.push(this);
      }
    }
    const connection = await module.connectEndpoint(`/ws/endpoint/${code}/`, {
      WebSocket: Breakable,
      reconnect: { initialDelayMs: 1000, maxDelayMs: 1000 },
    });
    await connection.ready();
    const events: { type: string; code?: number | null; state?: string }[] = [];
    connection.on((event: { type: string; code?: number | null; state?: string }) => events.push(event));
    Object.assign(window, { chat: connection, events, sockets });
    sockets[0].close(4000, "dropped by the test");
  }, endpoint.code);
  await expect.poll(() => page.evaluate(() => (window as unknown as { chat: { state: string } }).chat.state)).toBe("reconnecting");
  await sdk.deleteEndpoint("lobby", endpoint.code);
  await expect
    .poll(() => page.evaluate(() => (window as unknown as { chat: { state: string } }).chat.state), { timeout: 5000 })
    .toBe("closed");
  const seen = await page.evaluate(() => {
    const { events, sockets } = window as unknown as { events: { type: string; code?: number | null }[]; sockets: unknown[] };
    return { closed: events.find((event) => event.type === "closed"), attempts: sockets.length };
  });
  expect(seen.closed?.code).toBeNull();
  expect(seen.attempts).toBe(2);
});
