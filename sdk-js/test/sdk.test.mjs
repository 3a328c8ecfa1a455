// The JS SDK against the real server: every REST call, error codes, fan-out,
// read-only refusal, resuming without loss or repeats across a server
// restart, presence (the member list, joins, leaves, and the list after a
// reconnect), signals, and endpoints as living capabilities (changes reaching
// open connections, moderation, delegation, and the final closes 4004 and
// 4029), and webhook deliveries as the server really sends them, verified by
// `verifyWebhook` at a receiver on a loopback port (the Standard Webhooks
// reference example and signatures made here with node:crypto check it
// without a server). The server is the `comms` binary (COMMS_BIN, or the
// debug build), started here with its own data folder and a short leave
// grace period; Node 20 has no global WebSocket, so the tests pass the `ws`
// package's.
import { createHmac } from "node:crypto";
import { createServer as createHttpServer } from "node:http";
import { after, afterEach, before, test } from "node:test";
import assert from "node:assert/strict";
import { WebSocket } from "ws";

import {
  CommsClient,
  CommsError,
  ConnectionClosedError,
  connectEndpoint,
  NotConnectedError,
  SendError,
  verifyWebhook,
  WebhookError,
} from "../dist/index.js";
import { closedWithoutReconnecting, closeOpened, collect, CommsServer, nextEvent, open, relay, seqs, track } from "./support.mjs";

const server = new CommsServer();

afterEach(closeOpened);

/** A `read_and_write` endpoint of `room` named `name` in its meta. */
function named(client, room, name) {
  return client.createEndpoint(room, { permission: "read_and_write", meta: { name } });
}

/** The public ids of a member list. */
function ids(members) {
  return members.map((member) => member.id);
}

/** Waits until the presence API lists exactly `expected` (public ids, in order). */
async function untilMembers(client, room, expected, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const listed = ids((await client.getPresence(room)).members ?? []);
    if (JSON.stringify(listed) === JSON.stringify(expected)) return;
    if (Date.now() > deadline) throw new Error(`the presence API still lists ${listed}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * An HTTP receiver of webhook deliveries on a loopback port, closed after the test: it keeps each
 * request's headers and body exactly as they came, and answers 204.
 */
async function webhookReceiver() {
  const deliveries = [];
  const listener = createHttpServer((request, response) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", () => {
      deliveries.push({ headers: request.headers, body: Buffer.concat(chunks).toString("utf8") });
      response.writeHead(204).end();
    });
  });
  await new Promise((done) => listener.listen(0, "127.0.0.1", done));
  const receiver = {
    url: `http://127.0.0.1:${listener.address().port}/hook`,
    /** Waits until `count` deliveries came, and returns them. */
    async received(count, ms = 20_000) {
      const deadline = Date.now() + ms;
      while (deliveries.length < count) {
        if (Date.now() > deadline) throw new Error(`only ${deliveries.length} of ${count} deliveries in time`);
        await new Promise((r) => setTimeout(r, 50));
      }
      return deliveries.slice();
    },
    close: () => {
      listener.closeAllConnections();
      listener.close();
    },
  };
  return track(receiver);
}

/** The `WebhookError` code `promise` rejects with. */
async function refusal(promise) {
  const err = await promise.then(() => assert.fail("expected a refusal"), (err) => err);
  assert.ok(err instanceof WebhookError, String(err));
  return err.code;
}

before(() => server.start());

after(() => server.dispose());

