// Acknowledged sends on a two-node cluster (PostgreSQL and Redis shared): a
// send published on node A whose ack was lost is written again, with its
// nonce, to node B after a reconnect, and B answers with A's id and seq and
// publishes nothing. PostgreSQL (COMMS_TEST_POSTGRES_URL, by default the
// `test` database of postgres@127.0.0.1) and Redis (COMMS_TEST_REDIS_URL)
// must be running: without them the test is skipped, and under CI=true it
// fails, so a CI that lost a service does not pass silently.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { connect } from "node:net";
import { afterEach, test } from "node:test";
import assert from "node:assert/strict";

import { CommsClient } from "../dist/index.js";
import { closeOpened, CommsServer, nextEvent, open, relay, sleep } from "./support.mjs";

const postgresUrl = process.env.COMMS_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const redisUrl = process.env.COMMS_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

afterEach(closeOpened);

/** Runs `sql` on the admin database with psql. */
function psql(sql) {
  return execFileSync("psql", [postgresUrl, "-v", "ON_ERROR_STOP=1", "-qAtc", sql], { stdio: "pipe", timeout: 10_000 });
}

/** Why the cluster cannot run here, or `null` when PostgreSQL and Redis answer. */
async function missingService() {
  try {
    psql("SELECT 1");
  } catch (err) {
    return `PostgreSQL at ${postgresUrl} does not answer (${String(err.stderr ?? err.message).trim()})`;
  }
  const { hostname, port } = new URL(redisUrl);
  const pong = await new Promise((done) => {
    const socket = connect(Number(port || 6379), hostname);
    const timer = setTimeout(() => end(false), 2000);
    const end = (answer) => {
      clearTimeout(timer);
      socket.destroy();
      done(answer);
    };
    socket.on("error", () => end(false));
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (data) => end(data.toString().startsWith("+PONG")));
  });
  return pong ? null : `Redis at ${redisUrl} does not answer PING`;
}

// A send that never resolves fails the test instead of hanging the run.
test("a duplicate nonce on the other node publishes nothing", { timeout: 60_000 }, async (t) => {
  const missing = await missingService();
  if (missing !== null) {
    assert.ok(process.env.CI !== "true", `the cluster test needs PostgreSQL and Redis: ${missing}`);
    t.skip(`needs PostgreSQL and Redis: ${missing}`);
    return;
  }
  const suffix = randomBytes(8).toString("hex");
  const database = `comms_sdk_js_${suffix}`;
  psql(`CREATE DATABASE ${database}`);
  const databaseUrl = new URL(postgresUrl);
  databaseUrl.pathname = `/${database}`;
  const shared = { DATABASE_URL: databaseUrl.href, REDIS_URL: redisUrl, COMMS_BROKER__KEY_PREFIX: `sdkjs${suffix}` };
  const [a, b] = [new CommsServer(shared), new CommsServer(shared)];
  try {
    await a.start();
    await b.start();
    const apiKey = a.createApp("cluster");
    const [onA, onB] = [new CommsClient(a.url, apiKey), new CommsClient(b.url, apiKey)];
    await onA.createRoom({ name: "lobby" });
    const endpoint = await onA.createEndpoint("lobby", { permission: "read_and_write" });

    let target = a.port;
    const line = await relay(() => target);
    const chat = await open(line.url(endpoint), { reconnect: { initialDelayMs: 100, maxDelayMs: 500 } });
    await chat.ready();
    const before = await chat.send("before");

    // A publishes these, but neither their acks nor their messages come back.
    line.mute();
    const payloads = Array.from({ length: 10 }, (_, n) => `lost ack ${n}`);
    const sends = payloads.map((payload) => chat.send(payload));
    for (let waited = 0; (await onA.listMessages("lobby")).messages.length < payloads.length + 1; waited += 50) {
      assert.ok(waited < 10_000, "A did not publish them in time");
      await sleep(50);
    }
    assert.equal(chat.state, "open", "nothing told the client yet");

    // The connection comes back through B and writes the ten again.
    target = b.port;
    const away = nextEvent(chat, (e) => e.type === "reconnecting");
    line.cut();
    await away;
    line.restore();
    const receipts = await Promise.all(sends);

    const history = (await onB.listMessages("lobby")).messages;
    assert.deepEqual(
      history.map((message) => message.message),
      ["before", ...payloads],
      "each once, on either node",
    );
    assert.deepEqual((await onA.listMessages("lobby")).messages, history);
    assert.deepEqual([before.seq, ...receipts.map((receipt) => receipt.seq)], history.map((message) => message.seq));
    assert.deepEqual(receipts.map((receipt) => receipt.id), history.slice(1).map((message) => message.id));
  } finally {
    closeOpened();
    await Promise.all([a.dispose(), b.dispose()]);
    psql(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  }
});
