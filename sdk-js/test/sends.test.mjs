// Connection states, stop rules and acknowledged sends against the real
// server: `ready()`, the states across a restart, an endpoint deleted while
// the connection is away (closed within 2 s, not retried), an unknown code
// and an unreachable server told apart at connect, 100 sends across a
// graceful restart and across a crash each published once with the id and seq
// they resolved with, the bound of the queue, and pending sends rejected when
// the connection ends.
import { after, afterEach, before, test } from "node:test";
import assert from "node:assert/strict";
import { WebSocket } from "ws";

import { CommsError, ConnectionClosedError, connectEndpoint, QueueFullError, SendError } from "../dist/index.js";
import { closeOpened, CommsServer, freePort, nextEvent, open, relay, sleep } from "./support.mjs";

const server = new CommsServer();
const quick = { initialDelayMs: 100, maxDelayMs: 500 };

before(() => server.start());
after(() => server.dispose());
afterEach(closeOpened);

/** Every `state` event of `connection` from now on. */
function states(connection) {
  const seen = [];
  connection.on((event) => {
    if (event.type === "state") seen.push(event.state);
  });
  return seen;
}

/** A room `lobby` of a new app, and a writing endpoint of it. */
async function lobby(app) {
  const client = server.newClient(app);
  await client.createRoom({ name: "lobby" });
  const endpoint = await client.createEndpoint("lobby", { permission: "read_and_write" });
  return { client, endpoint };
}

/**
 * A connection of a fresh app's lobby through a relay, opened with
 * `options` and then cut off: it is `reconnecting` when this returns, and
 * `line.restore()` lets it back.
 */
async function awayThroughRelay(app, options = {}) {
  const { client, endpoint } = await lobby(app);
  const line = await relay(() => server.port);
  const chat = await open(line.url(endpoint), { reconnect: quick, ...options });
  await chat.ready();
  const away = nextEvent(chat, (e) => e.type === "reconnecting");
  line.cut();
  await away;
  return { client, endpoint, line, chat };
}

test("states go connecting, open, reconnecting, open, closed, and ready() follows them", async () => {
  const { endpoint } = await lobby("states");
  const chat = await open(endpoint.ws_url, { reconnect: quick });
  const seen = states(chat);
  assert.equal(chat.state, "connecting");
  // Queued until the welcome, then written.
  const early = chat.send("before the welcome");
  await chat.ready();
  assert.equal(chat.state, "open");
  assert.equal((await early).seq, 1);
  await chat.ready();

  const reconnecting = nextEvent(chat, (e) => e.type === "reconnecting");
  await server.stop();
  await reconnecting;
  assert.equal(chat.state, "reconnecting");
  const back = chat.ready();
  await server.start();
  await back;
  assert.equal(chat.state, "open");

  const closed = nextEvent(chat, (e) => e.type === "closed");
  chat.close();
  assert.equal((await closed).reason, "closed by the client");
  assert.deepEqual(seen, ["open", "reconnecting", "open", "closed"]);
  await assert.rejects(chat.ready(), ConnectionClosedError);
});

test("ready() rejects when the connection closes before it opened", async () => {
  const { client, endpoint, line, chat } = await awayThroughRelay("never-open");
  const waiting = chat.ready();
  await client.deleteEndpoint("lobby", endpoint.code);
  line.restore();
  await assert.rejects(waiting, (err) => err instanceof ConnectionClosedError && /no longer exists/.test(err.reason));
});

test("an endpoint deleted while the server restarts ends the connection within 2 s", async () => {
  const { client, endpoint } = await lobby("deleted-away");
  const chat = await open(endpoint.ws_url, { reconnect: quick });
  await chat.ready();
  const reconnecting = nextEvent(chat, (e) => e.type === "reconnecting");
  await server.stop();
  await reconnecting;
  const closed = nextEvent(chat, (e) => e.type === "closed");
  await server.start();
  await client.deleteEndpoint("lobby", endpoint.code);
  const deleted = Date.now();
  const event = await closed;
  assert.ok(Date.now() - deleted < 2000, `closed ${Date.now() - deleted} ms after the delete`);
  // Deleted before the connection came back (404) or just after its welcome (4001).
  assert.ok(event.code === null || event.code === 4001, `closed with ${event.code}: ${event.reason}`);
  await sleep(1000);
  assert.equal(chat.state, "closed", "not retried");
});

