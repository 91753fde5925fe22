/**
 * The one request-body reader of the REST routes, with one limit policy:
 *
 * - a declared `Content-Length` over the limit is refused (413) before a
 *   byte is read, and the body is cancelled so the HTTP layer can close;
 * - a streamed body is refused as soon as it passes the limit;
 * - every byte read is first taken from the request's share of the server's
 *   body budget (`body_budget.ts`), which answers 503 `overloaded` when the
 *   server holds too many bodies at once;
 * - a body with neither `Content-Length` nor chunked framing is empty to
 *   HTTP/1.1, so it is refused (411) rather than stored as an empty value.
 *
 * @module
 */
import { clip, HttpError } from "./_codec.ts";
import type { BodyLease } from "./body_budget.ts";
import { requestHeader } from "./request_headers.ts";

/** How large a body may be and what to call it in the 413. */
export interface BodyLimit {
  /** Most bytes accepted. */
  bytes: number;
  /** Error code of the 413 (`value_too_large`, `payload_too_large`). */
  code: string;
  /** What the body is, for the message ("value", "batch body"). */
  what: string;
}

/**
 * Reads `req`'s body within `limit`, charging `lease` for it and reporting
 * the bytes read to `countBytes` (the `bytes in` metric).
 */
export async function readBody(
  req: Request,
  lease: BodyLease,
  limit: BodyLimit,
  countBytes: (n: number) => void,
): Promise<Uint8Array> {
  const lengthHeader = requestHeader(req, "content-length");
  if (lengthHeader !== null) {
    if (!/^[0-9]+$/.test(lengthHeader.trim())) {
      throw new HttpError(400, "invalid_header", "bad Content-Length");
    }
    if (Number(lengthHeader) > limit.bytes) {
      // Tell the HTTP layer we will not read it, so it can close rather
      // than wait for (or drain) a body we refuse anyway.
      req.body?.cancel().catch(() => {});
      throw tooLarge(limit);
    }
  }
  // In-process Requests (tests) carry no framing headers, so there a
  // non-empty body is accepted.
  const unframed = lengthHeader === null &&
    requestHeader(req, "transfer-encoding") === null;
  if (lengthHeader !== null) {
    // The length is declared and within the limit, and HTTP framing stops
    // the body there: read it in one call, which skips the stream-reader
    // machinery (a large share of a small PUT's cost). `req.body` is not
    // touched on this path: on Deno that getter builds a ReadableStream,
    // and `arrayBuffer()` then collects through it instead of taking the
    // already-received body whole (measured: most of a 100 B PUT's body
    // cost). A request without a body reads as empty here.
    try {
      await lease.take(Number(lengthHeader));
    } catch (err) {
      // Refused (503 overloaded): let the HTTP layer drop the unread body.
      req.body?.cancel().catch(() => {});
      throw err;
    }
    const declared = Number(lengthHeader);
    let body: Uint8Array;
    try {
      // Only a large body touches req.body (its stream is read chunk by
      // chunk there anyway).
      body = declared >= LARGE_BODY_BYTES && req.body !== null
        ? await readInto(req.body, declared)
        : new Uint8Array(await req.arrayBuffer());
    } catch (err) {
      throw bodyReadFailed(err);
    }
    if (body.length > limit.bytes) throw tooLarge(limit);
    countBytes(body.length);
    return body;
  }
  if (req.body === null) {
    if (unframed) throw lengthRequired();
    return new Uint8Array(0);
  }
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      countBytes(value.length);
      if (total > limit.bytes) {
        reader.cancel().catch(() => {});
        throw tooLarge(limit);
      }
      try {
        await lease.take(value.length);
      } catch (err) {
        reader.cancel().catch(() => {});
        throw err;
      }
      chunks.push(value);
    }
  } catch (err) {
    if (err instanceof HttpError) throw err;
    throw bodyReadFailed(err);
  } finally {
    reader.releaseLock();
  }
  if (total === 0 && unframed) throw lengthRequired();
  return concat(chunks, total);
}

// The refusals, as functions rather than closures: readBody runs per PUT.

function tooLarge(limit: BodyLimit): HttpError {
  return new HttpError(
    413,
    limit.code,
    `${limit.what} is larger than the limit of ${limit.bytes} bytes`,
  );
}

function lengthRequired(): HttpError {
  return new HttpError(
    411,
    "length_required",
    "send Content-Length or Transfer-Encoding: chunked",
  );
}

function bodyReadFailed(err: unknown): HttpError {
  return new HttpError(
    400,
    "body_read_failed",
    `could not read the request body: ${
      err instanceof Error ? clip(err.message, 120) : String(err)
    }`,
  );
}

/**
 * Declared bodies at least this large are read chunk by chunk into one
 * buffer of the declared size: `arrayBuffer()` gathers the whole body in
 * one step on the event loop (measured on Deno: 30-46 ms of one 16 MiB PUT
 * on a loaded 2-core machine), chunks spread the copy over many ticks.
 */
const LARGE_BODY_BYTES = 1024 * 1024;

/** Reads `body` (framed to `length` bytes by the HTTP layer) into one buffer. */
async function readInto(
  body: ReadableStream<Uint8Array>,
  length: number,
): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  const reader = body.getReader();
  let off = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (off + value.length > length) {
        throw new Error("the body is longer than its Content-Length");
      }
      out.set(value, off);
      off += value.length;
    }
  } finally {
    reader.releaseLock();
  }
  if (off !== length) {
    throw new Error(
      `the body ended after ${off} of its ${length} declared bytes`,
    );
  }
  return out;
}

/** The chunks as one array (the only chunk itself when there is one). */
export function concat(chunks: Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}
