// The JS SDK against the real server: every REST call, error codes, fan-out,
// read-only refusal, and resuming without loss or repeats across a server
// restart. The server is the `comms` binary (COMMS_BIN, or the debug build),
// started here with its own data folder; Node 20 has no global WebSocket, so
// the tests pass the `ws` package's.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { WebSocket } from "ws";

import { CommsClient, CommsError, connectEndpoint, NotConnectedError } from "../dist/index.js";

const binary = resolve(process.env.COMMS_BIN ?? "../target/debug/comms");
const dataDir = mkdtempSync(join(tmpdir(), "comms-sdk-js-"));
const env = { ...process.env, COMMS_DATA_DIR: dataDir, COMMS_DEMO__ENABLED: "false" };
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
  const ann = await connectEndpoint(writer.ws_url, { WebSocket });
  const watcher = await connectEndpoint(reader.code, { WebSocket, baseUrl: `http://127.0.0.1:${port}` });
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
  const connection = await connectEndpoint(endpoint.ws_url, {
    WebSocket,
    reconnect: { initialDelayMs: 50, maxDelayMs: 200 },
  });
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
