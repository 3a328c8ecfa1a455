// `connectEndpoint`: a WebSocket joined through one endpoint, reporting typed
// events, that reconnects by itself, resumes where it stopped, and sends
// messages that are acknowledged and never published twice.
//
// After a drop it waits with exponential backoff and jitter, reconnects with
// `?after_seq=` the last seq it delivered and skips anything at or below it,
// so across reconnects every message is delivered once, in order. It stops
// for good (state `closed`) when the endpoint, its room or its app is gone or
// the endpoint expired (close codes 4001-4004), when a quota or the
// endpoint's `max_connections` refused the socket (4029: retrying at once
// would be refused again), when the server refuses the upgrade with 404 (the
// code is unknown, deleted, expired or used), on a normal close (1000), when
// `close()` is called, or after `maxAttempts` failed attempts. Works in
// browsers and in Node (pass `WebSocket` from the `ws` package on Node 20,
// which has no global one).
//
// A socket that closes before it opened tells nothing in a browser (always
// 1006), so the same address is then asked over HTTP: the server answers a
// code it does not know with 404 and a good one with 400 (no upgrade).
//
// Each `send` carries a fresh nonce and stays pending until its `ack` or its
// error frame. Pending sends are written again, in order and with the same
// nonce, after every welcome: the server answers a nonce it has seen with the
// first publish's ack, so what was written before a drop is published once.
//
// In a presence room it keeps the member list (`members`): each welcome
// replaces it whole, which is what makes it right again after a reconnect,
// and each join and leave changes it before its event is emitted. The same
// way it keeps the endpoint as it is now (`endpoint`), from each welcome and
// each `endpoint` event.

import { errorOf, idempotencyKey, networkError } from "./client.js";
import type { CommsError } from "./client.js";
import type { ErrorCode, Member, Message, Permission, Sender } from "./generated.js";

/**
 * Close codes after which reconnecting cannot help: a normal close, endpoint deleted (4001),
 * room deleted (4002), app stopped (4003), endpoint expired (4004), a socket quota or the
 * endpoint's `max_connections` full (4029).
 */
const FINAL_CLOSE_CODES = new Set([1000, 4001, 4002, 4003, 4004, 4029]);
/** The close code of a frame over the server's size limit. */
const TOO_BIG = 1009;
/** How long the HTTP question after a refused socket may take before it counts as failed. */
const PROBE_TIMEOUT_MS = 5_000;

/**
 * The part of a WebSocket the connection uses: both the browser's `WebSocket` and the `ws`
 * package's have it. The handlers take `any` because the two libraries' event types differ and a
 * handler property only accepts handlers of an event type at least as wide as its own.
 */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: any) => void) | null;
  /** `event.data` is the frame's text (a `Buffer` of it with some `ws` versions). */
  onmessage: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
  /** `event.code` and `event.reason` are the close frame's. */
  onclose: ((event: any) => void) | null;
}

/** A WebSocket class: the global `WebSocket` of browsers and Node 22, or the `ws` package's. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** Where a connection is: see `EndpointConnection.state`. */
export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

/** What an acknowledged send resolves with: the message's id and seq, as history shows them. */
export interface SendReceipt {
  id: string;
  seq: number;
}

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
  /** Sends waiting for their ack or queued, at most (default 1000); `send` refuses more with `QueueFullError`. */
  maxPendingSends?: number;
  /** A WebSocket class, when there is no global one (Node 20: `import { WebSocket } from "ws"`). */
  WebSocket?: WebSocketConstructor;
}

/** The endpoint a connection joined with, as the welcome shows it and as an `endpoint` event shows it again. */
export interface WelcomeEndpoint<TMeta extends Record<string, unknown> = Record<string, unknown>> {
  /** Public id: the `sender.id` of what this connection sends. */
  id: string;
  /** Whether this connection may send (`read_and_write`), and redact too (`moderate`). */
  permission: Permission;
  /** Stamped on every message this connection sends. */
  meta: TMeta;
  /** When the code stops working (RFC 3339; then the connection closes with 4004); `null` when it never does. */
  expires_at: string | null;
}

