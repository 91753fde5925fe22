/**
 * `/kv/{key}`: GET and HEAD read a key (with its version as the ETag and
 * If-Match / If-None-Match answered from it), PUT writes the body as the
 * value (`?ttl=` seconds), DELETE removes it. Conditional writes follow the
 * rule in `etag.ts`.
 *
 * @module
 */
import {
  ascii,
  HttpError,
  parseQuery,
  parseTtl,
  percentDecode,
} from "../_codec.ts";
import { readBody } from "../body.ts";
import type { Ctx, RouteHandler, ServerEnv } from "../context.ts";
import { parseTags, tagsMatch } from "../etag.ts";
import type { HeaderConditions, StoreEntry } from "../store/store.ts";
import { fixedError } from "../errors.ts";
import { authorizeKey } from "../scope.ts";
import { markSmall } from "../response_guard.ts";
import { KEEP_PARTS, PartsResponse } from "../response_parts.ts";
import { requestHeader } from "../request_headers.ts";
import { LARGE_RESPONSE_BYTES } from "../connection_limits.ts";

/** The handlers of `/kv/{key}`, by method. */
export interface KvRoutes {
  get: RouteHandler;
  put: RouteHandler;
  delete: RouteHandler;
}

/** The query parameters PUT takes. */
const PUT_PARAMS = ["ttl"];

/** The key route's handlers over `env`. */
export function kvRoutes(env: ServerEnv): KvRoutes {
  const { store, limits, metrics } = env;
  const valueLimit = {
    bytes: limits.maxValueBytes,
    code: "value_too_large",
    what: "value",
  };
  const countBytes = (n: number) => metrics.addBytesIn(n);

  // Synchronous where the store reads without waiting (the engine): no
  // promise per request then.
  function getKey(ctx: Ctx): Response | Promise<Response> {
    const key = decodeKey(ctx.path.slice(4), limits.maxKeyBytes);
    authorizeKey(ctx.scope, "read", key);
    // Most requests have no query: no parameter map for them.
    if (ctx.query !== "") parseQuery(ctx.query, []);
    if (store.readSync !== undefined) return store.readSync(key, answer, ctx);
    return store.get(key).then((r) => answer(r, ctx));
  }

  async function putKey(ctx: Ctx): Promise<Response> {
    const key = decodeKey(ctx.path.slice(4), limits.maxKeyBytes);
    authorizeKey(ctx.scope, "write", key);
    const ttl = ctx.query === ""
      ? undefined
      : parseQuery(ctx.query, PUT_PARAMS).get("ttl");
    const expiresAt = ttl === undefined ? undefined : Math.round(
      env.clock() +
        parseTtl(ascii(ttl, "ttl"), "query parameter ttl") * 1000,
    );
    const value = await readBody(ctx.req, ctx.lease, valueLimit, countBytes);
    const version = await store.put(key, value, expiresAt, conditions(ctx));
    const headers = { etag: `"${version}"` };
    return KEEP_PARTS
      ? new PartsResponse(204, headers, undefined)
      : new Response(null, { status: 204, headers });
  }

  async function deleteKey(ctx: Ctx): Promise<Response> {
    const key = decodeKey(ctx.path.slice(4), limits.maxKeyBytes);
    authorizeKey(ctx.scope, "write", key);
    if (ctx.query !== "") parseQuery(ctx.query, []);
    await store.delete(key, conditions(ctx));
    return new Response(null, { status: 204 });
  }

  return { get: getKey, put: putKey, delete: deleteKey };
}

