/**
 * Small responses held as their status, headers and body, for the Bun
 * listener (`node_http_fetch.ts`), which writes responses through
 * `node:http`.
 *
 * To write a `Response` there, the listener has to read it back: walk its
 * `Headers` into a record, then await `bytes()` for its body. For the
 * answers the hot routes give (a value, a 404, a PUT's 204) the route
 * already holds both, so it answers with a {@link PartsResponse} and the
 * listener writes the parts straight away. Measured on Bun with a bare
 * `node:http` Map handler that builds the same Request and Response, 5
 * alternating runs: 48.0k -> 55.7k GET/s (medians), about 3 µs per request;
 * not building the Response at all saves its construction too.
 *
 * Deno's listener takes a real Response, so parts are used only on Bun
 * ({@link KEEP_PARTS}); elsewhere the routes build the Response.
 *
 * The rule that makes it safe: the parts are the Response (same status,
 * same headers with Content-Length set when there is a body, same bytes),
 * and neither changes afterwards. Anything that reads a PartsResponse as a
 * Response gets a real one built from the parts, and the parts are gone.
 *
 * @module
 */
import { isBun } from "../engine/runtime.ts";

/** Whether routes keep parts: only the Bun listener reads them. */
export const KEEP_PARTS: boolean = isBun;

/** What the Bun listener writes for a response that has parts. */
export interface ResponseParts {
  readonly status: number;
  /** Lower-case names; Content-Length included when there is a body. */
  readonly headers: Readonly<Record<string, string>>;
  /** The body, owned (never a borrowed view), or undefined for none. */
  readonly body: Uint8Array<ArrayBuffer> | undefined;
}

/**
 * A Response held as its parts, for the Bun listener: on Bun a `Response`
 * is a native object whose construction alone took 6.8% of a GET's
 * profile, and the listener would only read the parts back out of it. The
 * real Response is built from the parts the first time anything reads it
 * as one (its headers, its body, a clone); from then on it has no parts,
 * so whatever that reader did (a HEAD's rewrite, an edit of the headers)
 * is what the listener writes.
 *
 * ```ts
 * const body = new TextEncoder().encode("hi");
 * const res = new PartsResponse(200, {
 *   "content-type": "text/plain",
 *   "content-length": String(body.length),
 * }, body);
 * ```
 */
export class PartsResponse implements Response {
  readonly status: number;
  readonly statusText: string = "";
  readonly type: ResponseType = "default";
  readonly url: string = "";
  readonly redirected: boolean = false;
  #parts: ResponseParts | undefined;
  #real: Response | undefined;

  /**
   * `headers` must carry Content-Length when there is a `body`; neither
   * may change afterwards.
   */
  constructor(
    status: number,
    headers: Readonly<Record<string, string>>,
    body: Uint8Array<ArrayBuffer> | undefined,
  ) {
    this.status = status;
    this.#parts = { status, headers, body };
  }

  /** The parts, while nothing has read this as a Response. */
  get parts(): ResponseParts | undefined {
    return this.#parts;
  }

  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  get headers(): Headers {
    return this.#response().headers;
  }

  get body(): ReadableStream<Uint8Array<ArrayBuffer>> | null {
    return this.#response().body;
  }

  get bodyUsed(): boolean {
    return this.#real?.bodyUsed ?? false;
  }

  arrayBuffer(): Promise<ArrayBuffer> {
    return this.#response().arrayBuffer();
  }

  blob(): Promise<Blob> {
    return this.#response().blob();
  }

  bytes(): Promise<Uint8Array<ArrayBuffer>> {
    return this.#response().bytes();
  }

  formData(): Promise<FormData> {
    return this.#response().formData();
  }

  json(): Promise<unknown> {
    return this.#response().json();
  }

  text(): Promise<string> {
    return this.#response().text();
  }

  textStream(): ReadableStream<string> {
    return this.#response().textStream();
  }

  clone(): Response {
    return this.#response().clone();
  }

  /**
   * The real Response, built once from the parts, which it replaces: for a
   * listener that takes only real ones (`Bun.serve`).
   */
  toResponse(): Response {
    return this.#response();
  }

  #response(): Response {
    if (this.#real === undefined) {
      const { status, headers, body } = this.#parts!;
      this.#real = new Response(body ?? null, { status, headers });
      this.#parts = undefined;
    }
    return this.#real;
  }
}

/** The parts of `res` when it is a {@link PartsResponse} still unread. */
export function responseParts(res: Response): ResponseParts | undefined {
  return res instanceof PartsResponse ? res.parts : undefined;
}

/**
 * `res` as a real Response (a {@link PartsResponse} built into one), for a
 * listener that cannot take anything else.
 */
export function realResponse(res: Response): Response {
  return res instanceof PartsResponse ? res.toResponse() : res;
}
