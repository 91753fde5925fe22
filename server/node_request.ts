/**
 * A fetch-API `Request` over a `node:http` request, for the Bun listener
 * (`serve_bun.ts`): it reads from the node request only what the handler
 * asks for, when it asks.
 *
 * Why: on Bun, `new Headers()` and `new Request()` are native objects that
 * cost about 6 µs per request together (a bare `node:http` Map handler
 * that builds them answers 58k GET/s on one core, 89k without), and the
 * handler usually reads three or four headers and a small body. Here:
 * - a header is found in the raw header list ({@link NodeRequest.header},
 *   which `request_headers.ts` calls); `headers` builds a `Headers` only
 *   when something asks for it;
 * - `arrayBuffer()`/`bytes()` collect the node request's chunks straight
 *   into one buffer, and `body` builds a stream only when asked for;
 * - everything else (`json()`, `clone()`, ...) goes through a real
 *   `Request` built on first use from the same parts.
 *
 * What stays as before: the URL (`node_http_fetch.ts` requestUrl), which
 * requests count as having a body (a Content-Length other than 0, or a
 * Transfer-Encoding), and a signal that never aborts (the listener cancels
 * a streamed answer when its connection closes).
 *
 * @module
 */
import type * as http from "node:http";
import { requestBody } from "./node_http_fetch.ts";

/** Bytes of the node request's body, collected as they arrive. */
function collect(req: http.IncomingMessage): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    let total = 0;
    const onData = (chunk: Uint8Array) => {
      chunks.push(chunk);
      total += chunk.length;
    };
    const onEnd = () => {
      done();
      // One exact buffer: a Buffer from node's pool would hand the caller
      // an ArrayBuffer shared with other requests.
      const out = new Uint8Array(total);
      let at = 0;
      for (const c of chunks) {
        out.set(c, at);
        at += c.length;
      }
      resolve(out);
    };
    const onError = (err: Error) => {
      done();
      reject(err);
    };
    const onClose = () => {
      if (req.complete) return;
      done();
      reject(new Error("the client closed the connection"));
    };
    const done = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("close", onClose);
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("close", onClose);
    req.resume();
  });
}

/** HTTP whitespace a `Headers` value loses at either end. */
const EDGE_SPACE = /^[\t\n\r ]+|[\t\n\r ]+$/g;

/** The fetch view of one `node:http` request; see the module comment. */
export class NodeRequest implements Request {
  readonly method: string;
  readonly url: string;
  readonly cache: RequestCache = "default";
  readonly credentials: RequestCredentials = "same-origin";
  readonly destination: RequestDestination = "";
  readonly integrity: string = "";
  readonly keepalive: boolean = false;
  readonly mode: RequestMode = "cors";
  readonly redirect: RequestRedirect = "follow";
  readonly referrer: string = "about:client";
  readonly referrerPolicy: ReferrerPolicy = "";
  readonly isHistoryNavigation: boolean = false;
  readonly isReloadNavigation: boolean = false;
  readonly #req: http.IncomingMessage;
  /** The raw header list: name, value, name, value, ... */
  readonly #raw: string[];
  readonly #hasBody: boolean;
  #headers: Headers | undefined;
  #body: ReadableStream<Uint8Array<ArrayBuffer>> | null | undefined;
  #collected = false;
  #real: Request | undefined;
  #signal: AbortSignal | undefined;

  /**
   * `hasBody`: the head announced a body (the listener's rule); GET and
   * HEAD never have one.
   */
  constructor(
    req: http.IncomingMessage,
    url: string,
    raw: string[],
    hasBody: boolean,
  ) {
    this.#req = req;
    this.method = req.method ?? "GET";
    this.url = url;
    this.#raw = raw;
    this.#hasBody = hasBody && this.method !== "GET" &&
      this.method !== "HEAD";
  }

  /**
   * Whether the head announced a body: when it is not read to its end, the
   * connection cannot carry another request.
   */
  get hasBody(): boolean {
    return this.#hasBody;
  }

  /**
   * What `headers.get(name)` answers (`name` in lower case): every value
   * sent under that name, joined by ", ", or null. HTTP/2 pseudo-headers
   * (`:path`, ...) are not headers.
   */
  header(name: string): string | null {
    if (name.charCodeAt(0) === 58) return null;
    const raw = this.#raw;
    let out: string | null = null;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const n = raw[i];
      if (n.length !== name.length || n.toLowerCase() !== name) continue;
      const v = raw[i + 1].replace(EDGE_SPACE, "");
      out = out === null ? v : `${out}, ${v}`;
    }
    return out;
  }

  get headers(): Headers {
    if (this.#headers === undefined) {
      const h = new Headers();
      const raw = this.#raw;
      for (let i = 0; i + 1 < raw.length; i += 2) {
        if (raw[i].charCodeAt(0) !== 58) h.append(raw[i], raw[i + 1]);
      }
      this.#headers = h;
    }
    return this.#headers;
  }

  get signal(): AbortSignal {
    return this.#signal ??= new AbortController().signal;
  }

  get body(): ReadableStream<Uint8Array<ArrayBuffer>> | null {
    if (this.#body === undefined) {
      this.#body = this.#hasBody && !this.#collected
        ? requestBody(this.#req)?.stream ?? null
        : null;
    }
    return this.#body;
  }

  get bodyUsed(): boolean {
    return this.#collected || (this.#real?.bodyUsed ?? false) ||
      (this.#body?.locked ?? false);
  }

  /** The body's bytes, read once; empty when there is none. */
  bytes(): Promise<Uint8Array<ArrayBuffer>> {
    if (this.bodyUsed) {
      return Promise.reject(new TypeError("the body was already read"));
    }
    if (this.#body !== undefined || this.#real !== undefined) {
      // A stream was handed out: read through it, as a Request would.
      return this.#request().bytes();
    }
    this.#collected = true;
    this.#body = null;
    if (!this.#hasBody) return Promise.resolve(new Uint8Array(0));
    return collect(this.#req) as Promise<Uint8Array<ArrayBuffer>>;
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    return (await this.bytes()).buffer;
  }

  async blob(): Promise<Blob> {
    return await this.#request().blob();
  }

  async formData(): Promise<FormData> {
    return await this.#request().formData();
  }

  async json(): Promise<unknown> {
    return await this.#request().json();
  }

  async text(): Promise<string> {
    return await this.#request().text();
  }

  textStream(): ReadableStream<string> {
    return this.#request().textStream();
  }

  clone(): Request {
    return this.#request().clone();
  }

  /**
   * The same request as a real `Request`, built once; throws when the
   * body went to {@link bytes} already.
   */
  #request(): Request {
    if (this.#real === undefined) {
      if (this.#collected) {
        throw new TypeError("the body was already read");
      }
      this.#real = new Request(this.url, {
        method: this.method,
        headers: this.headers,
        body: this.body,
        signal: this.signal,
      });
    }
    return this.#real;
  }
}