/** A member of a presence room, with the room's meta type. */
export type RoomMember<TMeta extends Record<string, unknown> = Record<string, unknown>> = Omit<Member, "meta"> & {
  meta: TMeta;
};

/** The first frame of every connection (again after each reconnect). */
export interface Welcome<TMeta extends Record<string, unknown> = Record<string, unknown>> {
  type: "welcome";
  /** The room joined. */
  room: string;
  /** The endpoint joined with. */
  endpoint: WelcomeEndpoint<TMeta>;
  /** The newest seq in the room. */
  last_seq: number;
  /**
   * The oldest seq still retained. Seqs are strictly increasing per room and never reused;
   * consecutive in normal operation and across clean restarts; after a node crashes they may skip
   * ahead. A client has missed messages only when `first_seq` is greater than its `after_seq + 1`.
   */
  first_seq: number;
  /** In a presence room: its members, this endpoint included, in the order they joined. */
  members?: RoomMember<TMeta>[];
}

/** A message as a connection delivers it, with the payload and the sender's meta typed. */
export interface ReceivedMessage<TMessage = unknown, TMeta extends Record<string, unknown> = Record<string, unknown>>
  extends Omit<Message, "message" | "sender"> {
  /** The payload exactly as the sender gave it; `null` once redacted (a message resumed or listed after it). */
  message: TMessage | null;
  /** Who sent it, stamped by the server: an endpoint's public id and meta, or `"app"`. */
  sender: Omit<Sender, "meta"> & { meta: TMeta };
}

/** What a connection reports. */
export type ConnectionEvent<TMessage = unknown, TMeta extends Record<string, unknown> = Record<string, unknown>> =
  /** The state changed; emitted before the welcome, reconnecting or closed event it comes with. */
  | { type: "state"; state: ConnectionState }
  | { type: "welcome"; welcome: Welcome<TMeta> }
  | { type: "message"; message: ReceivedMessage<TMessage, TMeta> }
  /** Presence rooms: an endpoint's first connection opened (other endpoints only; this one is in the welcome). */
  | { type: "join"; member: RoomMember<TMeta> }
  /** Presence rooms: an endpoint's last connection closed and none came back within the grace period. */
  | { type: "leave"; member: RoomMember<TMeta> }
  /** Another connection's ephemeral signal: no seq, never stored or replayed, never sent back to its sender. */
  | { type: "signal"; sender: Omit<Sender, "meta"> & { meta: TMeta }; signal: unknown }
  /** The app changed this connection's endpoint (permission, meta or expiry); it applies from now on. */
  | { type: "endpoint"; endpoint: WelcomeEndpoint<TMeta> }
  /** A message of the room was redacted (history keeps it with `redacted_at` and a `null` payload); hide it. */
  | { type: "redaction"; seq: number; id: string }
  /** The server refused something; with `nonce`, the send of that nonce (whose promise rejects too). */
  | { type: "error"; code: ErrorCode; message: string; nonce?: string }
  | { type: "reconnecting"; attempt: number; delayMs: number; reason: string }
  | { type: "closed"; code: number | null; reason: string };

/** Thrown by `sendSignal` and `redact` unless the connection is open; nothing was sent. */
export class NotConnectedError extends Error {
  constructor() {
    super("not connected");
    this.name = "NotConnectedError";
  }
}

/** A send the server refused: nothing was published. */
export class SendError extends Error {
  /** Why, e.g. `read_only`, `budget_exhausted`, `too_large`, `rate_limited`. */
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = "SendError";
    this.code = code;
  }
}

/** A send refused at once because `maxPendingSends` sends are already pending; nothing was kept. */
export class QueueFullError extends Error {
  constructor(limit: number) {
    super(`${limit} sends are pending already (maxPendingSends)`);
    this.name = "QueueFullError";
  }
}

