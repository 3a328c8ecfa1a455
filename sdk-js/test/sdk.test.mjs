// The JS SDK against the real server: every REST call, error codes, fan-out,
// read-only refusal, resuming without loss or repeats across a server
// restart, presence (the member list, joins, leaves, and the list after a
// reconnect) and signals. The server is the `comms` binary (COMMS_BIN, or the
// debug build), started here with its own data folder and a short leave
// grace period; Node 20 has no global WebSocket, so the tests pass the `ws`
// package's.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, afterEach, before, test } from "node:test";
import assert from "node:assert/strict";
import { WebSocket } from "ws";

import { CommsClient, CommsError, connectEndpoint, NotConnectedError } from "../dist/index.js";

const binary = resolve(process.env.COMMS_BIN ?? "../target/debug/comms");
const dataDir = mkdtempSync(join(tmpdir(), "comms-sdk-js-"));
// A short grace period, so the tests wait little for leaves.
const env = {
  ...process.env,
  COMMS_DATA_DIR: dataDir,
  COMMS_DEMO__ENABLED: "false",
  COMMS_PRESENCE__LEAVE_GRACE_MS: "300",
};
let port;
let server;

async function freePort() {
  return new Promise((done) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => done(port));
    });
  });
}

async function startServer() {
  server = spawn(binary, ["serve", "--addr", `127.0.0.1:${port}`], { env, stdio: "ignore" });
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("the server did not start");
}

async function stopServer() {
  const exited = new Promise((done) => server.once("exit", done));
  server.kill("SIGTERM");
  await exited;
}

function newClient(app) {
  const created = JSON.parse(execFileSync(binary, ["app", "create", app], { env }).toString());
  return new CommsClient(`http://127.0.0.1:${port}`, created.api_key);
}

/** Waits for the next event matching `predicate`. */
function nextEvent(connection, predicate = () => true, ms = 10_000) {
  return new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error("no event in time")), ms);
    const stop = connection.on((event) => {
      if (predicate(event)) {
        clearTimeout(timer);
        stop();
        done(event);
      }
    });
  });
}

/** Collects the seqs of `count` messages. */
function seqs(connection, count, ms = 15_000) {
  return new Promise((done, fail) => {
    const seen = [];
    const timer = setTimeout(() => fail(new Error(`only ${seen.join(",")} in time`)), ms);
    const stop = connection.on((event) => {
      if (event.type !== "message") return;
      seen.push(event.message.seq);
      if (seen.length === count) {
        clearTimeout(timer);
        stop();
        done(seen);
      }
    });
  });
}

/**
 * What the running test opened (connections, relays), closed after it whether it passed or not:
 * a failed assertion must not leave a socket reconnecting forever, which would keep the run alive.
 */
const opened = [];

afterEach(() => {
  for (const thing of opened.splice(0)) thing.close();
});

/** `connectEndpoint` with the `ws` package's WebSocket, closed after the test. */
async function open(target, options = {}) {
  const connection = await connectEndpoint(target, { WebSocket, ...options });
  opened.push(connection);
  return connection;
}

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
 * A TCP relay in front of the server whose line a test can cut: while cut it drops the
 * connections it carries and refuses new ones, so one client loses its socket and cannot come
 * back while the others stay connected.
 */