test("a refused upgrade on a reconnect closes for good, with no code, and rejects pending sends", async () => {
  const { client, endpoint, line, chat } = await awayThroughRelay("refused-reconnect");
  const pending = chat.send("waits");
  await client.deleteEndpoint("lobby", endpoint.code);
  const closed = nextEvent(chat, (e) => e.type === "closed", 2000);
  line.restore();
  const event = await closed;
  assert.equal(event.code, null);
  assert.match(event.reason, /no longer exists or cannot be joined/);
  await assert.rejects(pending, ConnectionClosedError);
});

test("an unknown code and an unreachable server are told apart at connect", async () => {
  const unknown = await connectEndpoint("no-such-code", { WebSocket, baseUrl: server.url }).catch((err) => err);
  assert.ok(unknown instanceof CommsError, String(unknown));
  assert.deepEqual([unknown.status, unknown.code], [404, "not_found"]);
  const nobody = `http://127.0.0.1:${await freePort()}`;
  const down = await connectEndpoint("some-code", { WebSocket, baseUrl: nobody }).catch((err) => err);
  assert.ok(down instanceof CommsError, String(down));
  assert.deepEqual([down.status, down.code], [0, "network"]);
});

/**
 * Starts 100 sends, stops the server with `signal` after 30 were acknowledged and 10 more were
 * written, sends the other 60 while it is down, restarts it, and checks that every send resolved
 * with the id and seq that history shows for it, each payload there once.
 */
async function hundredSendsAcross(signal) {
  const { client, endpoint } = await lobby(`hundred-${signal}`);
  const chat = await open(endpoint.ws_url, { reconnect: { initialDelayMs: 50, maxDelayMs: 300 } });
  await chat.ready();
  const sends = [];
  for (let n = 0; n < 30; n++) {
    sends.push(chat.send({ n }));
    if (n % 5 === 4) await sleep(5);
  }
  await sends[29];
  for (let n = 30; n < 40; n++) sends.push(chat.send({ n }));
  const stopped = server.stop(signal);
  for (let n = 40; n < 100; n++) {
    sends.push(chat.send({ n }));
    if (n % 10 === 9) await sleep(10);
  }
  await stopped;
  await server.start();
  const receipts = await Promise.all(sends);

  const history = (await client.listMessages("lobby", { limit: 1000 })).messages;
  const byPayload = new Map();
  for (const message of history) {
    const n = message.message.n;
    assert.ok(!byPayload.has(n), `${n} published twice: seqs ${byPayload.get(n)?.seq} and ${message.seq}`);
    byPayload.set(n, message);
  }
  assert.equal(history.length, 100);
  receipts.forEach((receipt, n) => {
    const published = byPayload.get(n);
    assert.ok(published, `${n} not in history`);
    assert.deepEqual(receipt, { id: published.id, seq: published.seq }, `the receipt of ${n}`);
  });
}

// A send that never resolves fails the test instead of hanging the run.
const bounded = { timeout: 60_000 };

test("100 sends across a graceful restart are each published once", bounded, () => hundredSendsAcross("SIGTERM"));

test("100 sends across a crash are each published once", bounded, () => hundredSendsAcross("SIGKILL"));

test("the queue is bounded: over maxPendingSends a send is refused at once", async () => {
  const { client, line, chat } = await awayThroughRelay("bounded", { maxPendingSends: 3 });
  const queued = [chat.send("one"), chat.send("two"), chat.send("three")];
  await assert.rejects(chat.send("four"), QueueFullError);
  line.restore();
  const receipts = await Promise.all(queued);
  assert.deepEqual(receipts.map((receipt) => receipt.seq), [1, 2, 3]);
  assert.equal((await chat.send("four")).seq, 4, "room again once they were acknowledged");
  const history = (await client.listMessages("lobby")).messages;
  assert.deepEqual(history.map((message) => message.message), ["one", "two", "three", "four"]);
});

test("a message over the server's size limit is refused once, not written again after every reconnect", async () => {
  const { endpoint } = await lobby("too-large");
  const chat = await open(endpoint.ws_url, { reconnect: quick });
  await chat.ready();
  const huge = chat.send("x".repeat(70 * 1024));
  const after = chat.send("after it");
  await assert.rejects(huge, (err) => err instanceof SendError && err.code === "too_large");
  // The server closed the socket at the huge one; the next is written again once back.
  assert.equal((await after).seq, 1);
  assert.equal((await chat.send("small")).seq, 2);
});
