/**
 * The HTTP API as a pure function: {@link createHandler} turns an open
 * database into a `(Request) => Promise<Response>` handler. No sockets, no
 * environment, no signals; `server/main.ts` owns those. The full contract is
 * in `docs/HTTP.md`.
 *
 * Invariants:
 * - Routing looks at the raw (still percent-encoded) path, so `/kv/range` is
 *   the scan route and the key `range` is `/kv/%72ange`.
 * - Every error body is `{"error":{"code","message"}}`, rendered by the one
 *   error funnel in `errors.ts` (engine codes map to statuses in
 *   `ERROR_STATUS` only; anything else is a bug: logged, answered 500).
 *   Client input is validated before it reaches the engine.
 * - Request bodies are read as streams and refused (413) as soon as they pass
 *   the limit; nothing is buffered past it.
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";
import {
  type BatchOp,
  type Db,
  PreconditionFailedError,
  ShaleError,
  type Snapshot,
} from "../mod.ts";
import {
  clip,
  compareBytes,
  fromBase64,
  HttpError,
  parseQuery,
  percentDecode,
  prefixEnd,
  successor,
  toBase64,
} from "./_codec.ts";
import {
  errorResponse,
  type LogFn,
  publicMessage,
  renderError,
} from "./errors.ts";
import { Metrics } from "./metrics.ts";
import { type WatchOptions, WatchRoute } from "./routes/watch.ts";
import {
  closeKvConnectWatches,
  handleKvConnect,
} from "./kv_connect/handler.ts";

export { HttpError } from "./_codec.ts";
export { ERROR_STATUS, type LogFn } from "./errors.ts";

/** Options for {@link createHandler}; every field has a default. */
export interface HandlerOptions {
  /** When set, every route but `/health` needs `Authorization: Bearer <token>`. */
  authToken?: string;
  /** Largest key in bytes. Default: the engine's `maxKeyBytes`. */
  maxKeyBytes?: number;
  /** Largest value (PUT body) in bytes. Default: the engine's `maxValueBytes`. */
  maxValueBytes?: number;
  /** Largest `/kv/batch` body in bytes. Default 64 MiB. */
  maxBatchBytes?: number;
  /** Most ops in one batch. Default 10000. */
  maxBatchOps?: number;
  /** Largest `limit` of `/kv/range`. Default 10000. */
  maxScanLimit?: number;
  /** A range page stops once its keys and values pass this many bytes. Default 4 MiB. */
  maxPageBytes?: number;
  /** How long a paging cursor keeps its snapshot after last use. Default 60 s. */
  cursorTtlMs?: number;
  /** Most snapshots held for cursors; the least recently used goes first. Default 1000. */
  maxCursors?: number;
  /** Wall clock for `?ttl=` (ms since epoch). Default `Date.now`. */
  clock?: () => number;
  /** Where server faults are reported. Default: `console.error`. */
  log?: LogFn;
  /** Counters to update; a fresh {@link Metrics} when omitted. */
  metrics?: Metrics;
  /** The change feed's pacing (`GET /kv/watch`, `routes/watch.ts`). */
  watch?: WatchOptions;
}

/** The request handler plus the few controls `main.ts` needs. */
export interface Handler {
  (req: Request): Promise<Response>;
  /** The counters this handler updates. */
  readonly metrics: Metrics;
  /** Marks the server as shutting down: `/health` answers 503 from now on. */
  drain(): void;
  /** Releases every snapshot held for cursors. Call before `db.close()`. */
  close(): void;
}

const KEY_ALLOW = "GET, HEAD, PUT, DELETE";
const READ_ALLOW = "GET, HEAD";
const BATCH_ALLOW = "POST";
const RANGE_PARAMS = [
  "start",
  "end",
  "prefix",
  "limit",
  "reverse",
  "cursor",
  "keys_only",
] as const;
const DEFAULT_SCAN_LIMIT = 1000;
/** 100 years: beyond that a TTL is a mistake, and the sum would lose precision. */
const MAX_TTL_SECONDS = 100 * 365 * 24 * 3600;
const CURSOR_VERSION = 2;
const SNAPSHOT_ID_BYTES = 16;
/** Bytes of the range-parameter digest a cursor carries. */
const CURSOR_BINDING_BYTES = 8;
const KNOWN_METHODS = new Set([
  "GET",
  "HEAD",
  "PUT",
  "POST",
  "DELETE",
  "OPTIONS",
  "PATCH",
]);

const JSON_HEADERS = { "content-type": "application/json" };
const decoder = new TextDecoder("utf-8", { fatal: true });

interface Ctx {
  req: Request;
  path: string;
  query: string;
  /** Metrics label of the matched route. */
  route: string;
}