/** The answer to GET or HEAD of a key whose current entry is `r`. */
function answer(r: StoreEntry | undefined, ctx: Ctx): Response {
  // Returned, not thrown: a miss is a normal answer, and an Error's stack
  // trace cost more than the rest of the request.
  if (r === undefined) return notFound();
  const etag = `"${r.version}"`;
  // A plain record: cheaper for Deno to take than a Headers object.
  const headers: Record<string, string> = { etag };
  const ifMatch = parseTags(requestHeader(ctx.req, "if-match"), "If-Match");
  if (ifMatch !== undefined && !tagsMatch(ifMatch, r.version, true)) {
    throw new HttpError(
      412,
      "precondition_failed",
      `current version is ${r.version}`,
      { etag },
    );
  }
  const ifNone = parseTags(
    requestHeader(ctx.req, "if-none-match"),
    "If-None-Match",
  );
  if (ifNone !== undefined && tagsMatch(ifNone, r.version, false)) {
    return new Response(null, { status: 304, headers });
  }
  headers["content-type"] = "application/octet-stream";
  if (r.expiresAt > 0) {
    headers["expires"] = new Date(r.expiresAt).toUTCString();
  }
  const length = r.value.length;
  if (ctx.req.method === "HEAD") {
    headers["content-length"] = String(length);
    return markSmall(new Response(null, { status: 200, headers }), 0);
  }
  // The HTTP layer sets Content-Length from the bytes itself; it is
  // written here only for large values, which the listener bounds by
  // this header without touching the body (response_guard.ts), and where
  // the Bun listener writes the parts given below. Small ones are vouched
  // for instead (one header less on Deno: about 1 µs).
  const small = length < LARGE_RESPONSE_BYTES;
  const keepParts = small && KEEP_PARTS;
  if (!small || keepParts) headers["content-length"] = String(length);
  // The value may be borrowed (valid only until this returns): kept as
  // parts it is copied, since the Bun listener writes it after the return
  // (a Response copies it in its constructor).
  const res = keepParts
    ? new PartsResponse(200, headers, r.value.slice())
    : new Response(r.value as Uint8Array<ArrayBuffer>, {
      status: 200,
      headers,
    });
  return markSmall(res, length);
}

/** The 404 of a key that is not there. */
const notFound = fixedError(404, "not_found", "key not found");

/** The request's If-Match / If-None-Match, parsed. */
function conditions(ctx: Ctx): HeaderConditions {
  const req = ctx.req;
  return {
    ifMatch: parseTags(requestHeader(req, "if-match"), "If-Match"),
    ifNone: parseTags(requestHeader(req, "if-none-match"), "If-None-Match"),
  };
}

/**
 * The key named by the path after `/kv/` (percent-decoded bytes). Refuses
 * an empty key, one over `maxKeyBytes` (414), and `.` / `..` segments.
 */
export function decodeKey(raw: string, maxKeyBytes: number): Uint8Array {
  if (raw === "") {
    throw new HttpError(400, "invalid_key", "the key is empty");
  }
  // A key can hold at most 3 path characters per byte (%XX).
  if (raw.length > maxKeyBytes * 3) throw keyTooLong(raw.length, maxKeyBytes);
  // Clients and proxies collapse "." and ".." segments, so such a path
  // would not name the key it seems to; "%2F" keeps slashes literal.
  // Most keys have no dot at all: the split is skipped for them.
  const dotted = raw.includes(".") || raw.includes("%2e") ||
    raw.includes("%2E");
  if (dotted) checkDotSegments(raw);
  const key = percentDecode(raw, "key");
  if (key.length > maxKeyBytes) throw keyTooLong(key.length, maxKeyBytes);
  return key;
}

/** Refuses (400) a key path with a `.` or `..` segment, encoded or not. */
function checkDotSegments(raw: string): void {
  for (const seg of raw.split("/")) {
    const s = seg.toLowerCase().replaceAll("%2e", ".");
    if (s === "." || s === "..") {
      throw new HttpError(
        400,
        "invalid_key",
        `key path has a "${s}" segment; percent-encode slashes (%2F) in such keys`,
      );
    }
  }
}

function keyTooLong(n: number, maxKeyBytes: number): HttpError {
  return new HttpError(
    414,
    "key_too_long",
    `key is ${n} bytes; the limit is ${maxKeyBytes}`,
  );
}