/**
 * The connection is closed for good (or closed before it was open). A send rejected with it may or
 * may not have been published: it was written, or queued, and no ack came before the end. History
 * (`listMessages`) tells.
 */
export class ConnectionClosedError extends Error {
  /** The close code, as the `closed` event has it. */
  readonly code: number | null;
  /** Why, as the `closed` event has it. */
  readonly reason: string;

  constructor(code: number | null, reason: string) {
    super(`connection closed: ${reason}`);
    this.name = "ConnectionClosedError";
    this.code = code;
    this.reason = reason;
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

/** A send waiting for its ack: its frame as first written, to write again unchanged. */
interface PendingSend {
  frame: string;
  resolve: (receipt: SendReceipt) => void;
  reject: (err: Error) => void;
}

/** A live connection through one endpoint. */
export class EndpointConnection<TMessage = unknown, TMeta extends Record<string, unknown> = Record<string, unknown>> {
  readonly #url: string;
  readonly #reconnect: Required<Omit<ReconnectOptions, "maxAttempts">> & { maxAttempts?: number };
  readonly #maxPendingSends: number;
  readonly #WebSocket: WebSocketConstructor;
  readonly #listeners = new Set<(event: ConnectionEvent<TMessage, TMeta>) => void>();
  /** Events that came while nobody listened (the welcome, typically), for the first listener. */
  #unheard: ConnectionEvent<TMessage, TMeta>[] = [];
  #socket: WebSocketLike | null = null;
  #state: ConnectionState = "connecting";
  /** Why it closed, once `closed`. */
  #closed: ConnectionClosedError | null = null;
  /** `ready()` calls waiting for `open`. */
  #waiting: { resolve: () => void; reject: (err: Error) => void }[] = [];
  /**
   * Sends not yet acknowledged, by nonce, in the order they were made. While `open` all of them
   * were written on the current socket, in this order, so the server answers them in this order.
   */
  readonly #pending = new Map<string, PendingSend>();
  /** The socket on which the server refused a frame as too large, and will close with 1009. */
  #oversizedOn: WebSocketLike | null = null;
  #lastSeq: number | undefined;
  /** Replaced, never changed in place, so a list handed out stays as it was. */
  #members: readonly RoomMember<TMeta>[] | null = null;
  #endpoint: WelcomeEndpoint<TMeta> | null = null;
  #attempt = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** Use `connectEndpoint`. */
  constructor(url: string, options: ConnectOptions) {
    const Socket = options.WebSocket ?? (globalThis.WebSocket as WebSocketConstructor | undefined);
    if (Socket === undefined) throw new TypeError("no WebSocket here: pass options.WebSocket (the ws package)");
    this.#url = url;
    this.#WebSocket = Socket;
    this.#lastSeq = options.afterSeq;
    this.#maxPendingSends = options.maxPendingSends ?? 1000;
    this.#reconnect = {
      initialDelayMs: options.reconnect?.initialDelayMs ?? 250,
      maxDelayMs: options.reconnect?.maxDelayMs ?? 10_000,
      maxAttempts: options.reconnect?.maxAttempts,
    };
  }

  /**
   * `connecting` until the first welcome; `open` from each welcome on (joined: sends are written
   * at once); `reconnecting` from a drop until the next welcome (sends are queued); `closed` for
   * good. Each change is a `state` event.
   */
  get state(): ConnectionState {
    return this.#state;
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
  get members(): readonly RoomMember<TMeta>[] | null {
    return this.#members;
  }

  /**
   * This connection's endpoint: from the last welcome, or the last `endpoint` event after it (set
   * before the event is emitted); `null` before the first welcome.
   */
  get endpoint(): WelcomeEndpoint<TMeta> | null {
    return this.#endpoint;
  }

  /**
   * Resolves when the connection is `open` (at once if it is); rejects with
   * `ConnectionClosedError` if it is or becomes `closed` first.
   */
  ready(): Promise<void> {
    if (this.#state === "open") return Promise.resolve();
    if (this.#closed !== null) return Promise.reject(this.#closed);
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }

  /**
   * Calls `listener` with every event; returns a function that stops it. Events that came
   * while no listener was attached (such as the welcome right after connecting) go to the
   * first listener attached, so none is missed.
   */
  on(listener: (event: ConnectionEvent<TMessage, TMeta>) => void): () => void {
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
  async *events(): AsyncGenerator<ConnectionEvent<TMessage, TMeta>> {
    const queue: ConnectionEvent<TMessage, TMeta>[] = [];
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
   * Sends `payload` as a message. It comes back as a `message` event with the server's seq, time
   * and this endpoint's meta, and the promise resolves with its id and seq once the server
   * acknowledged it. While `connecting` or `reconnecting` it is queued, and after every welcome
   * each send not yet acknowledged is written again with the same nonce, in order: the server
   * publishes a nonce once, so a send is published once across drops. The server remembers a
   * nonce for `limits.nonce_window_secs` (120 s by default): a send pending longer than that may
   * be published twice when written again.
   *
   * Rejects with `SendError` when the server refused it (e.g. `read_only`, `too_large`), with
   * `QueueFullError` at once when `maxPendingSends` sends are pending already (nothing kept), and
   * with `ConnectionClosedError` when the connection is or becomes `closed` first; the message may
   * then have been published or not.
   */
  async send(payload: TMessage): Promise<SendReceipt> {
    if (this.#closed !== null) throw this.#closed;
    if (this.#pending.size >= this.#maxPendingSends) throw new QueueFullError(this.#maxPendingSends);
    if (JSON.stringify(payload) === undefined) throw new TypeError("a message is a JSON value");
    const nonce = idempotencyKey();
    // Serialized now: the frame written again after a drop is the one first written, even if
    // the payload object changed meanwhile.
    const frame = JSON.stringify({ message: payload, nonce });
    return new Promise((resolve, reject) => {
      this.#pending.set(nonce, { frame, resolve, reject });
      if (this.#state === "open") this.#socket?.send(frame);
    });
  }

  /**
   * Sends `payload` as a signal ("typing…", a cursor): every other connection of the room gets a
   * `signal` event, this one does not; it is never stored or replayed. At most once: unless the
   * connection is `open` it throws and nothing is kept for later, as a signal only matters now. A
   * read-only endpoint, a payload over 1 KiB or too many signals in a second get an `error` event.
   * @throws {NotConnectedError} unless the connection is open.
   */
  sendSignal(payload: unknown): void {
    this.#write(JSON.stringify({ signal: payload }));
  }

  /**
   * Redacts the message with seq `seq`, as a moderator: every connection of the room gets a
   * `redaction` event, and history keeps the message without its payload. Sent at most once, like
   * `sendSignal`. Unless this endpoint's permission is `moderate` an `error` event (`forbidden`)
   * follows; for a seq not retained, `not_found`.
   * @throws {NotConnectedError} unless the connection is open.
   */
  redact(seq: number): void {
    this.#write(JSON.stringify({ redact: seq }));
  }

  /**
   * Closes the socket and stops reconnecting; a `closed` event follows, and pending sends reject
   * with `ConnectionClosedError`.
   */
  close(): void {
    if (this.#closed !== null) return;
    clearTimeout(this.#timer);
    const socket = this.#socket;
    this.#finish(null, "closed by the client");
    socket?.close(1000);
  }

  /**
   * Opens a socket; resolves when it is open. At the first attempt, rejects with a `CommsError`
   * when it closes before opening: `not_found` when the server refused the code, `network` when
   * the server could not be reached.
   * @internal `connectEndpoint` calls it once; reconnects call it again.
   */
  open(): Promise<void> {
    const first = this.#state === "connecting" && this.#attempt === 0;
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
      socket.onmessage = (event) => {
        if (this.#socket === socket) this.#frame(socket, String(event.data));
      };
      socket.onerror = () => {
        // A close event follows; it decides what happens.
      };
      socket.onclose = (event) => {
        if (this.#socket !== socket || this.#closed !== null) return;
        this.#socket = null;
        const code: number = event.code;
        const reason = `closed with ${code}${event.reason ? `: ${event.reason}` : ""}`;
        if (code === TOO_BIG && this.#oversizedOn === socket && this.#state === "open") this.#refuseOversized();
        if (FINAL_CLOSE_CODES.has(code)) this.#finish(code, event.reason || "closed by the server");
        else if (opened) this.#retry(reason);
        else this.#refused(first, reject, reason);
      };
    });
  }

  /**
   * After a socket closed before it opened: asks the address over HTTP why. A 404 ends the
   * connection (at the first attempt, `connectEndpoint` rejects with it); anything else, even a
   * failed probe, is retried like a drop, except at the first attempt, which rejects.
   */
  async #refused(first: boolean, reject: (err: CommsError) => void, reason: string): Promise<void> {
    const refusal = await this.#probe();
    if (this.#closed !== null) return;
    if (first) {
      this.#state = "closed";
      this.#closed = new ConnectionClosedError(refusal.status === 404 ? null : refusal.status, refusal.message);
      reject(refusal);
    } else if (refusal.status === 404) {
      this.#finish(null, `the endpoint no longer exists or cannot be joined (404): ${refusal.message}`);
    } else {
      this.#retry(`${reason} (${refusal.message})`);
    }
  }

  /**
   * The error of a GET to the socket's address over http(s): plain, so a browser sends it without
   * a preflight and the server's CORS headers let it read the answer.
   */
  async #probe(): Promise<CommsError> {
    const url = this.#url.replace(/^ws/, "http");
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
      return errorOf(response, await response.text());
    } catch (err) {
      return networkError(url, err);
    }
  }

  /** Writes an at-most-once frame. */
  #write(frame: string): void {
    if (this.#state !== "open" || this.#socket === null) throw new NotConnectedError();
    this.#socket.send(frame);
  }

  #frame(socket: WebSocketLike, text: string): void {
    let frame: { type?: string } & Record<string, unknown>;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (frame.type === "welcome") {
      const welcome = frame as unknown as Welcome<TMeta>;
      // The welcome leaves `expires_at` out for an endpoint without one.
      welcome.endpoint = { ...welcome.endpoint, expires_at: welcome.endpoint.expires_at ?? null };
      this.#members = Array.isArray(welcome.members) ? welcome.members : null;
      this.#endpoint = welcome.endpoint;
      // Before any listener runs: a send made from a listener goes after these.
      for (const pending of this.#pending.values()) socket.send(pending.frame);
      this.#setState("open");
      for (const waiting of this.#waiting.splice(0)) waiting.resolve();
      this.#emit({ type: "welcome", welcome });
    } else if (frame.type === "ack") {
      const pending = typeof frame.nonce === "string" ? this.#pending.get(frame.nonce) : undefined;
      if (pending === undefined || typeof frame.id !== "string" || typeof frame.seq !== "number") return;
      this.#pending.delete(frame.nonce as string);
      pending.resolve({ id: frame.id, seq: frame.seq });
    } else if (frame.type === "endpoint") {
      const endpoint = frame.endpoint as WelcomeEndpoint<TMeta> | undefined;
      if (typeof endpoint?.id !== "string") return;
      this.#endpoint = endpoint;
      this.#emit({ type: "endpoint", endpoint });
    } else if (frame.type === "redaction") {
      if (typeof frame.seq !== "number" || typeof frame.id !== "string") return;
      this.#emit({ type: "redaction", seq: frame.seq, id: frame.id });
    } else if (frame.type === "join" || frame.type === "leave") {
      const member = frame.member as RoomMember<TMeta> | undefined;
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
      const sender = frame.sender as (Sender & { meta: TMeta }) | undefined;
      if (typeof sender?.id !== "string") return;
      this.#emit({ type: "signal", sender, signal: frame.signal });
    } else if (frame.type === "message") {
      const message = frame as unknown as ReceivedMessage<TMessage, TMeta> & { type: string };
      if (this.#lastSeq !== undefined && message.seq <= this.#lastSeq) return;
      this.#lastSeq = message.seq;
      const { type: _type, ...rest } = message;
      this.#emit({ type: "message", message: rest });
    } else if (frame.type === "error") {
      const code = String(frame.code) as ErrorCode;
      const message = String(frame.message);
      if (typeof frame.nonce !== "string") {
        // An unreadable frame (over the size limit) has no nonce; the server closes with 1009.
        if (code === "too_large") this.#oversizedOn = socket;
        this.#emit({ type: "error", code, message });
        return;
      }
      const pending = this.#pending.get(frame.nonce);
      this.#pending.delete(frame.nonce);
      pending?.reject(new SendError(code, message));
      this.#emit({ type: "error", code, message, nonce: frame.nonce });
    }
  }

  /**
   * Rejects the send the server closed the socket for, as too large to read (and so without its
   * nonce): the first pending one, since the server answers frames in order and every send
   * written before it was answered before the refusal came. Written again, it would be refused
   * again after every reconnect.
   */
  #refuseOversized(): void {
    const first = this.#pending.entries().next();
    if (first.done) return;
    const [nonce, pending] = first.value;
    this.#pending.delete(nonce);
    pending.reject(new SendError("too_large", "the message is over the server's size limit"));
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
    this.#setState("reconnecting");
    this.#emit({ type: "reconnecting", attempt: this.#attempt, delayMs, reason });
    // Only the first attempt's promise can reject; later ones report through their close events.
    this.#timer = setTimeout(() => void this.open(), delayMs);
  }

  #finish(code: number | null, reason: string): void {
    const closed = new ConnectionClosedError(code, reason);
    this.#closed = closed;
    this.#socket = null;
    this.#setState("closed");
    for (const waiting of this.#waiting.splice(0)) waiting.reject(closed);
    for (const pending of this.#pending.values()) pending.reject(closed);
    this.#pending.clear();
    this.#emit({ type: "closed", code, reason });
  }

  #setState(state: ConnectionState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.#emit({ type: "state", state });
  }

  #emit(event: ConnectionEvent<TMessage, TMeta>): void {
    if (this.#listeners.size === 0) this.#unheard.push(event);
    for (const listener of [...this.#listeners]) listener(event);
  }
}

/**
 * Connects through an endpoint: `urlOrCode` is its `ws_url`, a path (`/ws/endpoint/{code}/`,
 * `ws` or `wss` picked from the page's protocol), or its code (with `options.baseUrl`
 * outside a browser). Resolves once the socket is open (the state is `connecting` until the
 * welcome: `ready()` waits for it). `TMessage` is the payload type of the room's messages and
 * `TMeta` the meta type of its endpoints: what this code expects, not checked.
 * @throws {CommsError} `not_found` when the server refuses the code (unknown, deleted, expired or
 * used), `network` when it cannot be reached; another code when it answered otherwise.
 */
export async function connectEndpoint<
  TMessage = unknown,
  TMeta extends Record<string, unknown> = Record<string, unknown>,
>(urlOrCode: string, options: ConnectOptions = {}): Promise<EndpointConnection<TMessage, TMeta>> {
  const afterSeq = options.afterSeq ?? Number(new URL(urlOrCode, "ws://x").searchParams.get("after_seq") ?? NaN);
  const connection = new EndpointConnection<TMessage, TMeta>(endpointUrl(urlOrCode, options.baseUrl), {
    ...options,
    afterSeq: Number.isFinite(afterSeq) ? afterSeq : undefined,
  });
  await connection.open();
  return connection;
}