interface HeldSnapshot {
  snapshot: Snapshot;
  expiresAt: number;
}

/**
 * Builds the HTTP handler for `db`.
 *
 * @example
 * ```ts ignore
 * const db = await open("./data");
 * const handler = createHandler(db, { authToken: "secret" });
 * Deno.serve({ port: 8080 }, handler);
 * ```
 */
export function createHandler(db: Db, options: HandlerOptions = {}): Handler {
  const maxKeyBytes = options.maxKeyBytes ?? db.options.maxKeyBytes;
  const maxValueBytes = options.maxValueBytes ?? db.options.maxValueBytes;
  const maxBatchBytes = options.maxBatchBytes ?? 64 << 20;
  const maxBatchOps = options.maxBatchOps ?? 10000;
  const maxScanLimit = options.maxScanLimit ?? 10000;
  const maxPageBytes = options.maxPageBytes ?? 4 << 20;
  const cursorTtlMs = options.cursorTtlMs ?? 60_000;
  const maxCursors = options.maxCursors ?? 1000;
  const clock = options.clock ?? Date.now;
  const log: LogFn = options.log ??
    ((level, message, fields) => console.error(level, message, fields ?? ""));
  const metrics = options.metrics ?? new Metrics();
  const tokenDigest = options.authToken === undefined
    ? undefined
    : sha256(options.authToken);
  /** Cursor snapshots by hex id, least recently used first. */
  const held = new Map<string, HeldSnapshot>();
  let draining = false;
  let cursorsExpired = 0;
  const watch = new WatchRoute(db, { log, ...options.watch });

  function releaseExpired(now: number): void {
    for (const [id, h] of held) {
      if (h.expiresAt > now && held.size <= maxCursors) break;
      held.delete(id);
      cursorsExpired++;
      releaseQuietly(h.snapshot);
    }
  }

  function releaseQuietly(s: Snapshot): void {
    try {
      s.release();
    } catch (err) {
      log("warn", "releasing a snapshot failed", { error: String(err) });
    }
  }

  // ---- routes -----------------------------------------------------------

  async function dispatch(ctx: Ctx): Promise<Response> {
    const { req, path } = ctx;
    const method = req.method;
    if (path === "/health") {
      ctx.route = "/health";
      return readOnly(ctx, READ_ALLOW, () => health(ctx));
    }
    if (path === "/deno-kv" || path.startsWith("/deno-kv/")) {
      // KV Connect (Deno's KV client) does its own auth and answers errors
      // as plain text, as that protocol requires.
      ctx.route = "/deno-kv";
      return await handleKvConnect(req, new URL(req.url), {
        db,
        authToken: options.authToken,
        log,
      });
    }
    checkAuth(req);
    if (path.startsWith("/kv/")) {
      const rest = path.slice(4);
      if (rest === "range") {
        ctx.route = "/kv/range";
        return readOnly(ctx, READ_ALLOW, () => range(ctx));
      }
      if (rest === "watch") {
        ctx.route = "/kv/watch";
        return watch.handle(req, ctx.query);
      }
      if (rest === "batch") {
        ctx.route = "/kv/batch";
        if (method === "POST") return await batch(ctx);
        return methodNotAllowed(method, BATCH_ALLOW);
      }
      ctx.route = "/kv/{key}";
      switch (method) {
        case "GET":
        case "HEAD":
          return getKey(ctx, decodeKey(rest));
        case "PUT":
          return await putKey(ctx, decodeKey(rest));
        case "DELETE":
          return await deleteKey(ctx, decodeKey(rest));
        default:
          return methodNotAllowed(method, KEY_ALLOW);
      }
    }
    if (path === "/stats") {
      ctx.route = "/stats";
      return readOnly(ctx, READ_ALLOW, () => stats(ctx));
    }
    if (path === "/metrics") {
      ctx.route = "/metrics";
      return readOnly(ctx, READ_ALLOW, () => prometheus(ctx));
    }
    throw new HttpError(404, "unknown_route", `no route for ${clip(path)}`);
  }

  /** GET and HEAD share one implementation; HEAD drops the body, not its headers. */
  async function readOnly(
    ctx: Ctx,
    allow: string,
    fn: () => Response,
  ): Promise<Response> {
    const method = ctx.req.method;
    if (method !== "GET" && method !== "HEAD") {
      return methodNotAllowed(method, allow);
    }
    const res = fn();
    return method === "HEAD" ? await withoutBody(res) : res;
  }

  function methodNotAllowed(method: string, allow: string): Response {
    if (method === "OPTIONS") {
      return new Response(null, { status: 204, headers: { allow } });
    }
    throw new HttpError(
      405,
      "method_not_allowed",
      `method ${clip(method, 16)} is not allowed here (allowed: ${allow})`,
      { allow },
    );
  }

  function checkAuth(req: Request): void {
    if (tokenDigest === undefined) return;
    const header = req.headers.get("authorization");
    const challenge = { "www-authenticate": 'Bearer realm="shale"' };
    const m = header === null ? null : /^Bearer +(\S+) *$/i.exec(header);
    if (m === null) {
      throw new HttpError(
        401,
        "unauthorized",
        "missing bearer token (Authorization: Bearer <token>)",
        challenge,
      );
    }
    // Compare fixed-length digests so the time taken reveals neither the
    // token's bytes nor its length.
    if (!timingSafeEqual(sha256(m[1]), tokenDigest)) {
      throw new HttpError(401, "unauthorized", "invalid token", challenge);
    }
  }

  /** The last unhealthy reason logged, so polling does not flood the log. */
  let lastUnhealthy: string | undefined;

  function health(ctx: Ctx): Response {
    parseQuery(ctx.query, []);
    if (draining) {
      return healthError("not_ready", "server is shutting down");
    }
    let h: { ok: boolean; reason?: string; code?: string };
    try {
      h = db.health();
    } catch (err) {
      if (err instanceof ShaleError) return healthError(err.code, err.message);
      throw err;
    }
    if (h.ok) return json(200, { status: "ok" });
    const code = h.code ?? "unavailable";
    // /health needs no token: the engine's reason (with file paths) goes to
    // the log, the client gets the code's fixed explanation.
    if (h.reason !== lastUnhealthy) {
      lastUnhealthy = h.reason;
      log("warn", "store unhealthy", { code, reason: h.reason });
    }
    return healthError(
      code,
      h.code === undefined ? "store cannot take writes" : publicMessage(code),
    );
  }

  function healthError(code: string, message: string): Response {
    return json(503, {
      status: "unavailable",
      reason: message,
      error: { code, message },
    });
  }

  function stats(ctx: Ctx): Response {
    parseQuery(ctx.query, []);
    return json(200, {
      engine: db.stats(),
      server: {
        ...metrics.toJSON(),
        cursors: { open: held.size, expired: cursorsExpired },
      },
    });
  }

  function prometheus(ctx: Ctx): Response {
    parseQuery(ctx.query, []);
    const body = metrics.render(db.stats(), [
      {
        name: "shale_http_cursors_open",
        help: "Range cursors holding a snapshot.",
        type: "gauge",
        value: held.size,
      },
      {
        name: "shale_http_cursors_expired_total",
        help: "Cursor snapshots released after expiring or being evicted.",
        type: "counter",
        value: cursorsExpired,
      },
      ...watch.samples(),
    ]);
    return new Response(body, {
      headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
    });
  }

  function decodeKey(raw: string): Uint8Array {
    if (raw === "") {
      throw new HttpError(400, "invalid_key", "the key is empty");
    }
    // A key can hold at most 3 path characters per byte (%XX).
    if (raw.length > maxKeyBytes * 3) throw keyTooLong(raw.length);
    // Clients and proxies collapse "." and ".." segments, so such a path
    // would not name the key it seems to; "%2F" keeps slashes literal.
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
    const key = percentDecode(raw, "key");
    if (key.length > maxKeyBytes) throw keyTooLong(key.length);
    checkNotReserved(key, "key");
    return key;
  }

  function keyTooLong(n: number): HttpError {
    return new HttpError(
      414,
      "key_too_long",
      `key is ${n} bytes; the limit is ${maxKeyBytes}`,
    );
  }

  function getKey(ctx: Ctx, key: Uint8Array): Response {
    parseQuery(ctx.query, []);
    const r = db.get(key);
    if (r === undefined) throw notFound();
    const etag = `"${r.version}"`;
    // A plain record: cheaper for Deno to take than a Headers object.
    const headers: Record<string, string> = { etag };
    const reqHeaders = ctx.req.headers;
    const ifMatch = parseTags(reqHeaders.get("if-match"), "If-Match");
    if (ifMatch !== undefined && !tagsMatch(ifMatch, r.version, true)) {
      throw new HttpError(
        412,
        "precondition_failed",
        `current version is ${r.version}`,
        { etag },
      );
    }
    const ifNone = parseTags(
      reqHeaders.get("if-none-match"),
      "If-None-Match",
    );
    if (ifNone !== undefined && tagsMatch(ifNone, r.version, false)) {
      return new Response(null, { status: 304, headers });
    }
    headers["content-type"] = "application/octet-stream";
    if (r.expiresAt > 0) {
      headers["expires"] = new Date(r.expiresAt).toUTCString();
    }
    if (ctx.req.method === "HEAD") {
      headers["content-length"] = String(r.value.length);
      return new Response(null, { status: 200, headers });
    }
    return new Response(r.value as Uint8Array<ArrayBuffer>, {
      status: 200,
      headers,
    });
  }

  async function putKey(ctx: Ctx, key: Uint8Array): Promise<Response> {
    const params = parseQuery(ctx.query, ["ttl"]);
    const ttl = params.get("ttl");
    const expiresAt = ttl === undefined
      ? undefined
      : expiryFromTtl(parseTtl(ascii(ttl, "ttl"), "query parameter ttl"));
    const value = await readBody(
      ctx.req,
      maxValueBytes,
      "value_too_large",
      "value",
    );
    const ifVersion = conditionFor(ctx.req, key);
    const version = await db.put(key, value, { expiresAt, ifVersion });
    return new Response(null, {
      status: 204,
      headers: { etag: `"${version}"` },
    });
  }

  async function deleteKey(ctx: Ctx, key: Uint8Array): Promise<Response> {
    parseQuery(ctx.query, []);
    const ifVersion = conditionFor(ctx.req, key);
    await db.delete(key, { ifVersion });
    return new Response(null, { status: 204 });
  }

  /**
   * Turns If-Match / If-None-Match into the engine's `ifVersion`. The current
   * version is read and the write issued in the same synchronous stretch, and
   * the engine re-checks `ifVersion` atomically, so racing writers cannot both
   * win.
   */
  function conditionFor(
    req: Request,
    key: Uint8Array,
  ): number | null | undefined {
    const ifMatch = parseTags(req.headers.get("if-match"), "If-Match");
    const ifNone = parseTags(req.headers.get("if-none-match"), "If-None-Match");
    if (ifMatch === undefined && ifNone === undefined) return undefined;
    const current = db.version(key);
    if (ifMatch !== undefined) {
      if (current === null || !tagsMatch(ifMatch, current, true)) {
        throw new HttpError(
          412,
          "precondition_failed",
          current === null
            ? "If-Match failed: the key does not exist"
            : `If-Match failed: current version is ${current}`,
          current === null ? undefined : { etag: `"${current}"` },
        );
      }
    }
    if (ifNone !== undefined && current !== null) {
      if (tagsMatch(ifNone, current, false)) {
        throw new HttpError(
          412,
          "precondition_failed",
          `If-None-Match failed: the key exists at version ${current}`,
          { etag: `"${current}"` },
        );
      }
    }
    return current;
  }

  function range(ctx: Ctx): Response {
    const p = parseQuery(ctx.query, RANGE_PARAMS);
    const limitText = p.get("limit");
    let limit = DEFAULT_SCAN_LIMIT;
    if (limitText !== undefined) {
      const t = ascii(limitText, "limit");
      limit = /^[0-9]{1,9}$/.test(t) ? Number(t) : NaN;
      if (!(limit >= 1 && limit <= maxScanLimit)) {
        throw new HttpError(
          400,
          "invalid_parameter",
          `limit must be an integer from 1 to ${maxScanLimit}, got "${
            clip(t)
          }"`,
        );
      }
    }
    const reverse = parseBool(p.get("reverse"), "reverse");
    const keysOnly = parseBool(p.get("keys_only"), "keys_only");
    let start = p.get("start");
    let end = p.get("end");
    const prefix = p.get("prefix");
    if (prefix !== undefined) {
      if (start !== undefined || end !== undefined) {
        throw new HttpError(
          400,
          "invalid_parameter",
          "prefix cannot be combined with start or end",
        );
      }
      start = prefix;
      end = prefixEnd(prefix);
    }
    if (start !== undefined && start.length === 0) start = undefined;
    if (end !== undefined && end.length === 0) end = undefined;
    // Keys starting with 0x00 belong to internal namespaces (Deno KV
    // databases); a scan of /kv/ never shows them.
    if (start === undefined || compareBytes(start, FIRST_USER_KEY) < 0) {
      start = FIRST_USER_KEY;
    }

    const now = performance.now();
    releaseExpired(now);
    let snapshot: Snapshot | undefined;
    let snapshotId: string | undefined;
    // A cursor only continues the range it was made for: limit and
    // keys_only may change between pages, the bounds may not.
    const binding = cursorBinding(p.get("start"), p.get("end"), prefix);
    const cursorText = p.get("cursor");
    if (cursorText !== undefined && cursorText.length > 0) {
      const c = decodeCursor(ascii(cursorText, "cursor"));
      if (c.reverse !== reverse) {
        throw new HttpError(
          400,
          "invalid_cursor",
          "cursor was made for the other scan direction",
        );
      }
      if (compareBytes(c.binding, binding) !== 0) {
        throw new HttpError(
          400,
          "invalid_cursor",
          "cursor was made for other range parameters (start, end, prefix); repeat them unchanged with the cursor",
        );
      }
      // Resume strictly after (or, reversed, before) the last key returned.
      if (reverse) {
        if (end === undefined || compareBytes(c.lastKey, end) < 0) {
          end = c.lastKey;
        }
      } else {
        const after = successor(c.lastKey);
        if (start === undefined || compareBytes(after, start) > 0) {
          start = after;
        }
      }
      const h = held.get(c.snapshotId);
      if (h !== undefined) {
        // Move to the back of the LRU order.
        held.delete(c.snapshotId);
        snapshot = h.snapshot;
        snapshotId = c.snapshotId;
      }
    }
    if (snapshot === undefined) {
      snapshot = db.snapshot();
      snapshotId = undefined;
    }

    const parts: string[] = [];
    let bytes = 0;
    let lastKey: Uint8Array | undefined;
    let more = false;
    const empty = start !== undefined && end !== undefined &&
      compareBytes(start, end) >= 0;
    try {
      if (!empty) {
        for (const item of db.scan({ start, end, reverse, snapshot })) {
          if (parts.length >= limit || bytes >= maxPageBytes) {
            more = true;
            break;
          }
          const k = toBase64(item.key);
          parts.push(
            keysOnly
              ? `{"key":"${k}","version":"${item.version}"}`
              : `{"key":"${k}","value":"${
                toBase64(item.value)
              }","version":"${item.version}"}`,
          );
          bytes += item.key.length + (keysOnly ? 0 : item.value.length);
          lastKey = item.key;
        }
      }
    } catch (err) {
      // The snapshot is out of `held` while this request owns it.
      if (snapshotId !== undefined) held.delete(snapshotId);
      releaseQuietly(snapshot);
      throw err;
    }
    let next = "null";
    if (more && lastKey !== undefined) {
      snapshotId ??= randomId();
      held.set(snapshotId, { snapshot, expiresAt: now + cursorTtlMs });
      releaseExpired(now);
      next = `"${encodeCursor(reverse, binding, snapshotId, lastKey)}"`;
    } else {
      if (snapshotId !== undefined) held.delete(snapshotId);
      releaseQuietly(snapshot);
    }
    return new Response(`{"items":[${parts.join(",")}],"next":${next}}`, {
      headers: JSON_HEADERS,
    });
  }

  async function batch(ctx: Ctx): Promise<Response> {
    parseQuery(ctx.query, []);
    const body = await readBody(
      ctx.req,
      maxBatchBytes,
      "payload_too_large",
      "batch body",
    );
    let doc: unknown;
    try {
      doc = JSON.parse(decoder.decode(body));
    } catch (err) {
      throw new HttpError(
        400,
        "invalid_json",
        `batch body is not valid JSON: ${
          err instanceof Error ? clip(err.message, 120) : "parse error"
        }`,
      );
    }
    const ops = parseBatch(doc);
    try {
      const version = await db.batch(ops);
      return json(200, { applied: ops.length, version: String(version) });
    } catch (err) {
      if (err instanceof PreconditionFailedError) {
        // The engine's message already starts with "op <index>: ".
        return renderError("json", 412, err.code, err.message, undefined, {
          index: err.index,
        });
      }
      throw err;
    }
  }

  function parseBatch(doc: unknown): BatchOp[] {
    const bad = (message: string) =>
      new HttpError(400, "invalid_batch", message);
    if (!isObject(doc) || !Array.isArray(doc.ops)) {
      throw bad('batch body must be an object {"ops":[...]}');
    }
    for (const k of Object.keys(doc)) {
      if (k !== "ops") throw bad(`unknown field "${clip(k)}" in batch body`);
    }
    const raw: unknown[] = doc.ops;
    if (raw.length === 0) throw bad("ops must not be empty");
    if (raw.length > maxBatchOps) {
      throw new HttpError(
        413,
        "too_many_ops",
        `batch has ${raw.length} ops; the limit is ${maxBatchOps}`,
      );
    }
    return raw.map((op, i): BatchOp => {
      if (!isObject(op)) throw bad(`op ${i} must be an object`);
      const allowed = op.op === "put"
        ? ["op", "key", "value", "ttl", "if_match", "if_none_match"]
        : op.op === "delete" || op.op === "check"
        ? ["op", "key", "if_match", "if_none_match"]
        : undefined;
      if (allowed === undefined) {
        throw bad(`op ${i}: "op" must be "put", "delete" or "check"`);
      }
      for (const k of Object.keys(op)) {
        if (!allowed.includes(k)) {
          throw bad(`op ${i}: unknown field "${clip(k)}" for ${op.op}`);
        }
      }
      const key = fromBase64(op.key, `op ${i} key`);
      if (key.length === 0) throw bad(`op ${i}: key is empty`);
      checkNotReserved(key, `op ${i} key`);
      if (key.length > maxKeyBytes) {
        throw new HttpError(
          414,
          "key_too_long",
          `op ${i}: key is ${key.length} bytes; the limit is ${maxKeyBytes}`,
        );
      }
      let ifVersion: number | null | undefined;
      if (op.if_match !== undefined && op.if_none_match !== undefined) {
        throw bad(`op ${i}: give if_match or if_none_match, not both`);
      }
      if (op.if_match !== undefined) {
        const m = typeof op.if_match === "string"
          ? /^"?([0-9]{1,16})"?$/.exec(op.if_match)
          : null;
        ifVersion = m === null ? NaN : Number(m[1]);
        if (!Number.isSafeInteger(ifVersion)) {
          throw bad(`op ${i}: if_match must be a version string such as "12"`);
        }
      } else if (op.if_none_match !== undefined) {
        if (op.if_none_match !== "*") {
          throw bad(`op ${i}: if_none_match must be "*"`);
        }
        ifVersion = null;
      }
      if (op.op === "delete") return { type: "delete", key, ifVersion };
      if (op.op === "check") {
        if (ifVersion === undefined) {
          throw bad(`op ${i}: check needs if_match or if_none_match`);
        }
        return { type: "check", key, ifVersion };
      }
      if (op.value === undefined) throw bad(`op ${i}: put needs a value`);
      const value = fromBase64(op.value, `op ${i} value`);
      if (value.length > maxValueBytes) {
        throw new HttpError(
          413,
          "value_too_large",
          `op ${i}: value is ${value.length} bytes; the limit is ${maxValueBytes}`,
        );
      }
      let expiresAt: number | undefined;
      if (op.ttl !== undefined) {
        if (typeof op.ttl !== "number") {
          throw bad(`op ${i}: ttl must be a number of seconds`);
        }
        expiresAt = expiryFromTtl(checkTtl(op.ttl, `op ${i} ttl`));
      }
      return { type: "put", key, value, expiresAt, ifVersion };
    });
  }

  function expiryFromTtl(seconds: number): number {
    return Math.round(clock() + seconds * 1000);
  }

  /** Reads the body as a stream, refusing it once it passes `limit`. */
  async function readBody(
    req: Request,
    limit: number,
    tooLargeCode: string,
    what: string,
  ): Promise<Uint8Array> {
    const tooLarge = () =>
      new HttpError(
        413,
        tooLargeCode,
        `${what} is larger than the limit of ${limit} bytes`,
      );
    const lengthHeader = req.headers.get("content-length");
    if (lengthHeader !== null) {
      if (!/^[0-9]+$/.test(lengthHeader.trim())) {
        throw new HttpError(400, "invalid_header", "bad Content-Length");
      }
      if (Number(lengthHeader) > limit) {
        // Tell the HTTP layer we will not read it, so it can close rather
        // than wait for (or drain) a body we refuse anyway.
        req.body?.cancel().catch(() => {});
        throw tooLarge();
      }
    }
    // HTTP/1.1 frames a body without Content-Length or chunked encoding as
    // empty, so such a request is refused (411) rather than stored as an
    // empty value by accident. In-process Requests (tests) carry no framing
    // headers, so a non-empty body is accepted.
    const unframed = lengthHeader === null &&
      req.headers.get("transfer-encoding") === null;
    const lengthRequired = () =>
      new HttpError(
        411,
        "length_required",
        "send Content-Length or Transfer-Encoding: chunked",
      );
    if (req.body === null) {
      if (unframed) throw lengthRequired();
      return new Uint8Array(0);
    }
    const bodyReadFailed = (err: unknown) =>
      new HttpError(
        400,
        "body_read_failed",
        `could not read the request body: ${
          err instanceof Error ? clip(err.message, 120) : String(err)
        }`,
      );
    if (lengthHeader !== null) {
      // The length is declared and within the limit, and HTTP framing stops
      // the body there: read it in one call, which skips the stream-reader
      // machinery (a large share of a small PUT's cost).
      let body: Uint8Array;
      try {
        body = new Uint8Array(await req.arrayBuffer());
      } catch (err) {
        throw bodyReadFailed(err);
      }
      if (body.length > limit) throw tooLarge();
      metrics.addBytesIn(body.length);
      return body;
    }
    const reader = req.body.getReader();
    const chunks: Uint8Array[] = [];
    let total = 0;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        total += value.length;
        metrics.addBytesIn(value.length);
        if (total > limit) {
          reader.cancel().catch(() => {});
          throw tooLarge();
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
    if (chunks.length === 1) return chunks[0];
    const out = new Uint8Array(total);
    let off = 0;
    for (const c of chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }

  // ---- entry point ------------------------------------------------------

  const handler = async (req: Request): Promise<Response> => {
    const t0 = performance.now();
    metrics.begin();
    const url = req.url;
    const pathStart = url.indexOf("/", url.indexOf("://") + 3);
    let path = pathStart < 0 ? "/" : url.slice(pathStart);
    let query = "";
    const hash = path.indexOf("#");
    if (hash >= 0) path = path.slice(0, hash);
    const q = path.indexOf("?");
    if (q >= 0) {
      query = path.slice(q + 1);
      path = path.slice(0, q);
    }
    const ctx: Ctx = { req, path, query, route: "other" };
    let res: Response;
    try {
      res = await dispatch(ctx);
    } catch (err) {
      res = errorResponse(err, {
        format: "json",
        log,
        fields: { method: req.method, route: ctx.route },
      });
    }
    if (held.size > 0) releaseExpired(performance.now());
    const method = KNOWN_METHODS.has(req.method) ? req.method : "other";
    metrics.observe(
      ctx.route,
      method,
      res.status,
      (performance.now() - t0) / 1000,
    );
    return res;
  };
  return Object.assign(handler, {
    metrics,
    drain() {
      draining = true;
      closeKvConnectWatches(db);
      watch.close();
    },
    close() {
      for (const h of held.values()) releaseQuietly(h.snapshot);
      held.clear();
    },
  });
}

// ---- helpers --------------------------------------------------------------

/** The smallest key /kv/ may use: keys starting with byte 0x00 are reserved. */
const FIRST_USER_KEY = new Uint8Array([1]);

/** Refuses keys in the reserved 0x00 namespace (KV Connect databases live there). */
function checkNotReserved(key: Uint8Array, what: string): void {
  if (key[0] === 0) {
    throw new HttpError(
      400,
      "reserved_key",
      `${what} starts with byte 0x00, which is reserved for shale's internal namespaces (Deno KV databases)`,
    );
  }
}

function json(
  status: number,
  body: unknown,
  headers?: Record<string, string>,
): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: headers === undefined ? JSON_HEADERS : {
      ...JSON_HEADERS,
      ...headers,
    },
  });
}

