// What every REST call shares: the base address, the app's key, turning
// answers into values or `CommsError`s, and retrying a request that carries
// an `Idempotency-Key`. The calls themselves are generated from the server's
// OpenAPI document (generated.ts).

import type { ErrorBody, ErrorCode } from "./generated.js";

/** Answers worth retrying: a proxy or load balancer that lost the server, or a server not ready. */
const RETRIED_STATUSES = new Set([502, 503, 504]);
/** Wait before the first retry of a request, doubled for each further one. */
const RETRY_DELAY_MS = 200;

/** A path segment, percent-encoded. */
export function segment(value: string): string {
  return encodeURIComponent(value);
}

/**
 * 128 random bits as 22 base64url characters: the `Idempotency-Key` of a REST publish, and the
 * nonce of a WebSocket send. `crypto.getRandomValues` is there in Node 20 and in every browser,
 * on plain http pages too (unlike `crypto.randomUUID`).
 */
export function idempotencyKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** What went wrong with a REST call: the API's error answer, or no answer at all. */
export class CommsError extends Error {
  /** HTTP status, e.g. 404; 0 when no answer came (`network`). */
  readonly status: number;
  /**
   * The error code (docs/protocol.md#error-codes), e.g. `"not_found"`; `"unexpected"` when the
   * answer was not the API's error JSON (a proxy's page, say); `"network"` when the server could
   * not be reached or the connection broke before the answer (the request may or may not have
   * been carried out).
   */
  readonly code: ErrorCode | "unexpected" | "network";
  /** With `rate_limited`: seconds the server asked to wait (`Retry-After`). */
  readonly retryAfter?: number;

  constructor(
    status: number,
    code: ErrorCode | "unexpected" | "network",
    message: string,
    retryAfter?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "CommsError";
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/** Options of a client. */
export interface ClientOptions {
  /** A `fetch` to use instead of the global one (tests, proxies). */
  fetch?: typeof fetch;
  /**
   * How many times a request carrying an `Idempotency-Key` (every `publishMessage`) is sent again
   * after a network failure or a 502, 503 or 504 answer, waiting 200 ms, then 400 ms, and so on
   * (default 3). The server answers a repeated key with the first message, so a retry never
   * publishes twice. Other requests are never retried.
   */
  retries?: number;
}

/** The part of `CommsClient` that is not generated. */
export class ClientBase {
  /** The server's base address, without a trailing slash. */
  readonly baseUrl: string;
  readonly #apiKey: string;
  readonly #fetch: typeof fetch;
  readonly #retries: number;

  /**
   * A client of the server at `baseUrl` (e.g. `https://comms.example.com`) sending `apiKey`
   * with every request. For backends: never ship an API key to a browser.
   */
  constructor(baseUrl: string, apiKey: string, options: ClientOptions = {}) {
    if (!/^https?:\/\//.test(baseUrl)) throw new TypeError(`${baseUrl} is not an http:// or https:// address`);
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.#apiKey = apiKey;
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.#retries = options.retries ?? 3;
  }

  protected async request<T>(
    method: string,
    path: string,
    query: Record<string, number | string | undefined> | undefined,
    body: unknown,
    expected: number,
    extraHeaders: Record<string, string | undefined> = {},
  ): Promise<T> {
    const url = new URL(this.baseUrl + path);
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, String(value));
    }
    const headers: Record<string, string> = { "X-API-Key": this.#apiKey };
    for (const [name, value] of Object.entries(extraHeaders)) {
      if (value !== undefined) headers[name] = value;
    }
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const init = { method, headers, body: body === undefined ? undefined : JSON.stringify(body) };
    // Only a repeat the server recognises is safe to send: without a key, a request whose
    // answer was lost may have been carried out, and sending it again could do it twice.
    const retries = headers["Idempotency-Key"] === undefined ? 0 : this.#retries;
    for (let attempt = 0; ; attempt += 1) {
      const answer = await this.#send(url, init);
      const retry = answer instanceof CommsError || RETRIED_STATUSES.has(answer.response.status);
      if (retry && attempt < retries) {
        await new Promise((resolve) => setTimeout(resolve, RETRY_DELAY_MS * 2 ** attempt));
        continue;
      }
      if (answer instanceof CommsError) throw answer;
      const { response, text } = answer;
      if (response.status !== expected) throw errorOf(response, text);
      return (text === "" ? undefined : JSON.parse(text)) as T;
    }
  }

  /** Sends one request and reads its answer whole; a `network` error when either fails. */
  async #send(url: URL, init: RequestInit): Promise<{ response: Response; text: string } | CommsError> {
    try {
      const response = await this.#fetch(url, init);
      return { response, text: await response.text() };
    } catch (err) {
      return networkError(url.href, err);
    }
  }
}

/** The `network` error of a request to `url` that failed with `err` (fetch's "fetch failed", say). */
export function networkError(url: string, err: unknown): CommsError {
  // Node's fetch says only "fetch failed"; what happened (ECONNREFUSED…) is its cause.
  const cause = err instanceof Error && err.cause instanceof Error ? ` (${err.cause.message})` : "";
  const what = err instanceof Error ? err.message : String(err);
  return new CommsError(0, "network", `could not reach ${url}: ${what}${cause}`, undefined, { cause: err });
}

/** The `CommsError` of an answer that is not the expected one. */
export function errorOf(response: Response, text: string): CommsError {
  const retry = response.headers.get("Retry-After");
  const retryAfter = retry === null ? undefined : Number(retry);
  try {
    const { error } = JSON.parse(text) as ErrorBody;
    if (error && typeof error.code === "string") {
      return new CommsError(response.status, error.code, error.message, retryAfter);
    }
  } catch {
    // Not the API's error JSON (a proxy's page, say): reported as unexpected.
  }
  return new CommsError(response.status, "unexpected", `unexpected answer ${response.status}: ${text.slice(0, 200)}`);
}
