/**
 * Bounds what clients that stop reading can pin. Large response bodies
 * (a 16 MiB value) are counted against one budget while they are written
 * (past it: 503 overloaded, so 100 stalled readers cannot hold 1.5 GB) and
 * handed to the HTTP layer in 64 KiB chunks; any large or streamed body
 * whose client takes no chunk for the write timeout is aborted, which
 * closes the connection and frees the body. Other bodies pass untouched
 * (no cost on the hot path); the listener bounds how long they may take
 * to write as a whole.
 *
 * @module
 */
import type { ConnectionStats } from "./connection_stats.ts";
import { LARGE_RESPONSE_BYTES } from "./connection_limits.ts";
import type { ServeHandler } from "./runtime.ts";

/** Size of the pieces a large body is written in. */
export const RESPONSE_CHUNK_BYTES = 64 * 1024;

/** What {@link guardResponses} enforces. */
export interface ResponseGuardOptions {
  writeTimeoutMs: number;
  maxResponseMemoryBytes: number;
  stats: ConnectionStats;
}

/** Wraps `handler` so its large and streamed response bodies are bounded. */
export function guardResponses(
  handler: ServeHandler,
  opts: ResponseGuardOptions,
): ServeHandler {
  // Not async: a synchronous answer passes through without a promise.
  return (req, info) => {
    let out: Response | Promise<Response>;
    try {
      out = handler(req, info);
    } catch (err) {
      return Promise.reject(err);
    }
    return out instanceof Promise
      ? out.then((res) => guardResponse(res, opts))
      : guardResponse(out, opts);
  };
}

/**
 * Responses whose body {@link guardResponse} hands out chunk by chunk with
 * the write timeout, and whether that timeout fired (the listener then
 * closes the connection: an errored body alone does not on every
 * runtime). The listener times the other responses as a whole.
 */
export const CHUNK_TIMED: WeakMap<Response, { stalled: boolean }> =
  new WeakMap();

/**
 * Set on responses {@link markSmall} vouched for. A property rather than a
 * WeakSet: adding to a WeakSet per request measured about 1 µs.
 */
const SMALL: unique symbol = Symbol("small response");
type Marked = Response & { [SMALL]?: true };

/**
 * Vouches that `res` has a body of `bytes` bytes already in memory (or
 * none), so that {@link guardResponse} passes it without a look at its
 * headers when `bytes` is under {@link LARGE_RESPONSE_BYTES}; larger ones
 * are left to the headers. For the hot routes: reading `res.headers` makes
 * Deno drop the native response it prepared in the constructor and build
 * the headers again when it sends them. Returns `res`.
 */
export function markSmall(res: Response, bytes: number): Response {
  if (bytes < LARGE_RESPONSE_BYTES) (res as Marked)[SMALL] = true;
  return res;
}

/**
 * The response as it is sent: untouched, chunked and timed, or a 503.
 * Only the headers decide (and {@link markSmall}, and the statuses that
 * have no body), because reading `res.body` turns a buffered body into a
 * stream and costs Deno its fast path (measured: about 3x the CPU per small
 * GET). Chunked and timed: bodies of 64 KiB and more by their
 * Content-Length, and bodies streamed by design, which say so with
 * `text/event-stream` or `cache-control: no-store` and no length.
 */
export function guardResponse(
  res: Response,
  opts: ResponseGuardOptions,
): Response {
  // 204 and 304 never have a body (the Response constructor refuses one).
  const status = res.status;
  if (status === 204 || status === 304 || (res as Marked)[SMALL]) return res;
  const lengthHeader = res.headers.get("content-length");
  const length = lengthHeader === null ? undefined : Number(lengthHeader);
  if (length !== undefined && length < LARGE_RESPONSE_BYTES) return res;
  if (length === undefined && !isStream(res.headers)) return res;
  if (res.body === null) return res;
  const stats = opts.stats;
  let held = 0;
  if (length !== undefined) {
    if (
      stats.responseBytesInFlight > 0 &&
      stats.responseBytesInFlight + length > opts.maxResponseMemoryBytes
    ) {
      res.body.cancel().catch(() => {});
      stats.responsesRefused++;
      return Response.json({
        error: {
          code: "overloaded",
          message:
            `too many large responses are being written (${stats.responseBytesInFlight} bytes, limit ${opts.maxResponseMemoryBytes}); retry later`,
        },
      }, { status: 503, headers: { "retry-after": "1" } });
    }
    held = length;
    stats.responseBytesInFlight += held;
  }
  const release = () => {
    stats.responseBytesInFlight -= held;
    held = 0;
  };
  const reader = res.body.getReader();
  let piece: Uint8Array | undefined;
  let offset = 0;
  const state = { stalled: false };
  // The write timeout: the chunk handed out last must be taken (the next
  // pull) within writeTimeoutMs, else the body is aborted (and with it the
  // connection). One timer per body, re-armed when it fires early, not one
  // per chunk: a change feed hands out a chunk per event, and a timer set
  // and cleared costs microseconds (Deno's are Node's Timeout objects).
  let timer: ReturnType<typeof setTimeout> | undefined;
  /** When the chunk handed out must have been taken by; 0: it was. */
  let due = 0;
  const stop = () => {
    clearTimeout(timer);
    timer = undefined;
    due = 0;
  };
  let ctrlRef: ReadableStreamDefaultController<Uint8Array>;
  const fire = () => {
    timer = undefined;
    if (due === 0) return;
    const left = due - performance.now();
    if (left > 0) {
      timer = setTimeout(fire, left);
      return;
    }
    due = 0;
    stats.closed("write_timeout");
    state.stalled = true;
    release();
    piece = undefined;
    reader.cancel().catch(() => {});
    ctrlRef.error(new Error("write timeout: the client stopped reading"));
  };
  const body = new ReadableStream<Uint8Array>({
    start(ctrl) {
      ctrlRef = ctrl;
    },
    async pull(ctrl) {
      due = 0; // the client took the last chunk
      try {
        while (piece === undefined || offset >= piece.length) {
          const r = await reader.read();
          if (r.done) {
            stop();
            release();
            ctrl.close();
            return;
          }
          piece = r.value;
          offset = 0;
        }
      } catch (err) {
        stop();
        release();
        ctrl.error(err);
        return;
      }
      const end = Math.min(piece.length, offset + RESPONSE_CHUNK_BYTES);
      ctrl.enqueue(piece.subarray(offset, end));
      offset = end;
      if (offset >= piece.length) piece = undefined;
      due = performance.now() + opts.writeTimeoutMs;
      timer ??= setTimeout(fire, opts.writeTimeoutMs);
    },
    cancel(reason) {
      stop();
      release();
      piece = undefined;
      return reader.cancel(reason).catch(() => {});
    },
  }, { highWaterMark: 0 });
  const out = new Response(body, {
    status: res.status,
    statusText: res.statusText,
    headers: res.headers,
  });
  CHUNK_TIMED.set(out, state);
  return out;
}

function isStream(headers: Headers): boolean {
  return (headers.get("content-type") ?? "").startsWith("text/event-stream") ||
    (headers.get("cache-control") ?? "").includes("no-store");
}