function notFound(): HttpError {
  return new HttpError(404, "not_found", "key not found");
}

/**
 * The answer to HEAD: GET's status and headers, Content-Length included
 * (RFC 9110 9.3.2), without the body. The bodies of these routes are small
 * and already in memory.
 */
async function withoutBody(res: Response): Promise<Response> {
  const headers = new Headers(res.headers);
  if (res.body !== null && !headers.has("content-length")) {
    headers.set("content-length", String((await res.arrayBuffer()).byteLength));
  } else {
    res.body?.cancel().catch(() => {});
  }
  return new Response(null, { status: res.status, headers });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function sha256(text: string): Uint8Array {
  return createHash("sha256").update(text).digest();
}

function randomId(): string {
  const b = new Uint8Array(SNAPSHOT_ID_BYTES);
  crypto.getRandomValues(b);
  return b.toHex();
}

/** Decodes query bytes that must be ASCII text (numbers, flags, cursors). */
function ascii(bytes: Uint8Array, what: string): string {
  for (const b of bytes) {
    if (b < 0x20 || b > 0x7e) {
      throw new HttpError(
        400,
        "invalid_parameter",
        `${what} must be printable ASCII`,
      );
    }
  }
  return String.fromCharCode(...bytes);
}

function parseBool(v: Uint8Array | undefined, what: string): boolean {
  if (v === undefined) return false;
  const t = ascii(v, what);
  if (t === "" || t === "true" || t === "1") return true;
  if (t === "false" || t === "0") return false;
  throw new HttpError(
    400,
    "invalid_parameter",
    `${what} must be true or false, got "${clip(t)}"`,
  );
}

function parseTtl(text: string, what: string): number {
  if (!/^[0-9]{1,12}(\.[0-9]{1,9})?$/.test(text)) {
    throw new HttpError(
      400,
      "invalid_parameter",
      `${what} must be a positive number of seconds, got "${clip(text)}"`,
    );
  }
  return checkTtl(Number(text), what);
}

function checkTtl(seconds: number, what: string): number {
  if (!(Number.isFinite(seconds) && seconds > 0)) {
    throw new HttpError(
      400,
      "invalid_parameter",
      `${what} must be a positive number of seconds`,
    );
  }
  if (seconds > MAX_TTL_SECONDS) {
    throw new HttpError(
      400,
      "invalid_parameter",
      `${what} must be at most ${MAX_TTL_SECONDS} seconds`,
    );
  }
  return seconds;
}

/** Parsed If-Match / If-None-Match: `"*"`, or entity tags with weakness. */
type Tags = "*" | { weak: boolean; version: number | undefined }[];

/** Parses an entity-tag list (RFC 9110 §8.8.3); undefined when absent. */
function parseTags(header: string | null, name: string): Tags | undefined {
  if (header === null) return undefined;
  const h = header.trim();
  if (h === "*") return "*";
  const tags: { weak: boolean; version: number | undefined }[] = [];
  for (const part of h.split(",")) {
    const m = /^\s*(W\/)?"([\x21\x23-\x7e]*)"\s*$/.exec(part);
    if (m === null) {
      throw new HttpError(
        400,
        "invalid_header",
        `${name} must be * or a list of quoted entity tags such as "12"`,
      );
    }
    const v = /^[0-9]{1,16}$/.test(m[2]) ? Number(m[2]) : undefined;
    tags.push({
      weak: m[1] !== undefined,
      version: v !== undefined && Number.isSafeInteger(v) ? v : undefined,
    });
  }
  return tags;
}

/** If-Match uses strong comparison (weak tags never match); If-None-Match weak. */
function tagsMatch(tags: Tags, version: number, strong: boolean): boolean {
  if (tags === "*") return true;
  return tags.some((t) => t.version === version && !(strong && t.weak));
}

/*
 * Cursor bytes (then base64url): [version u8 = 2][flags u8: bit 0 reverse]
 * [range binding, 8 bytes][snapshot id, 16 bytes][last key returned, rest].
 * The binding is a digest of the request's start, end and prefix, so a
 * cursor cannot continue another range. The snapshot id names a snapshot
 * this process holds; when it has expired (or the server restarted) the scan
 * continues at the latest state, still strictly after the last key, so no
 * key is returned twice.
 */

/** The first bytes of SHA-256 over start, end and prefix (each absent or length-prefixed). */
function cursorBinding(
  start: Uint8Array | undefined,
  end: Uint8Array | undefined,
  prefix: Uint8Array | undefined,
): Uint8Array {
  const h = createHash("sha256");
  for (const part of [start, end, prefix]) {
    // An empty bound is no bound (as in the scan itself).
    if (part === undefined || part.length === 0) {
      h.update(new Uint8Array([0]));
    } else {
      const len = new Uint8Array(5);
      len[0] = 1;
      new DataView(len.buffer).setUint32(1, part.length);
      h.update(len).update(part);
    }
  }
  return new Uint8Array(h.digest().subarray(0, CURSOR_BINDING_BYTES));
}

function encodeCursor(
  reverse: boolean,
  binding: Uint8Array,
  snapshotId: string,
  lastKey: Uint8Array,
): string {
  const head = 2 + CURSOR_BINDING_BYTES + SNAPSHOT_ID_BYTES;
  const out = new Uint8Array(head + lastKey.length);
  out[0] = CURSOR_VERSION;
  out[1] = reverse ? 1 : 0;
  out.set(binding, 2);
  out.set(Uint8Array.fromHex(snapshotId), 2 + CURSOR_BINDING_BYTES);
  out.set(lastKey, head);
  return out.toBase64({ alphabet: "base64url", omitPadding: true });
}

function decodeCursor(
  text: string,
): {
  reverse: boolean;
  binding: Uint8Array;
  snapshotId: string;
  lastKey: Uint8Array;
} {
  let b: Uint8Array;
  try {
    b = Uint8Array.fromBase64(text, { alphabet: "base64url" });
  } catch {
    b = new Uint8Array(0);
  }
  const head = 2 + CURSOR_BINDING_BYTES + SNAPSHOT_ID_BYTES;
  if (b.length < head + 1 || b[0] !== CURSOR_VERSION || b[1] > 1) {
    throw new HttpError(
      400,
      "invalid_cursor",
      "cursor is not one this server issued",
    );
  }
  return {
    reverse: b[1] === 1,
    binding: b.slice(2, 2 + CURSOR_BINDING_BYTES),
    snapshotId: b.subarray(2 + CURSOR_BINDING_BYTES, head).toHex(),
    lastKey: b.slice(head),
  };
}
