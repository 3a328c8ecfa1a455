// What the SDK's tests share: the real `comms` binary run as a server with a
// data folder of its own, a TCP relay a test can cut, mute and point
// elsewhere, and waiting for a connection's events with a timeout.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { WebSocket } from "ws";

import { CommsClient, connectEndpoint } from "../dist/index.js";

/** The server binary: COMMS_BIN, or the debug build of this checkout. */
export const binary = resolve(process.env.COMMS_BIN ?? "../target/debug/comms");

export const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

export async function freePort() {
  return new Promise((done) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => done(port));
    });
  });
}

/**
 * A `comms serve` process on a loopback port with its own data folder, kept across `stop` and
 * `start` so a restart finds its data again. A short presence grace period, so tests wait little
 * for leaves; `env` adds or overrides variables.
 */
export class CommsServer {
  constructor(env = {}) {
    this.dataDir = mkdtempSync(join(tmpdir(), "comms-sdk-js-"));
    this.env = {
      ...process.env,
      COMMS_DATA_DIR: this.dataDir,
      COMMS_DEMO__ENABLED: "false",
      COMMS_PRESENCE__LEAVE_GRACE_MS: "300",
      ...env,
    };
    this.port = undefined;
    this.process = null;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts it (on the port it had, if it ran before) and waits until it answers. */
  async start() {
    this.port ??= await freePort();
    const child = spawn(binary, ["serve", "--addr", `127.0.0.1:${this.port}`], { env: this.env, stdio: "ignore" });
    this.process = child;
    const exited = new Promise((done) => child.once("exit", (code) => done(code)));
    for (let i = 0; i < 150; i++) {
      try {
        if ((await fetch(`${this.url}/healthz`)).ok) return;
      } catch {
        // Not listening yet.
      }
      const code = await Promise.race([exited, sleep(100)]);
      if (code !== undefined) throw new Error(`the server exited with ${code} at its start`);
    }
    throw new Error("the server did not start");
  }

  /** Stops it with `signal` (SIGTERM: a graceful shutdown; SIGKILL: a crash) and waits until it exited. */
  async stop(signal = "SIGTERM") {
    const child = this.process;
    if (child === null) return;
    this.process = null;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((done) => child.once("exit", done));
    child.kill(signal);
    await exited;
  }

  /** Stops it and removes its data folder. */
  async dispose() {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** Creates an app with the CLI and returns its API key. */
  createApp(app) {
    return JSON.parse(execFileSync(binary, ["app", "create", app], { env: this.env }).toString()).api_key;
  }

  /** Creates an app with the CLI and returns a client with its key. */
  newClient(app) {
    return new CommsClient(this.url, this.createApp(app));
  }
}

/**
 * What the running test opened (connections, relays, receivers), closed by `closeOpened` after
 * it whether it passed or not: a failed assertion must not leave a socket reconnecting forever,
 * which would keep the run alive.
 */
const opened = [];

/** Keeps `thing` (anything with `close()`) for `closeOpened`. */
export function track(thing) {
  opened.push(thing);
  return thing;
}

/** For `afterEach`. */
export function closeOpened() {
  for (const thing of opened.splice(0)) thing.close();
}

/** `connectEndpoint` with the `ws` package's WebSocket, closed after the test. */
export async function open(target, options = {}) {
  return track(await connectEndpoint(target, { WebSocket, ...options }));
}

/** Waits for the next event matching `predicate`; by default any but a `state` change. */
export function nextEvent(connection, predicate = (event) => event.type !== "state", ms = 10_000) {
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

/** Collects the next `count` events matching `predicate`. */
export function collect(connection, count, predicate, ms = 10_000) {
  return new Promise((done, fail) => {
    const seen = [];
    const timer = setTimeout(() => fail(new Error(`only ${seen.length} of ${count} events in time`)), ms);
    const stop = connection.on((event) => {
      if (!predicate(event)) return;
      seen.push(event);
      if (seen.length === count) {
        clearTimeout(timer);
        stop();
        done(seen);
      }
    });
  });
}

/** Resolves with the `closed` event; fails if the connection tries to reconnect first. */
export function closedWithoutReconnecting(connection, ms = 15_000) {
  return new Promise((done, fail) => {
    const end = (settle, value) => {
      clearTimeout(timer);
      stop();
      settle(value);
    };
    const timer = setTimeout(() => end(fail, new Error("not closed in time")), ms);
    const stop = connection.on((event) => {
      if (event.type === "reconnecting") end(fail, new Error(`reconnected after ${event.reason}`));
      if (event.type === "closed") end(done, event);
    });
  });
}

/** Collects the seqs of `count` messages. */
export function seqs(connection, count, ms = 15_000) {
  return collect(connection, count, (event) => event.type === "message", ms).then((events) =>
    events.map((event) => event.message.seq),
  );
}

/**
 * A TCP relay to the port `target()` names at each new connection, closed after the test. `cut`
 * drops the connections it carries and refuses new ones until `restore`, so one client loses its
 * socket and cannot come back while the others stay connected; `mute` drops what the server
 * says on the connections it carries (what the client says still arrives) until they are cut.
 */
export async function relay(target) {
  const carried = new Set();
  let up = true;
  let muted = false;
  const listener = createServer((inbound) => {
    if (!up) return inbound.destroy();
    const outbound = connect(target(), "127.0.0.1");
    const link = { inbound, outbound };
    carried.add(link);
    for (const [socket, peer] of [[inbound, outbound], [outbound, inbound]]) {
      // An error closes the socket; its close ends the other side too.
      socket.on("error", () => {});
      socket.on("close", () => {
        carried.delete(link);
        peer.destroy();
      });
    }
    inbound.on("data", (chunk) => outbound.write(chunk));
    outbound.on("data", (chunk) => {
      if (!muted) inbound.write(chunk);
    });
  });
  await new Promise((done) => listener.listen(0, "127.0.0.1", done));
  const cut = () => {
    up = false;
    muted = false;
    for (const { inbound, outbound } of carried) {
      inbound.destroy();
      outbound.destroy();
    }
  };
  return track({
    url: (endpoint) => `ws://127.0.0.1:${listener.address().port}/ws/endpoint/${endpoint.code}/`,
    cut,
    mute: () => (muted = true),
    restore: () => (up = true),
    close: () => {
      cut();
      listener.close();
    },
  });
}
