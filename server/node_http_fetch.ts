/**
 * Requests and responses converted between Bun's `node:http` (and the
 * `node:http2` compatibility API) and the fetch API, for the listener in
 * `serve_bun.ts`, so that the handler stays the one `(Request) => Response`
 * of every runtime: the request's URL as Deno builds it, its head read once
 * from the raw header list, its body as a stream read on demand, and the
 * response written at once or, when marked as streamed, chunk by chunk.
 *
 * @module
 */
import type * as http from "node:http";
import { CHUNK_TIMED } from "./response_guard.ts";
import { responseParts } from "./response_parts.ts";

/** Headers HTTP/2 forbids (RFC 9113, 8.2.2): dropped from its responses. */
const H1_ONLY = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
];

/**
 * The request's URL as `Deno.serve` builds it: scheme, the Host header (or
 * the listener's address when there is none) and the request target. An
 * absolute-form target is kept whole, so `guard.ts` sees an authority that
 * does not match Host.
 */
export function requestUrl(
  req: http.IncomingMessage,
  host: string | undefined,
  scheme: string,
  server: http.Server,
): string {
  const target = req.url ?? "/";
  if (!target.startsWith("/")) {
    if (/^https?:\/\//i.test(target)) return target;
    return `${scheme}://invalid/${target}`;
  }
  if (host === undefined) {
    const a = server.address();
    host = typeof a === "object" && a !== null
      ? (a.address.includes(":") ? `[${a.address}]` : a.address) + `:${a.port}`
      : "localhost";
  }
  return `${scheme}://${host}${target}`;
}

/** What the listener reads of a request head (readHead). */
export interface Head {
  /** The first Host header, else HTTP/2's `:authority`. */
  host: string | undefined;
  /** A body is announced: a Content-Length other than 0, or a Transfer-Encoding. */
  framed: boolean;
}

/**
 * Reads the raw header list once for what the listener needs; the handler's
 * headers are read from the same list (`node_request.ts`). `req.headers` is
 * not used: on Bun it is built on first access, a second copy of every
 * header per request.
 */
export function readHead(raw: string[]): Head {
  let host: string | undefined;
  let authority: string | undefined;
  let framed = false;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i], value = raw[i + 1];
    // HTTP/2's pseudo-headers (:method, :path, ...) are not headers.
    if (name.charCodeAt(0) === 58) {
      if (authority === undefined && name === ":authority") authority = value;
      continue;
    }
    // Lower-cased only when the length matches: most names are neither.
    if (name.length === 4) {
      if (host === undefined && name.toLowerCase() === "host") host = value;
    } else if (name.length === 14) {
      if (value !== "0" && name.toLowerCase() === "content-length") {
        framed = true;
      }
    } else if (name.length === 17) {
      if (name.toLowerCase() === "transfer-encoding") framed = true;
    }
  }
  return { host: host ?? authority, framed };
}

/**
 * The body of a request that announced one (Head.framed), as a stream read
 * on demand (so a body the handler refuses is not buffered); undefined for
 * GET and HEAD.
 */
export function requestBody(
  req: http.IncomingMessage,
): { stream: ReadableStream<Uint8Array<ArrayBuffer>> } | undefined {
  if (req.method === "GET" || req.method === "HEAD") return undefined;
  req.pause();
  const stream = new ReadableStream<Uint8Array<ArrayBuffer>>({
    start(ctrl) {
      req.on("data", (chunk: Uint8Array<ArrayBuffer>) => {
        ctrl.enqueue(chunk);
        if ((ctrl.desiredSize ?? 0) <= 0) req.pause();
      });
      req.once("end", () => ctrl.close());
      req.once("error", (err) => ctrl.error(err));
      req.once("close", () => {
        if (!req.complete) {
          ctrl.error(new Error("the client closed the connection"));
        }
      });
    },
    pull() {
      req.resume();
    },
    cancel() {
      // Not read any further: the connection closes after the response.
      req.pause();
    },
  });
  return { stream };
}

/**
 * Writes `response` to `res`. A body `response_guard.ts` marked as streamed
 * (large values, event streams, backups) is written chunk by chunk as the
 * client takes it; every other body is in memory already and is written at
 * once. `closeAfter`: the request body was not read to its end, so the
 * connection cannot carry another request. `h2`: an HTTP/2 stream, which
 * takes no connection-level headers.
 */
export async function writeResponse(
  res: http.ServerResponse,
  response: Response,
  closeAfter: boolean,
  h2: boolean,
): Promise<void> {
  // A hot route's answer, kept as written (response_parts.ts); the rare
  // cases that change its headers take the general path.
  const parts = closeAfter || h2 ? undefined : responseParts(response);
  if (parts !== undefined) {
    res.writeHead(response.status, parts.headers);
    res.end(parts.body);
    return;
  }
  const headers: Record<string, string> = {};
  response.headers.forEach((v, k) => {
    headers[k] = v;
  });
  if (h2) { for (const name of H1_ONLY) delete headers[name]; }
  else if (closeAfter) headers["connection"] = "close";
  if (response.body === null || !CHUNK_TIMED.has(response)) {
    const bytes = response.body === null ? undefined : await response.bytes();
    if (bytes !== undefined && headers["content-length"] === undefined) {
      headers["content-length"] = String(bytes.length);
    }
    res.writeHead(response.status, headers);
    res.end(bytes);
    return;
  }
  res.writeHead(response.status, headers);
  const reader = response.body.getReader();
  // The client went away: stop producing (frees a pinned value or snapshot).
  res.once("close", () => reader.cancel().catch(() => {}));
  try {
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      if (!res.write(r.value)) await drained(res);
    }
    res.end();
  } catch {
    // The body failed or its chunk timer fired (the sweeper closes the
    // connection then too).
    res.destroy();
  }
}

/** Resolves when `res` can take more, or is closed. */
function drained(res: http.ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}