test("every REST call works and errors carry their codes", async () => {
  const client = server.newClient("rest");
  const room = await client.createRoom({ name: "lobby" });
  assert.deepEqual([room.name, room.endpoint_count, room.online], ["lobby", 0, 0]);
  assert.equal((await client.getRoom("lobby")).name, "lobby");
  assert.equal((await client.listRooms()).rooms.length, 1);
  const endpoint = await client.createEndpoint("lobby", { permission: "read_and_write", meta: { name: "Ann" } });
  assert.equal(endpoint.meta.name, "Ann");
  assert.match(endpoint.ws_url, /^ws:\/\//);
  assert.equal((await client.listEndpoints("lobby")).endpoints[0].code, endpoint.code);
  for (const n of [1, 2, 3]) {
    assert.equal((await client.publishMessage("lobby", { message: { n }, meta: { bot: true } })).seq, n);
  }
  const page = (await client.listMessages("lobby", { after_seq: 1, limit: 1 })).messages;
  assert.deepEqual([page.length, page[0].seq, page[0].sender.id], [1, 2, "app"]);
  const usage = await client.getUsage({ granularity: "minute" });
  assert.equal(usage.granularity, "minute");
  assert.equal(usage.points.reduce((sum, point) => sum + point.messages_in, 0), 3);
  const first = await client.publishMessage("lobby", { message: "once" }, { idempotencyKey: "retry-1" });
  const again = await client.publishMessage("lobby", { message: "once" }, { idempotencyKey: "retry-1" });
  assert.deepEqual([again.id, again.seq], [first.id, first.seq]);
  await client.deleteEndpoint("lobby", endpoint.code);

  const failure = (promise) => promise.then(() => assert.fail("expected an error"), (err) => err);
  const conflict = await failure(client.createRoom({ name: "lobby" }));
  assert.ok(conflict instanceof CommsError);
  assert.deepEqual([conflict.status, conflict.code], [409, "conflict"]);
  assert.equal((await failure(client.createRoom({ name: "no spaces" }))).code, "invalid");
  assert.equal((await failure(client.getRoom("a b/c"))).code, "invalid");
  await client.deleteRoom("lobby");
  assert.equal((await failure(client.getRoom("lobby"))).code, "not_found");
  const stranger = new CommsClient(server.url, "ck_not_a_key");
  assert.deepEqual([(await failure(stranger.listRooms())).status, (await failure(stranger.listRooms())).code], [403, "forbidden"]);
});

test("connections fan out and a reader cannot send", async () => {
  const client = server.newClient("chat");
  await client.createRoom({ name: "lobby" });
  const writer = await client.createEndpoint("lobby", { permission: "read_and_write", meta: { name: "Ann" } });
  const reader = await client.createEndpoint("lobby", { permission: "read" });
  const ann = await open(writer.ws_url);
  const watcher = await open(reader.code, { baseUrl: server.url });
  const welcomes = await Promise.all([nextEvent(ann), nextEvent(watcher)]);
  assert.deepEqual(welcomes.map((e) => e.type), ["welcome", "welcome"]);
  assert.equal(welcomes[0].welcome.endpoint.permission, "read_and_write");

  const seen = Promise.all([ann, watcher].map((c) => nextEvent(c, (e) => e.type === "message")));
  const receipt = await ann.send({ text: "hi" });
  for (const { message } of await seen) {
    assert.deepEqual([message.id, message.seq], [receipt.id, receipt.seq]);
    assert.deepEqual([message.seq, message.message, message.sender.id], [1, { text: "hi" }, writer.id]);
    assert.equal(message.sender.meta.name, "Ann");
  }
  const refused = nextEvent(watcher, (e) => e.type === "error");
  const sent = watcher.send("may I?");
  await assert.rejects(sent, (err) => err instanceof SendError && err.code === "read_only");
  assert.equal((await refused).code, "read_only");

  const closed = nextEvent(watcher, (e) => e.type === "closed");
  await client.deleteEndpoint("lobby", reader.code);
  assert.equal((await closed).code, 4001);
  assert.equal(watcher.state, "closed");
  await assert.rejects(watcher.send("x"), ConnectionClosedError);
  assert.throws(() => watcher.sendSignal("x"), NotConnectedError);
  await assert.rejects(connectEndpoint(reader.ws_url, { WebSocket }), (err) => err instanceof CommsError && err.code === "not_found");
  ann.close();
});

test("a server restart is survived by resuming from history", async () => {
  const client = server.newClient("resume");
  await client.createRoom({ name: "lobby" });
  const endpoint = await client.createEndpoint("lobby", { permission: "read" });
  const connection = await open(endpoint.ws_url, { reconnect: { initialDelayMs: 50, maxDelayMs: 200 } });
  // Without `afterSeq`, what follows the welcome is delivered: a message published before the
  // server has joined the socket to the room (it does so after the handshake, which is all
  // `connectEndpoint` waits for) is not.
  await nextEvent(connection, (e) => e.type === "welcome");
  const first = seqs(connection, 10);
  for (let n = 1; n <= 10; n++) await client.publishMessage("lobby", { message: n });
  assert.deepEqual(await first, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);

  const rest = seqs(connection, 8);
  const reconnecting = nextEvent(connection, (e) => e.type === "reconnecting");
  await server.stop();
  assert.match((await reconnecting).reason, /1001|1006/);
  await server.start();
  for (let n = 11; n <= 18; n++) await client.publishMessage("lobby", { message: n });
  assert.deepEqual(await rest, [11, 12, 13, 14, 15, 16, 17, 18], "every seq once, in order");
  connection.close();
});

test("a presence room lists its members and tells of joins and leaves", async () => {
  const client = server.newClient("presence");
  assert.equal((await client.createRoom({ name: "lobby", presence: true })).presence, true);
  const [ann, bob] = [await named(client, "lobby", "Ann"), await named(client, "lobby", "Bob")];
  const annChat = await open(ann.ws_url);
  const welcome = await nextEvent(annChat);
  assert.equal(welcome.type, "welcome");
  assert.deepEqual(ids(welcome.welcome.members), [ann.id]);
  assert.deepEqual(ids(annChat.members), [ann.id]);

  const bobChat = await open(bob.ws_url);
  await nextEvent(bobChat, (e) => e.type === "welcome");
  assert.deepEqual(ids(bobChat.members), [ann.id, bob.id], "in the order they joined");
  const joined = await nextEvent(annChat);
  assert.equal(joined.type, "join");
  assert.deepEqual([joined.member.id, joined.member.meta.name, joined.member.connections], [bob.id, "Bob", 1]);
  const withBob = annChat.members;
  assert.deepEqual(ids(withBob), [ann.id, bob.id]);

  bobChat.close();
  const left = await nextEvent(annChat);
  assert.equal(left.type, "leave");
  assert.deepEqual([left.member.id, left.member.connections], [bob.id, 0]);
  assert.deepEqual(ids(annChat.members), [ann.id]);
  assert.deepEqual(ids(withBob), [ann.id, bob.id], "a list once read does not change");
});

test("members are right again after a reconnect", async () => {
  const client = server.newClient("presence-reconnect");
  await client.createRoom({ name: "lobby", presence: true });
  const [ann, bob, carol] = [
    await named(client, "lobby", "Ann"),
    await named(client, "lobby", "Bob"),
    await named(client, "lobby", "Carol"),
  ];
  const line = await relay(() => server.port);
  const annChat = await open(line.url(ann), { reconnect: { initialDelayMs: 20, maxDelayMs: 100 } });
  await nextEvent(annChat, (e) => e.type === "welcome");
  const bobChat = await open(bob.ws_url);
  assert.equal((await nextEvent(annChat, (e) => e.type === "join")).member.id, bob.id);

  // Ann is away long enough for the server to count her out; meanwhile Bob leaves and Carol
  // comes, and Ann hears of neither.
  const away = nextEvent(annChat, (e) => e.type === "reconnecting");
  line.cut();
  await away;
  bobChat.close();
  await open(carol.ws_url);
  await untilMembers(client, "lobby", [carol.id]);
  assert.deepEqual(ids(annChat.members), [ann.id, bob.id], "the last list known while away");

  const back = nextEvent(annChat, (e) => e.type === "welcome");
  line.restore();
  assert.deepEqual(ids((await back).welcome.members), [carol.id, ann.id]);
  assert.deepEqual(ids(annChat.members), [carol.id, ann.id], "Bob gone, Carol there");
});

test("signals reach every other connection and never come back", async () => {
  const client = server.newClient("signals");
  await client.createRoom({ name: "lobby" });
  const [ann, bob] = [await named(client, "lobby", "Ann"), await named(client, "lobby", "Bob")];
  const reader = await client.createEndpoint("lobby", { permission: "read" });
  const chats = await Promise.all([ann, bob, reader].map((e) => open(e.ws_url)));
  const [annChat, bobChat, watcher] = chats;
  for (const event of await Promise.all(chats.map((chat) => nextEvent(chat)))) {
    assert.equal(event.type, "welcome");
    assert.equal(event.welcome.members, undefined, "no presence in this room");
  }
  assert.deepEqual(chats.map((chat) => chat.members), [null, null, null]);

  const signals = Promise.all([bobChat, watcher].map((chat) => nextEvent(chat)));
  annChat.sendSignal({ typing: true });
  for (const event of await signals) {
    assert.equal(event.type, "signal");
    assert.deepEqual([event.sender.id, event.sender.meta.name, event.signal], [ann.id, "Ann", { typing: true }]);
  }
  // The message Ann sends next is the first thing she gets back: her signal did not come
  // before it.
  const messages = Promise.all(chats.map((chat) => nextEvent(chat)));
  await annChat.send("done typing");
  for (const event of await messages) assert.deepEqual([event.type, event.message?.message], ["message", "done typing"]);

  const refused = nextEvent(watcher);
  watcher.sendSignal({ typing: true });
  assert.deepEqual([(await refused).type, (await refused).code], ["error", "read_only"]);

  for (const chat of chats) chat.close();
  assert.throws(() => annChat.sendSignal({ typing: false }), NotConnectedError);
});

test("an endpoint change reaches its own connections and applies at once", async () => {
  const client = server.newClient("living");
  await client.createRoom({ name: "lobby" });
  const [ann, bob] = [await named(client, "lobby", "Ann"), await named(client, "lobby", "Bob")];
  const annChat = await open(ann.ws_url);
  const bobChat = await open(bob.ws_url);
  const welcome = await nextEvent(annChat);
  assert.equal(welcome.type, "welcome");
  assert.deepEqual([welcome.welcome.endpoint.permission, welcome.welcome.endpoint.expires_at], ["read_and_write", null]);
  assert.equal(annChat.endpoint.permission, "read_and_write");
  await nextEvent(bobChat, (e) => e.type === "welcome");

  const later = new Date(Date.now() + 3_600_000).toISOString();
  const changed = nextEvent(annChat);
  const change = { permission: "read", meta: { name: "Ann (muted)" }, expires_at: later };
  assert.equal((await client.updateEndpoint("lobby", ann.code, change)).permission, "read");
  const { type, endpoint } = await changed;
  assert.equal(type, "endpoint");
  assert.deepEqual([endpoint.id, endpoint.permission, endpoint.meta.name], [ann.id, "read", "Ann (muted)"]);
  assert.equal(Date.parse(endpoint.expires_at), Date.parse(later));
  assert.equal(annChat.endpoint.permission, "read");
  const refused = nextEvent(annChat);
  await assert.rejects(annChat.send("still here?"), SendError);
  assert.deepEqual([(await refused).type, (await refused).code], ["error", "read_only"], "the downgrade applies at once");

  const cleared = nextEvent(annChat);
  assert.equal((await client.updateEndpoint("lobby", ann.code, { expires_at: null })).expires_at ?? null, null);
  assert.deepEqual([(await cleared).type, (await cleared).endpoint.expires_at], ["endpoint", null]);

  // Only Ann's connections heard of it: the first thing Bob gets is his own message.
  const first = nextEvent(bobChat);
  await bobChat.send("hi");
  assert.deepEqual([(await first).type, (await first).message?.message], ["message", "hi"]);
});

test("a moderator redacts and every connection hears of it", async () => {
  const client = server.newClient("moderation");
  await client.createRoom({ name: "lobby" });
  const ann = await named(client, "lobby", "Ann");
  const moderator = await client.createEndpoint("lobby", { permission: "moderate" });
  const annChat = await open(ann.ws_url);
  const modChat = await open(moderator.ws_url);
  const welcomes = await Promise.all([nextEvent(annChat), nextEvent(modChat)]);
  assert.equal(welcomes[1].welcome.endpoint.permission, "moderate");

  const delivered = Promise.all([annChat, modChat].map((chat) => nextEvent(chat, (e) => e.type === "message")));
  await annChat.send("oops");
  const [{ message }] = await delivered;
  const refused = nextEvent(annChat);
  annChat.redact(message.seq);
  assert.deepEqual([(await refused).type, (await refused).code], ["error", "forbidden"], "only a moderator redacts");

  const redactions = Promise.all([annChat, modChat].map((chat) => nextEvent(chat)));
  modChat.redact(message.seq);
  for (const event of await redactions) assert.deepEqual(event, { type: "redaction", seq: message.seq, id: message.id });
  const unknown = nextEvent(modChat);
  modChat.redact(message.seq + 100);
  assert.deepEqual([(await unknown).type, (await unknown).code], ["error", "not_found"]);

  const history = (await client.listMessages("lobby")).messages;
  assert.deepEqual([history[0].message, typeof history[0].redacted_at], [null, "string"]);
  // Resuming serves it redacted too, with its sender.
  const late = await open(ann.ws_url, { afterSeq: 0 });
  const resumed = (await nextEvent(late, (e) => e.type === "message")).message;
  assert.deepEqual([resumed.seq, resumed.message, resumed.sender.id], [message.seq, null, ann.id]);
  assert.equal(typeof resumed.redacted_at, "string");
  late.close();
  assert.throws(() => late.redact(message.seq), NotConnectedError);
});

test("children speak for their parent and the app redacts by seq and by sender", async () => {
  const client = server.newClient("delegation");
  await client.createRoom({ name: "lobby" });
  const parent = await client.createEndpoint("lobby", { permission: "read_and_write", can_delegate: true });
  // The parent's holder needs no API key.
  const holder = new CommsClient(server.url, "");
  const child = await holder.createChild(parent.code, { permission: "read_and_write", meta: { name: "Kid" } });
  assert.deepEqual([child.parent, child.room], [parent.id, "lobby"]);
  const reader = await client.createEndpoint("lobby", { permission: "read" });
  const watcher = await open(reader.ws_url);
  const kidChat = await open(child.ws_url);
  await Promise.all([nextEvent(watcher), nextEvent(kidChat)]);

  const heard = collect(watcher, 3, (e) => e.type === "message");
  await client.publishMessage("lobby", { message: "welcome" });
  await Promise.all([kidChat.send("one"), kidChat.send("two")]);
  const [fromApp, ...fromKid] = (await heard).map((event) => event.message);
  assert.equal(fromApp.sender.parent ?? null, null);
  for (const message of fromKid) {
    assert.deepEqual([message.sender.id, message.sender.meta.name, message.sender.parent], [child.id, "Kid", parent.id]);
  }
  const listed = (await client.listMessages("lobby", { sender_id: child.id })).messages;
  assert.deepEqual(listed.map((message) => message.seq), [2, 3]);

  const redactions = collect(watcher, 3, (e) => e.type === "redaction");
  await client.redactMessage("lobby", 1);
  assert.equal((await client.redactSender("lobby", { sender_id: child.id })).redacted, 2);
  assert.deepEqual((await redactions).map((event) => event.seq), [1, 2, 3]);
  const history = (await client.listMessages("lobby")).messages;
  assert.ok(history.every((message) => message.message === null && typeof message.redacted_at === "string"));
});

test("an expired endpoint is closed with 4004 and not reconnected", async () => {
  const client = server.newClient("expiry");
  await client.createRoom({ name: "lobby" });
  // Long enough to connect on a busy machine before it passes.
  const expiresAt = new Date(Date.now() + 3_000).toISOString();
  const brief = await client.createEndpoint("lobby", { permission: "read", expires_at: expiresAt });
  const chat = await open(brief.ws_url, { reconnect: { initialDelayMs: 20 } });
  assert.equal(typeof (await nextEvent(chat)).welcome.endpoint.expires_at, "string");
  assert.equal((await closedWithoutReconnecting(chat)).code, 4004);
  await assert.rejects(chat.send("x"), ConnectionClosedError);
  await assert.rejects(connectEndpoint(brief.ws_url, { WebSocket }), (err) => err instanceof CommsError && err.code === "not_found");
});

test("a socket over max_connections is closed with 4029 and not reconnected", async () => {
  const client = server.newClient("max-connections");
  await client.createRoom({ name: "lobby" });
  const single = await client.createEndpoint("lobby", { permission: "read", max_connections: 1 });
  const first = await open(single.ws_url);
  await nextEvent(first, (e) => e.type === "welcome");
  const second = await open(single.ws_url, { reconnect: { initialDelayMs: 20 } });
  assert.equal((await closedWithoutReconnecting(second)).code, 4029);
  const stays = nextEvent(first, (e) => e.type === "message");
  await client.publishMessage("lobby", { message: "first stays" });
  assert.equal((await stays).message.message, "first stays");
});

// The example of the Standard Webhooks specification.
const reference = {
  secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
  id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
};

/** The headers of `body` signed with the reference secret by node:crypto, as comms signs. */
function signedHeaders(body, timestamp = reference.timestamp) {
  const key = Buffer.from(reference.secret.slice("whsec_".length), "base64");
  const signature = createHmac("sha256", key).update(`${reference.id}.${timestamp}.${body}`).digest("base64");
  return { "webhook-id": reference.id, "webhook-timestamp": String(timestamp), "webhook-signature": `v1,${signature}` };
}

test("verifyWebhook checks the reference example, every signature entry and the tolerance", async () => {
  const { secret, id, timestamp, body, signature } = reference;
  const now = new Date(timestamp * 1000);
  const at = (offset) => ({ now: new Date((timestamp + offset) * 1000) });
  const signedBy = (signature) => ({ "webhook-id": id, "webhook-timestamp": String(timestamp), "webhook-signature": signature });
  /** The code `verifyWebhook` refuses the reference delivery with, given these changes. */
  const refused = (changes) => {
    const delivery = { secret, headers: signedBy(signature), body, ...changes };
    return refusal(verifyWebhook(delivery.secret, delivery.headers, delivery.body, { now }));
  };
  // The reference signature is accepted: what is refused is its body, which is no comms event.
  assert.equal(await refused({}), "malformed");
  assert.equal(await refused({ body: '{"test": 2432232315}' }), "invalid_signature");
  assert.equal(await refused({ secret: "whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=" }), "invalid_signature");
  assert.equal(await refused({ headers: signedBy(`v1,bm90IGl0 v1a,c2ln ${signature}`) }), "malformed", "one entry is enough");
  assert.equal(await refused({ headers: signedBy(`v1,bm90IGl0 v2,${signature.slice(3)}`) }), "invalid_signature");
  assert.equal(await refused({ secret: secret.slice("whsec_".length) }), "invalid_secret");
  assert.equal(await refused({ secret: "whsec_not base64!" }), "invalid_secret");
  assert.equal(await refused({ headers: { "webhook-id": id, "webhook-signature": signature } }), "missing_header");

  const room = { name: "lobby" };
  const event = JSON.stringify({ type: "room.vacated", timestamp: "2021-02-25T15:02:10.000Z", data: { room } });
  const headers = signedHeaders(event);
  for (const offset of [-300, 0, 300]) {
    const read = await verifyWebhook(secret, headers, event, at(offset));
    assert.deepEqual([read.type, read.data.room], ["room.vacated", room]);
  }
  for (const offset of [-301, 301]) {
    assert.equal(await refusal(verifyWebhook(secret, headers, event, at(offset))), "stale_timestamp");
  }
  const wide = { ...at(3600), toleranceSeconds: 3600 };
  assert.equal((await verifyWebhook(secret, headers, event, wide)).type, "room.vacated");
  // Header names in any case, and a `Headers`.
  const shouting = Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toUpperCase(), value]));
  assert.equal((await verifyWebhook(secret, shouting, event, { now })).type, "room.vacated");
  assert.equal((await verifyWebhook(secret, new Headers(headers), event, { now })).type, "room.vacated");
  assert.equal(await refusal(verifyWebhook(secret, signedHeaders(event, "soon"), event, { now })), "malformed");
});

