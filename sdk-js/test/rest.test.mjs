// The REST client's failures and retries against the real server: an
// unreachable server is a `network` CommsError, and a publish whose answer
// is lost (a 503 from a proxy, a connection cut before the answer) is sent
// again with the same Idempotency-Key and published once; nothing else is
// retried.
import { createServer } from "node:http";
import { after, afterEach, before, test } from "node:test";
import assert from "node:assert/strict";

import { CommsClient, CommsError } from "../dist/index.js";
import { closeOpened, CommsServer, freePort, track } from "./support.mjs";

const server = new CommsServer();

before(() => server.start());
after(() => server.dispose());
afterEach(closeOpened);

/**
 * An HTTP proxy in front of the server that carries out each request and then, for the n-th one,
 * does what `plan[n]` says with the answer: `"pass"` (the default) hands it on, `"503"` answers
 * 503 instead, `"cut"` closes the connection without an answer. It keeps the requests it saw.
 */
async function flakyProxy(plan) {
  const seen = [];
  const listener = createServer(async (request, response) => {
    const chunks = [];
    for await (const chunk of request) chunks.push(chunk);
    const body = chunks.length === 0 ? undefined : Buffer.concat(chunks);
    const headers = { ...request.headers };
    delete headers.host;
    delete headers.connection;
    seen.push({ method: request.method, key: request.headers["idempotency-key"] });
    const answer = await fetch(server.url + request.url, { method: request.method, headers, body });
    const text = await answer.text();
    const step = plan[seen.length - 1] ?? "pass";
    if (step === "cut") return request.socket.destroy();
    if (step === "503") return response.writeHead(503, { "Content-Type": "text/plain" }).end("no server");
    response.writeHead(answer.status, { "Content-Type": answer.headers.get("content-type") ?? "text/plain" }).end(text);
  });
  await new Promise((done) => listener.listen(0, "127.0.0.1", done));
  track({
    close: () => {
      listener.closeAllConnections();
      listener.close();
    },
  });
  return { url: `http://127.0.0.1:${listener.address().port}`, seen };
}

test("an unreachable server is a network CommsError", async () => {
  const nobody = new CommsClient(`http://127.0.0.1:${await freePort()}`, "ck_x");
  const err = await nobody.listRooms().catch((err) => err);
  assert.ok(err instanceof CommsError, String(err));
  assert.deepEqual([err.status, err.code], [0, "network"]);
  assert.match(err.message, /ECONNREFUSED/);
});

test("a publish whose answer is lost is retried with its key and published once", async () => {
  const apiKey = server.createApp("retried");
  const direct = new CommsClient(server.url, apiKey);
  await direct.createRoom({ name: "lobby" });
  const proxy = await flakyProxy(["503", "cut"]);
  const client = new CommsClient(proxy.url, apiKey);
  const published = await client.publishMessage("lobby", { message: "once" });
  assert.equal(proxy.seen.length, 3);
  const keys = new Set(proxy.seen.map((request) => request.key));
  assert.equal(keys.size, 1, "the same key every time");
  assert.match([...keys][0], /^[A-Za-z0-9_-]{22,64}$/, "a key by default");
  const history = (await direct.listMessages("lobby")).messages;
  assert.deepEqual(history.map((message) => [message.id, message.seq, message.message]), [[published.id, published.seq, "once"]]);
});

test("retries stop at `retries`, and requests without a key are not retried", async () => {
  const apiKey = server.createApp("not-retried");
  const direct = new CommsClient(server.url, apiKey);
  await direct.createRoom({ name: "lobby" });
  const down = await flakyProxy(["503", "503", "503"]);
  const once = new CommsClient(down.url, apiKey, { retries: 1 });
  const refused = await once.publishMessage("lobby", { message: "twice sent" }).catch((err) => err);
  assert.deepEqual([refused.status, refused.code], [503, "unexpected"]);
  assert.equal(down.seen.length, 2);

  const lost = await flakyProxy(["cut"]);
  const lister = new CommsClient(lost.url, apiKey);
  const err = await lister.createRoom({ name: "hall" }).catch((err) => err);
  assert.deepEqual([err.status, err.code], [0, "network"]);
  assert.equal(lost.seen.length, 1, "a request without a key is sent once");
  // It was carried out though: that is why it is not sent again.
  assert.equal((await direct.getRoom("hall")).name, "hall");
});
