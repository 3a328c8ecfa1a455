// `connectEndpoint`: a WebSocket joined through one endpoint, reporting typed
// events, that reconnects by itself and resumes where it stopped.
//
// After a drop it waits with exponential backoff and jitter, reconnects with
// `?after_seq=` the last seq it delivered and skips anything at or below it,
// so across reconnects every message is delivered once, in order. It stops
// for good when the endpoint, its room or its app is gone or the endpoint
// expired (close codes 4001-4004), when a quota or the endpoint's
// `max_connections` refused the socket (4029: retrying at once would be
// refused again), when `close()` is called, or after `maxAttempts` failed
// attempts. Works in browsers and in Node (pass `WebSocket` from the `ws`
// package on Node 20, which has no global one).
//
// In a presence room it keeps the member list (`members`): each welcome
// replaces it whole, which is what makes it right again after a reconnect,
// and each join and leave changes it before its event is emitted. The same
// way it keeps the endpoint as it is now (`endpoint`), from each welcome and
// each `endpoint` event.

import type { Member, Message, Permission, Sender } from "./generated.js";

/**
 * Close codes after which reconnecting cannot help: a normal close, endpoint deleted (4001),
 * room deleted (4002), app stopped (4003), endpoint expired (4004), a socket quota or the
 * endpoint's `max_connections` full (4029).
 */
const FINAL_CLOSE_CODES = new Set([1000, 4001, 4002, 4003, 4004, 4029]);

/** How reconnecting waits between attempts. */
export interface ReconnectOptions {
  /** Wait before the first retry, doubled after each failed attempt (default 250 ms). */
  initialDelayMs?: number;
  /** Longest wait between attempts (default 10 s). */
  maxDelayMs?: number;
  /** Give up after this many failed attempts in a row (default: never). */
  maxAttempts?: number;
}

/** What `connectEndpoint` accepts besides the target. */
export interface ConnectOptions {
  /** The server (`http(s)://…`) when the target is a code or a path and there is no page to take it from. */
  baseUrl?: string;
  /** Start after this seq: the retained messages after it come first. */
  afterSeq?: number;
  /** Backoff settings. */
  reconnect?: ReconnectOptions;
  /** A WebSocket class, when there is no global one (Node 20: `import { WebSocket } from "ws"`). */
  WebSocket?: typeof WebSocket;
}

/** The endpoint a connection joined with, as the welcome shows it and as an `endpoint` event shows it again. */
export interface WelcomeEndpoint {
  /** Public id: the `sender.id` of what this connection sends. */
  id: string;
  /** Whether this connection may send (`read_and_write`), and redact too (`moderate`). */
  permission: Permission;
  /** Stamped on every message this connection sends. */
  meta: Record<string, unknown>;
  /** When the code stops working (RFC 3339; then the connection closes with 4004); `null` when it never does. */
  expires_at: string | null;
}

/** The first frame of every connection (again after each reconnect). */
export interface Welcome {
  /** The room joined. */
  room: string;
  /** The endpoint joined with. */
  endpoint: WelcomeEndpoint;
  /** The newest seq in the room. */
  last_seq: number;
  /** The oldest seq still retained. */
  first_seq: number;
  /** In a presence room: its members, this endpoint included, in the order they joined. */
  members?: Member[];
}

/** What a connection reports. */
export type ConnectionEvent =
  | { type: "welcome"; welcome: Welcome }
  | { type: "message"; message: Message }
  /** Presence rooms: an endpoint's first connection opened (other endpoints only; this one is in the welcome). */
  | { type: "join"; member: Member }
  /** Presence rooms: an endpoint's last connection closed and none came back within the grace period. */
  | { type: "leave"; member: Member }
  /** Another connection's ephemeral signal: no seq, never stored or replayed, never sent back to its sender. */
  | { type: "signal"; sender: Sender; signal: unknown }
  /** The app changed this connection's endpoint (permission, meta or expiry); it applies from now on. */
  | { type: "endpoint"; endpoint: WelcomeEndpoint }
  /** A message of the room was redacted (history keeps it with `redacted_at` and a `null` payload); hide it. */
  | { type: "redaction"; seq: number; id: string }
  | { type: "error"; code: string; message: string }
  | { type: "reconnecting"; attempt: number; delayMs: number; reason: string }
  | { type: "closed"; code: number | null; reason: string };