async function relay() {
  const carried = new Set();
  let up = true;
  const listener = createServer((inbound) => {
    if (!up) return inbound.destroy();
    const outbound = connect(port, "127.0.0.1");
    for (const [socket, peer] of [[inbound, outbound], [outbound, inbound]]) {
      carried.add(socket);
      // An error closes the socket; its close ends the other side too.
      socket.on("error", () => {});
      socket.on("close", () => {
        carried.delete(socket);
        peer.destroy();
      });
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise((done) => listener.listen(0, "127.0.0.1", done));
  const cut = () => {
    up = false;
    for (const socket of carried) socket.destroy();
  };
  const line = {
    url: (endpoint) => `ws://127.0.0.1:${listener.address().port}/ws/endpoint/${endpoint.code}/`,
    cut,
    restore: () => (up = true),
    close: () => {
      cut();
      listener.close();
    },
  };
  opened.push(line);
  return line;
}

before(async () => {
  port = await freePort();
  await startServer();
});

after(async () => {
  await stopServer();
});

test("every REST call works and errors carry their codes", async () => {
  const client = newClient("rest");
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
  await client.deleteEndpoint("lobby", endpoint.code);

  const failure = (promise) => promise.then(() => assert.fail("expected an error"), (err) => err);
  const conflict = await failure(client.createRoom({ name: "lobby" }));
  assert.ok(conflict instanceof CommsError);
  assert.deepEqual([conflict.status, conflict.code], [409, "conflict"]);
  assert.equal((await failure(client.createRoom({ name: "no spaces" }))).code, "invalid");
  assert.equal((await failure(client.getRoom("a b/c"))).code, "invalid");
  await client.deleteRoom("lobby");
  assert.equal((await failure(client.getRoom("lobby"))).code, "not_found");
  const stranger = new CommsClient(`http://127.0.0.1:${port}`, "ck_not_a_key");
  assert.deepEqual([(await failure(stranger.listRooms())).status, (await failure(stranger.listRooms())).code], [403, "forbidden"]);
});

test("connections fan out and a reader cannot send", async () => {
  const client = newClient("chat");
  await client.createRoom({ name: "lobby" });
  const writer = await client.createEndpoint("lobby", { permission: "read_and_write", meta: { name: "Ann" } });
  const reader = await client.createEndpoint("lobby", { permission: "read" });
  const ann = await open(writer.ws_url);
  const watcher = await open(reader.code, { baseUrl: `http://127.0.0.1:${port}` });
  const welcomes = await Promise.all([nextEvent(ann), nextEvent(watcher)]);
  assert.deepEqual(welcomes.map((e) => e.type), ["welcome", "welcome"]);
  assert.equal(welcomes[0].welcome.endpoint.permission, "read_and_write");

  const seen = Promise.all([ann, watcher].map((c) => nextEvent(c, (e) => e.type === "message")));
  ann.send({ text: "hi" });
  for (const { message } of await seen) {
    assert.deepEqual([message.seq, message.message, message.sender.id], [1, { text: "hi" }, writer.id]);
    assert.equal(message.sender.meta.name, "Ann");
  }
  const refused = nextEvent(watcher, (e) => e.type === "error");
  watcher.send("may I?");
  assert.equal((await refused).code, "read_only");

  const closed = nextEvent(watcher, (e) => e.type === "closed");
  await client.deleteEndpoint("lobby", reader.code);
  assert.equal((await closed).code, 4001);
  assert.throws(() => watcher.send("x"), NotConnectedError);
  await assert.rejects(connectEndpoint(reader.ws_url, { WebSocket }));
  ann.close();
});

test("a server restart is survived by resuming from history", async () => {
  const client = newClient("resume");
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
  await stopServer();
  assert.match((await reconnecting).reason, /1001|1006/);
  await startServer();
  for (let n = 11; n <= 18; n++) await client.publishMessage("lobby", { message: n });
  assert.deepEqual(await rest, [11, 12, 13, 14, 15, 16, 17, 18], "every seq once, in order");
  connection.close();
});

test("a presence room lists its members and tells of joins and leaves", async () => {
  const client = newClient("presence");
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
  const client = newClient("presence-reconnect");
  await client.createRoom({ name: "lobby", presence: true });
  const [ann, bob, carol] = [
    await named(client, "lobby", "Ann"),
    await named(client, "lobby", "Bob"),
    await named(client, "lobby", "Carol"),
  ];
  const line = await relay();
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
  const client = newClient("signals");
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
  annChat.send("done typing");
  for (const event of await messages) assert.deepEqual([event.type, event.message?.message], ["message", "done typing"]);

  const refused = nextEvent(watcher);
  watcher.sendSignal({ typing: true });
  assert.deepEqual([(await refused).type, (await refused).code], ["error", "read_only"]);

  for (const chat of chats) chat.close();
  assert.throws(() => annChat.sendSignal({ typing: false }), NotConnectedError);
});
