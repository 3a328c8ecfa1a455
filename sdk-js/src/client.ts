// What every REST call shares: the base address, the app's key, and turning
// answers into values or `CommsError`s. The calls themselves are generated
// from the server's OpenAPI document (generated.ts).

import type { ErrorBody, ErrorCode } from "./generated.js";

/** A path segment, percent-encoded. */
export function segment(value: string): string {
  return encodeURIComponent(value);
}

/** An error answer of the API, with its error code (docs/protocol.md#error-codes). */
export class CommsError extends Error {
  /** HTTP status, e.g. 404. */
  readonly status: number;
  /** The error code, e.g. `"not_found"`; `"unexpected"` when the answer was not the API's error JSON. */
  readonly code: ErrorCode | "unexpected";
  /** With `rate_limited`: seconds the server asked to wait (`Retry-After`). */
  readonly retryAfter?: number;

  constructor(status: number, code: ErrorCode | "unexpected", message: string, retryAfter?: number) {
    super(message);
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
}

/** The part of `CommsClient` that is not generated. */
export class ClientBase {
  /** The server's base address, without a trailing slash. */
  readonly baseUrl: string;
  readonly #apiKey: string;
  readonly #fetch: typeof fetch;

  /**
   * A client of the server at `baseUrl` (e.g. `https://comms.example.com`) sending `apiKey`
   * with every request. For backends: never ship an API key to a browser.
   */
  constructor(baseUrl: string, apiKey: string, options: ClientOptions = {}) {
    if (!/^https?:\/\//.test(baseUrl)) throw new TypeError(`${baseUrl} is not an http:// or https:// address`);
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.#apiKey = apiKey;
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
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
    const response = await this.#fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (response.status !== expected) throw errorOf(response, text);
    return (text === "" ? undefined : JSON.parse(text)) as T;
  }
}

function errorOf(response: Response, text: string): CommsError {
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