/** Thrown by `send`, `sendSignal` and `redact` while the connection is not open; nothing was sent. */
export class NotConnectedError extends Error {
  constructor() {
    super("not connected");
    this.name = "NotConnectedError";
  }
}

/** The `ws(s)://…/ws/endpoint/{code}/` address of a target, without a query. */
export function endpointUrl(target: string, baseUrl?: string): string {
  const bare = target.split("?")[0];
  if (/^wss?:\/\//.test(bare)) return bare;
  const path = bare.startsWith("/") ? bare : `/ws/endpoint/${encodeURIComponent(bare)}/`;
  const base = baseUrl ?? (typeof location === "undefined" ? undefined : location.origin);
  if (base === undefined) throw new TypeError("a code or a path needs options.baseUrl outside a browser");
  // http → ws and https → wss: the page's protocol decides.
  return base.replace(/\/+$/, "").replace(/^http/, "ws") + path;
}

/** A live connection through one endpoint. */
export class EndpointConnection {
  readonly #url: string;
  readonly #reconnect: Required<Omit<ReconnectOptions, "maxAttempts">> & { maxAttempts?: number };
  readonly #WebSocket: typeof WebSocket;
  readonly #listeners = new Set<(event: ConnectionEvent) => void>();
  /** Events that came while nobody listened (the welcome, typically), for the first listener. */
  #unheard: ConnectionEvent[] = [];
  #socket: WebSocket | null = null;
  #lastSeq: number | undefined;
  /** Replaced, never changed in place, so a list handed out stays as it was. */
  #members: readonly Member[] | null = null;
  #endpoint: WelcomeEndpoint | null = null;
  #attempt = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #ended = false;

  /** Use `connectEndpoint`. */
  constructor(url: string, options: ConnectOptions) {
    const Socket = options.WebSocket ?? globalThis.WebSocket;
    if (Socket === undefined) throw new TypeError("no WebSocket here: pass options.WebSocket (the ws package)");
    this.#url = url;
    this.#WebSocket = Socket;
    this.#lastSeq = options.afterSeq;
    this.#reconnect = {
      initialDelayMs: options.reconnect?.initialDelayMs ?? 250,
      maxDelayMs: options.reconnect?.maxDelayMs ?? 10_000,
      maxAttempts: options.reconnect?.maxAttempts,
    };
  }

  /** The last seq delivered; a reconnect resumes after it. */
  get lastSeq(): number | undefined {
    return this.#lastSeq;
  }

  /**
   * The members of a presence room, in the order they joined, this endpoint included; `null`
   * before the first welcome and in a room without presence. While reconnecting it is the last
   * list known; the next welcome replaces it whole, so members who left or joined meanwhile are
   * right again, though no `join` or `leave` event is made up for them. A member's `connections`
   * is as of its welcome or join: the server announces only an endpoint's first connection and
   * its leaving. Each change makes a new array, so a list once read never changes.
   */
  get members(): readonly Member[] | null {
    return this.#members;
  }

  /**
   * This connection's endpoint: from the last welcome, or the last `endpoint` event after it (set
   * before the event is emitted); `null` before the first welcome.
   */
  get endpoint(): WelcomeEndpoint | null {
    return this.#endpoint;
  }

  /**
   * Calls `listener` with every event; returns a function that stops it. Events that came
   * while no listener was attached (such as the welcome right after connecting) go to the
   * first listener attached, so none is missed.
   */
  on(listener: (event: ConnectionEvent) => void): () => void {
    this.#listeners.add(listener);
    const unheard = this.#unheard;
    this.#unheard = [];
    // After `on` returns, so the listener may already hold its stop function; before any
    // later socket event, which comes in a later task.
    // Whatever the listener leaves when it stops waits for the next one.
    if (unheard.length > 0) {
      queueMicrotask(() => {
        while (unheard.length > 0 && this.#listeners.has(listener)) listener(unheard.shift()!);
        this.#unheard = [...unheard, ...this.#unheard];
      });
    }
    return () => this.#listeners.delete(listener);
  }

  /** The events (those nobody heard yet first), ending after `closed`. */
  async *events(): AsyncGenerator<ConnectionEvent> {
    const queue: ConnectionEvent[] = [];
    let wake: (() => void) | undefined;
    const stop = this.on((event) => {
      queue.push(event);
      wake?.();
    });
    try {
      for (;;) {
        const event = queue.shift();
        if (event === undefined) {
          await new Promise<void>((resolve) => (wake = resolve));
          continue;
        }
        yield event;
        if (event.type === "closed") return;
      }
    } finally {
      stop();
    }
  }

  /**
   * Sends `payload` as a message; it comes back as a `message` event with the server's seq,
   * time and this endpoint's meta. A read-only endpoint gets an `error` event (`read_only`).
   * @throws {NotConnectedError} while reconnecting or after the end.
   */
  send(payload: unknown): void {
    if (this.#socket === null || this.#socket.readyState !== 1) throw new NotConnectedError();
    this.#socket.send(JSON.stringify({ message: payload }));
  }

  /**
   * Sends `payload` as a signal ("typing…", a cursor): every other connection of the room gets a
   * `signal` event, this one does not; it is never stored or replayed. Like `send`, at most once:
   * while reconnecting it throws and nothing is kept for later, as a signal only matters now. A
   * read-only endpoint, a payload over 1 KiB or too many signals in a second get an `error` event.
   * @throws {NotConnectedError} while reconnecting or after the end.
   */
  sendSignal(payload: unknown): void {
    if (this.#socket === null || this.#socket.readyState !== 1) throw new NotConnectedError();
    this.#socket.send(JSON.stringify({ signal: payload }));
  }

  /**
   * Redacts the message with seq `seq`, as a moderator: every connection of the room gets a
   * `redaction` event, and history keeps the message without its payload. Sent at most once, like
   * `send`. Unless this endpoint's permission is `moderate` an `error` event (`forbidden`) follows;
   * for a seq not retained, `not_found`.
   * @throws {NotConnectedError} while reconnecting or after the end.
   */
  redact(seq: number): void {
    if (this.#socket === null || this.#socket.readyState !== 1) throw new NotConnectedError();
    this.#socket.send(JSON.stringify({ redact: seq }));
  }

  /** Closes the socket and stops reconnecting; a `closed` event follows. */
  close(): void {
    if (this.#ended) return;
    clearTimeout(this.#timer);
    const socket = this.#socket;
    this.#finish(null, "closed by the client");
    socket?.close(1000);
  }

  /** Opens a socket; resolves when it is open, rejects if it fails first. */
  open(): Promise<void> {
    const url = this.#lastSeq === undefined ? this.#url : `${this.#url}?after_seq=${this.#lastSeq}`;
    const socket = new this.#WebSocket(url);
    this.#socket = socket;
    return new Promise((resolve, reject) => {
      let opened = false;
      socket.onopen = () => {
        opened = true;
        this.#attempt = 0;
        resolve();
      };
      socket.onmessage = (event) => this.#frame(String(event.data));
      socket.onerror = () => {
        // A close event follows; it decides what happens.
      };
      socket.onclose = (event) => {
        if (this.#socket !== socket || this.#ended) return;
        this.#socket = null;
        if (FINAL_CLOSE_CODES.has(event.code)) {
          this.#finish(event.code, event.reason || "closed by the server");
        } else if (!opened && this.#attempt === 0) {
          this.#ended = true;
          reject(new Error(`could not connect to ${this.#url} (close code ${event.code})`));
        } else {
          this.#retry(`closed with ${event.code}${event.reason ? `: ${event.reason}` : ""}`);
        }
      };
    });
  }

  #frame(text: string): void {
    let frame: { type?: string } & Record<string, unknown>;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (frame.type === "welcome") {
      const welcome = frame as unknown as Welcome;
      // The welcome leaves `expires_at` out for an endpoint without one.
      welcome.endpoint = { ...welcome.endpoint, expires_at: welcome.endpoint.expires_at ?? null };
      this.#members = Array.isArray(welcome.members) ? welcome.members : null;
      this.#endpoint = welcome.endpoint;
      this.#emit({ type: "welcome", welcome });
    } else if (frame.type === "endpoint") {
      const endpoint = frame.endpoint as WelcomeEndpoint | undefined;
      if (typeof endpoint?.id !== "string") return;
      this.#endpoint = endpoint;
      this.#emit({ type: "endpoint", endpoint });
    } else if (frame.type === "redaction") {
      if (typeof frame.seq !== "number" || typeof frame.id !== "string") return;
      this.#emit({ type: "redaction", seq: frame.seq, id: frame.id });
    } else if (frame.type === "join" || frame.type === "leave") {
      const member = frame.member as Member | undefined;
      if (typeof member?.id !== "string") return;
      const members = this.#members;
      if (members !== null) {
        const at = members.findIndex((known) => known.id === member.id);
        if (frame.type === "leave") this.#members = members.filter((known) => known.id !== member.id);
        else if (at === -1) this.#members = [...members, member];
        // The server sends one join per endpoint; should one come twice, the newer entry
        // replaces the older in its place.
        else this.#members = members.map((known, i) => (i === at ? member : known));
      }
      this.#emit({ type: frame.type, member });
    } else if (frame.type === "signal") {
      const sender = frame.sender as Sender | undefined;
      if (typeof sender?.id !== "string") return;
      this.#emit({ type: "signal", sender, signal: frame.signal });
    } else if (frame.type === "message") {
      const message = frame as unknown as Message & { type: string };
      if (this.#lastSeq !== undefined && message.seq <= this.#lastSeq) return;
      this.#lastSeq = message.seq;
      const { type: _type, ...rest } = message;
      this.#emit({ type: "message", message: rest });
    } else if (frame.type === "error") {
      this.#emit({ type: "error", code: String(frame.code), message: String(frame.message) });
    }
  }

  #retry(reason: string): void {
    this.#attempt += 1;
    const { initialDelayMs, maxDelayMs, maxAttempts } = this.#reconnect;
    if (maxAttempts !== undefined && this.#attempt > maxAttempts) {
      this.#finish(null, `gave up after ${this.#attempt - 1} attempts: ${reason}`);
      return;
    }
    const full = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(this.#attempt - 1, 16));
    const delayMs = Math.round(full / 2 + (Math.random() * full) / 2);
    this.#emit({ type: "reconnecting", attempt: this.#attempt, delayMs, reason });
    this.#timer = setTimeout(() => {
      this.open().catch(() => {
        // Later attempts report through their close events.
      });
    }, delayMs);
  }

  #finish(code: number | null, reason: string): void {
    this.#ended = true;
    this.#socket = null;
    this.#emit({ type: "closed", code, reason });
  }

  #emit(event: ConnectionEvent): void {
    if (this.#listeners.size === 0) this.#unheard.push(event);
    for (const listener of [...this.#listeners]) listener(event);
  }
}

/**
 * Connects through an endpoint: `urlOrCode` is its `ws_url`, a path (`/ws/endpoint/{code}/`,
 * `ws` or `wss` picked from the page's protocol), or its code (with `options.baseUrl`
 * outside a browser). Resolves once the socket is open.
 */
export async function connectEndpoint(urlOrCode: string, options: ConnectOptions = {}): Promise<EndpointConnection> {
  const afterSeq = options.afterSeq ?? Number(new URL(urlOrCode, "ws://x").searchParams.get("after_seq") ?? NaN);
  const connection = new EndpointConnection(endpointUrl(urlOrCode, options.baseUrl), {
    ...options,
    afterSeq: Number.isFinite(afterSeq) ? afterSeq : undefined,
  });
  await connection.open();
  return connection;
}