test("real webhook deliveries verify, and a changed body or another secret is refused", async () => {
  const client = server.newClient("hooks");
  const receiver = await webhookReceiver();
  const events = ["room.created", "endpoint.created", "message.created"];
  const hook = await client.createWebhook({ url: receiver.url, events });

  await client.createRoom({ name: "lobby" });
  const endpoint = await named(client, "lobby", "Ann");
  const published = await client.publishMessage("lobby", { message: { text: "hi" } });
  const deliveries = await receiver.received(3);

  const seen = [];
  for (const { headers, body } of deliveries) {
    const event = await verifyWebhook(hook.secret, headers, body);
    assert.match(event.timestamp, /Z$/);
    if (event.type === "room.created") assert.equal(event.data.room.name, "lobby");
    else if (event.type === "endpoint.created") {
      const { room, endpoint: created } = event.data;
      assert.deepEqual([room, created.id, created.meta.name], ["lobby", endpoint.id, "Ann"]);
    } else if (event.type === "message.created") {
      assert.deepEqual([event.data.message.id, event.data.message.seq], [published.id, published.seq]);
      assert.deepEqual(event.data.message.message, { text: "hi" });
    } else assert.fail(`unexpected ${event.type}`);
    seen.push(event.type);
  }
  assert.deepEqual(seen.sort(), [...events].sort(), "each once");
  assert.equal(new Set(deliveries.map(({ headers }) => headers["webhook-id"])).size, 3, "an id per event");

  const [{ headers, body }] = deliveries;
  const tampered = body.replace("lobby", "lobbx");
  assert.notEqual(tampered, body);
  assert.equal(await refusal(verifyWebhook(hook.secret, headers, tampered)), "invalid_signature");
  const restamped = { ...headers, "webhook-timestamp": `${headers["webhook-timestamp"]}1` };
  assert.equal(await refusal(verifyWebhook(hook.secret, restamped, body)), "invalid_signature");
  const another = await client.createWebhook({ url: receiver.url, events: ["room.deleted"] });
  assert.notEqual(another.secret, hook.secret);
  assert.equal(await refusal(verifyWebhook(another.secret, headers, body)), "invalid_signature");
  // The same delivery an hour later: a replay.
  const later = new Date(Date.now() + 3_600_000);
  assert.equal(await refusal(verifyWebhook(hook.secret, headers, body, { now: later })), "stale_timestamp");
});
