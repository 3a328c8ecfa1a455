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
