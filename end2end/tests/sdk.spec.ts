// The JS SDK in the browser: the page imports the built SDK (served from
// sdk-js/dist), connects through an endpoint given as a path, so `ws` or `wss`
// comes from the page's protocol, and chats. The setup uses the SDK's
// CommsClient from Node, as a backend would.
import { execFileSync } from "node:child_process";
import { resolve } from "node:path";
import { expect, test } from "@playwright/test";
import { CommsClient } from "../../sdk-js/dist/index.js";

const dist = resolve("..", "sdk-js", "dist");

test("the JS SDK chats from a browser page", async ({ page }) => {
  const binary = resolve("..", process.env.COMMS_BIN ?? "target/debug/comms");
  const created = execFileSync(binary, ["app", "create", "browser-sdk"], {
    env: { ...process.env, COMMS_DATA_DIR: process.env.COMMS_E2E_DATA_DIR },
  });
  const client = new CommsClient(process.env.COMMS_E2E_BASE_URL!, JSON.parse(created.toString()).api_key);
  await client.createRoom({ name: "lobby" });
  const endpoint = await client.createEndpoint("lobby", { permission: "read_and_write", meta: { name: "Browser" } });

  await page.route("**/sdk/*.js", (route) =>
    route.fulfill({ path: resolve(dist, new URL(route.request().url()).pathname.split("/").pop()!), contentType: "text/javascript" }),
  );
  await page.goto("/");
  const received = await page.evaluate(async (code: string) => {
    const sdk = await import("/sdk/index.js" as string);
    const connection = await sdk.connectEndpoint(`/ws/endpoint/${code}/`);
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
  const history = await client.listMessages("lobby", { after_seq: 0 });
  expect(history.messages).toHaveLength(1);
});
