// `verifyWebhook`: checks that a webhook delivery comes from comms and reads its event.
//
// comms signs deliveries the Standard Webhooks way (https://www.standardwebhooks.com):
// `webhook-signature` holds one or more space-separated `v1,<base64>` entries, each an
// HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}` keyed with the bytes of the
// webhook's secret (`whsec_<base64>`); one matching entry is enough, which lets a sender list a
// signature per key while it rotates keys. The check uses WebCrypto's `verify`, which compares
// in constant time, so it runs in Node 20, browsers and workers without dependencies.
//
// The signature is checked first, over the headers and the body exactly as received, and
// everything after it reads authenticated input only: `stale_timestamp` is a genuine delivery
// that is too old or too new (a replay, or a clock far off), never a forgery.

import type { Endpoint, EventType, Member, Message, Room } from "./generated.js";

const SECRET_PREFIX = "whsec_";
const SIGNATURE_PREFIX = "v1,";

/** Why `verifyWebhook` refused a delivery. */
export type WebhookErrorCode =
  /** The secret is not `whsec_` followed by base64, the form `createWebhook` returns it in. */
  | "invalid_secret"
  /** A `webhook-id`, `webhook-timestamp` or `webhook-signature` header is missing. */
  | "missing_header"
  /** No signature entry matches: not signed with this secret, or changed on the way. */
  | "invalid_signature"
  /** Correctly signed, but the timestamp is further from now than the tolerance. */
  | "stale_timestamp"
  /** Correctly signed, but the timestamp is not Unix seconds or the body not an event of comms. */
  | "malformed";

/** A delivery `verifyWebhook` refused; `code` says why. */
export class WebhookError extends Error {
  readonly code: WebhookErrorCode;

  constructor(code: WebhookErrorCode, message: string) {
    super(message);
    this.name = "WebhookError";
    this.code = code;
  }
}

/** An event of the types in `T`, with the `data` they carry. */
interface EventOf<T extends EventType, D> {
  /** What happened. */
  type: T;
  /** When it happened, RFC 3339 UTC with milliseconds; deliveries may arrive in any order. */
  timestamp: string;
  /** The objects concerned, as the REST API shows them. */
  data: D;
}

/** A verified delivery's body; narrow it on `type`. */
export type WebhookEvent =
  /** `room.deleted` carries the room as it was. */
  | EventOf<"room.created" | "room.deleted" | "room.occupied" | "room.vacated", { room: Room }>
  /** Presence rooms only. */
  | EventOf<"member.joined" | "member.left", { room: string; member: Member }>
  /** `endpoint.deleted` carries the endpoint as it was. */
  | EventOf<"endpoint.created" | "endpoint.deleted" | "endpoint.expired", { room: string; endpoint: Endpoint }>
  | EventOf<"message.created", { message: Message }>;

/** What `verifyWebhook` accepts besides the delivery. */
export interface VerifyWebhookOptions {
  /** How far `webhook-timestamp` may be from `now`, either way (default 300 s, as Standard Webhooks' libraries). */
  toleranceSeconds?: number;
  /** The time to compare the timestamp with (default: the clock's). */
  now?: Date;
}

/** Request headers: a `Headers`, or a plain object such as Node's `request.headers`. */
export type WebhookHeaders = Headers | Record<string, string | string[] | undefined>;

/**
 * Verifies a delivery and returns its event. `secret` is the webhook's `whsec_…`, `headers` the
 * request's, `body` the request body exactly as received (read it as text before any JSON
 * parsing: a parsed and re-serialized body no longer matches its signature).
 *
 * Delivery is at least once: deduplicate verified events on the `webhook-id` header.
 *
 * @throws {WebhookError} with `code` `invalid_secret`, `missing_header`, `invalid_signature`,
 *   `stale_timestamp` or `malformed`.
 */
export async function verifyWebhook(
  secret: string,
  headers: WebhookHeaders,
  body: string,
  options: VerifyWebhookOptions = {},
): Promise<WebhookEvent> {
  const id = header(headers, "webhook-id");
  const timestamp = header(headers, "webhook-timestamp");
  const signature = header(headers, "webhook-signature");
  const key = secret.startsWith(SECRET_PREFIX) ? base64(secret.slice(SECRET_PREFIX.length)) : null;
  if (key === null) throw new WebhookError("invalid_secret", "a webhook secret is whsec_ followed by base64");
  if (!(await signed(key, id, timestamp, signature, body))) {
    throw new WebhookError("invalid_signature", "no webhook-signature entry matches this secret, id, timestamp and body");
  }
  if (!/^\d+$/.test(timestamp)) {
    throw new WebhookError("malformed", `webhook-timestamp ${JSON.stringify(timestamp)} is not Unix seconds`);
  }
  const now = Math.floor((options.now ?? new Date()).getTime() / 1000);
  if (Math.abs(now - Number(timestamp)) > (options.toleranceSeconds ?? 300)) {
    throw new WebhookError("stale_timestamp", `webhook-timestamp ${timestamp} is further from now than the tolerance`);
  }
  return parseEvent(body);
}

/** A header's value; a repeated one's values space-separated, as signature entries are. */
function header(headers: WebhookHeaders, name: string): string {
  let value: string | string[] | null | undefined;
  if (headers instanceof Headers) {
    value = headers.get(name);
  } else {
    // Node lowercases names; other sources may not.
    const key = Object.keys(headers).find((key) => key.toLowerCase() === name);
    value = key === undefined ? undefined : headers[key];
  }
  if (Array.isArray(value)) value = value.join(" ");
  if (value === null || value === undefined) throw new WebhookError("missing_header", `no ${name} header`);
  return value;
}

/** The bytes of base64 `text`, or `null` when it is not base64. */
function base64(text: string): Uint8Array<ArrayBuffer> | null {
  try {
    return Uint8Array.from(atob(text), (char) => char.charCodeAt(0));
  } catch {
    return null;
  }
}

/** Whether an entry of `signature` is the signature of `key`; other versions and undecodable entries are skipped. */
async function signed(key: Uint8Array<ArrayBuffer>, id: string, timestamp: string, signature: string, body: string) {
  const subtle = globalThis.crypto.subtle;
  const hmac = await subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
  const content = new TextEncoder().encode(`${id}.${timestamp}.${body}`);
  for (const entry of signature.split(/\s+/)) {
    if (!entry.startsWith(SIGNATURE_PREFIX)) continue;
    const candidate = base64(entry.slice(SIGNATURE_PREFIX.length));
    if (candidate !== null && (await subtle.verify("HMAC", hmac, candidate, content))) return true;
  }
  return false;
}

/** The event of a signed body, checked as far as its envelope; `data` is as comms sent it. */
function parseEvent(body: string): WebhookEvent {
  let event: unknown;
  try {
    event = JSON.parse(body);
  } catch {
    throw new WebhookError("malformed", "the body is not JSON");
  }
  const { type, timestamp, data } = (event ?? {}) as Record<string, unknown>;
  if (typeof type !== "string" || typeof timestamp !== "string" || typeof data !== "object" || data === null) {
    throw new WebhookError("malformed", 'the body is not an event {"type", "timestamp", "data"}');
  }
  return event as WebhookEvent;
}
