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
import process from "node:process";
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
import { checkSite, requestTarget, requireJson } from "./guard.ts";
import { BodyBudget, type BodyLease } from "./body_budget.ts";
import { checkJsonDepth } from "./json_depth.ts";
import { REFUSAL_REASONS, Refusals } from "./refusals.ts";
import { backupResponse } from "./backup_route.ts";
import { type WatchOptions, WatchRoute } from "./routes/watch.ts";
import {
  closeKvConnectWatches,
  handleKvConnect,
  kvConnectWatchCount,
} from "./kv_connect/handler.ts";
import { type StatsBody, StatsStreams } from "./routes/stats_stream.ts";
import { isUiPath, uiResponse } from "./routes/ui.ts";
import { multiGet } from "./routes/multi_get.ts";

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
  /** Largest `/kv/batch` body in bytes. Default 8 MiB. */
  maxBatchBytes?: number;
  /** Most ops in one batch. Default 10000. */
  maxBatchOps?: number;
  /** Largest `limit` of `/kv/range`. Default 10000. */
  maxScanLimit?: number;
  /** A range page stops once its keys and values pass this many bytes. Default 4 MiB. */
  maxPageBytes?: number;
  /** How long a paging cursor keeps its snapshot after last use. Default 60 s. */
  cursorTtlMs?: number;
  /**
   * Oldest a cursor's snapshot may get, however often it is used; past it
   * the cursor is refused (410 `cursor_expired`). Default 60 s.
   */
  cursorMaxAgeMs?: number;
  /** Most snapshots held for cursors; the least recently used goes first. Default 1000. */
  maxCursors?: number;
  /**
   * Most cursor snapshots one client (remote address) holds; its own least
   * recently used goes first. Default 100.
   */
  maxCursorsPerClient?: number;
  /**
   * Bytes of request bodies read at once over all requests; past it a
   * request waits up to `bodyWaitMs`, then gets 503 `overloaded`. A batch
   * is charged three times its size (text and parsed copies). Default 32 MiB.
   */
  maxBodyMemoryBytes?: number;
  /** How long a body waits for room in `maxBodyMemoryBytes`. Default 1000 ms. */
  bodyWaitMs?: number;
  /** Host names (no port) served without a token besides loopback ones. */
  allowHosts?: string[];
  /** Origins (`https://app.example`) whose browser requests are allowed. */
  allowOrigins?: string[];
  /** Base URL clients reach the server at (KV Connect endpoint URLs). */
  publicUrl?: string;
  /** Monotonic clock in ms for cursor ages. Default `performance.now`. */
  monotonic?: () => number;
  /** Wall clock for `?ttl=` (ms since epoch). Default `Date.now`. */
  clock?: () => number;
  /** Where server faults are reported. Default: `console.error`. */
  log?: LogFn;
  /** Period of `/stats/stream` events in ms. Default 1000. */
  statsStreamIntervalMs?: number;
  /** Counters to update; a fresh {@link Metrics} when omitted. */
  metrics?: Metrics;
  /** The change feed's pacing (`GET /kv/watch`, `routes/watch.ts`). */
  watch?: WatchOptions;
}

/** What the listener knows about the client (`Deno.ServeHandlerInfo`). */
export interface ClientInfo {
  remoteAddr?: { hostname?: string };
}

/** The request handler plus the few controls `main.ts` needs. */
export interface Handler {
  (req: Request, info?: ClientInfo): Promise<Response>;
  /** The counters this handler updates. */
  readonly metrics: Metrics;
  /** Requests refused to protect the server, by reason. */
  readonly refusals: Refusals;
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
  /** Validated `host[:port]` the request was sent to. */
  authority: string;
  /** Metrics label of the matched route. */
  route: string;
  /** Who holds cursors: the remote address ("local" in-process). */
  client: string;
  /** This request's share of the body budget. */
  lease: BodyLease;
}

interface HeldSnapshot {
  snapshot: Snapshot;
  expiresAt: number;
  /** When the snapshot was taken; it is refused past `cursorMaxAgeMs`. */
  createdAt: number;
  client: string;
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
  const maxBatchBytes = options.maxBatchBytes ?? 8 << 20;
  const maxBatchOps = options.maxBatchOps ?? 10000;
  const maxScanLimit = options.maxScanLimit ?? 10000;
  const maxPageBytes = options.maxPageBytes ?? 4 << 20;
  const cursorTtlMs = options.cursorTtlMs ?? 60_000;
  const maxCursors = options.maxCursors ?? 1000;
  const cursorMaxAgeMs = options.cursorMaxAgeMs ?? 60_000;
  const maxCursorsPerClient = options.maxCursorsPerClient ?? 100;
  const monotonic = options.monotonic ?? (() => performance.now());
  const budget = new BodyBudget(
    options.maxBodyMemoryBytes ?? 32 << 20,
    options.bodyWaitMs ?? 1000,
  );
  const refusals = new Refusals();
  const site = {
    tokenRequired: options.authToken !== undefined,
    allowHosts: new Set((options.allowHosts ?? []).map((h) => h.toLowerCase())),
    allowOrigins: new Set(
      (options.allowOrigins ?? []).map((o) => o.toLowerCase()),
    ),
  };
  const clock = options.clock ?? Date.now;
  const log: LogFn = options.log ??
    ((level, message, fields) => console.error(level, message, fields ?? ""));
  const metrics = options.metrics ?? new Metrics();
  const tokenDigest = options.authToken === undefined
    ? undefined
    : sha256(options.authToken);
  /** Cursor snapshots by hex id, least recently used first. */
  const held = new Map<string, HeldSnapshot>();
  /** Cursors held per client, for the per-client share. */
  const heldBy = new Map<string, number>();
  /** Ids of snapshots released for age, so their cursors get 410, not a silent restart. */
  const agedOut = new Set<string>();
  let draining = false;
  let cursorsExpired = 0;
  const statsStreams = new StatsStreams({
    stats: statsBody,
    latency: () => metrics.latencyCounts(isDataRoute),
  }, options.statsStreamIntervalMs);
  const watch = new WatchRoute(db, { log, ...options.watch });

  function releaseExpired(now: number): void {
    for (const [id, h] of held) {
      if (h.expiresAt > now && held.size <= maxCursors) break;
      dropHeld(id, h, now);
    }
  }

  function dropHeld(id: string, h: HeldSnapshot, now: number): void {
    unhold(id, h);
    cursorsExpired++;
    if (h.createdAt + cursorMaxAgeMs <= now) {
      agedOut.add(id);
      // Ids only (16 bytes each), bounded: the oldest are forgotten first.
      if (agedOut.size > 4 * maxCursors) {
        agedOut.delete(agedOut.values().next().value!);
      }
    }
    releaseQuietly(h.snapshot);
  }

  /** Takes `id` out of `held` (the caller owns its snapshot from then on). */
  function unhold(id: string, h: HeldSnapshot): void {
    if (!held.delete(id)) return;
    const n = (heldBy.get(h.client) ?? 1) - 1;
    if (n <= 0) heldBy.delete(h.client);
    else heldBy.set(h.client, n);
  }

  function hold(id: string, h: HeldSnapshot, now: number): void {
    // A client past its share gives up its own least recently used cursor,
    // so it cannot evict the cursors of others.
    if ((heldBy.get(h.client) ?? 0) >= maxCursorsPerClient) {
      for (const [oid, o] of held) {
        if (o.client === h.client) {
          dropHeld(oid, o, now);
          break;
        }
      }
    }
    held.set(id, h);
    heldBy.set(h.client, (heldBy.get(h.client) ?? 0) + 1);
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
      const scheme = req.url.slice(0, req.url.indexOf(":"));
      return await handleKvConnect(req, path, {
        db,
        authToken: options.authToken,
        log,
        origin: options.publicUrl ?? `${scheme}://${ctx.authority}`,
        clock,
        client: ctx.client,
        reserveBody: (n) => ctx.lease.take(n),
        refused: (reason) => refusals.count(reason),
      });
    }
    if (isUiPath(path)) {
      // The dashboard's files are public; the API calls it makes are not.
      ctx.route = "/ui";
      return readOnly(ctx, READ_ALLOW, () => ui(ctx));
    }
    checkAuth(req);
    if (path.startsWith("/kv/")) {
      const rest = path.slice(4);
      if (rest === "range") {
        ctx.route = "/kv/range";
        return readOnly(ctx, READ_ALLOW, () => range(ctx));
      }
      if (rest === "get") {
        ctx.route = "/kv/get";
        return await multiGet(req, {
          db,
          readBody: async (_req, limit, code, what) => {
            const body = await readBody(ctx, limit, code, what);
            checkJsonDepth(body, what);
            return body;
          },
          checkKey: () => {}, // every key of 1..maxKeyBytes is the user's
          maxKeyBytes,
        });
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
    if (path === "/stats/stream") {
      ctx.route = "/stats/stream";
      return readOnly(ctx, READ_ALLOW, () => {
        parseQuery(ctx.query, []);
        // HEAD gets the headers only: the stream never ends, so a body to
        // measure and drop would never finish.
        return req.method === "HEAD"
          ? statsStreams.head()
          : statsStreams.open(req.signal);
      });
    }
    if (path === "/metrics") {
      ctx.route = "/metrics";
      return readOnly(ctx, READ_ALLOW, () => prometheus(ctx));
    }
    if (path === "/admin/backup") {
      ctx.route = "/admin/backup";
      if (method === "GET") return backupResponse(db, ctx.query);
      return methodNotAllowed(method, "GET");
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
    return json(200, statsBody());
  }

  function statsBody(): StatsBody {
    const mem = process.memoryUsage();
    return {
      engine: db.stats(),
      server: {
        ...metrics.toJSON(),
        cursors: { open: held.size, expired: cursorsExpired },
        bodyBytesInFlight: budget.used,
        refused: refusals.toJSON(),
        health: draining ? { ok: false, code: "not_ready" } : db.health(),
        statsStreams: statsStreams.size,
        kvConnectWatches: kvConnectWatchCount(db),
        watchStreams: watch.open,
        memory: {
          rss: mem.rss,
          heapUsed: mem.heapUsed,
          heapTotal: mem.heapTotal,
          external: mem.external,
        },
      },
    };
  }

  function ui(ctx: Ctx): Response {
    parseQuery(ctx.query, []);
    const res = uiResponse(ctx.path);
    if (res === undefined) {
      throw new HttpError(
        404,
        "unknown_route",
        `no route for ${clip(ctx.path)}`,
      );
    }
    return res;
  }

  function prometheus(ctx: Ctx): Response {
    parseQuery(ctx.query, []);
    const body = metrics.render(db.stats(), [
      {
        name: "shale_http_body_bytes_in_flight",
        help: "Request body bytes held against --max-body-memory.",
        type: "gauge",
        value: budget.used,
      },
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
    return new Response(body + refusals.render().join("\n") + "\n", {
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
    // Also on GET: the listener bounds large responses by this header
    // without touching the body (response_guard.ts).
    headers["content-length"] = String(r.value.length);
    if (ctx.req.method === "HEAD") {
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
      ctx,
      maxValueBytes,
      "value_too_large",
      "value",
    );
    const ifVersion = await conditionFor(ctx.req, key);
    const version = await db.put(key, value, { expiresAt, ifVersion });
    return new Response(null, {
      status: 204,
      headers: { etag: `"${version}"` },
    });
  }

  async function deleteKey(ctx: Ctx, key: Uint8Array): Promise<Response> {
    parseQuery(ctx.query, []);
    const ifVersion = await conditionFor(ctx.req, key);
    await db.delete(key, { ifVersion });
    return new Response(null, { status: 204 });
  }

  /**
   * Turns If-Match / If-None-Match into the engine's `ifVersion`. The current
   * version counts writes still waiting for their fsync, and the engine
   * re-checks `ifVersion` atomically, so racing writers cannot both win. A
   * 412 decided from a write readers cannot see yet waits until that write
   * is visible (and is decided again if that write failed): answering
   * earlier would reveal a write that a following GET does not return.
   */
  async function conditionFor(
    req: Request,
    key: Uint8Array,
  ): Promise<number | null | undefined> {
    const ifMatch = parseTags(req.headers.get("if-match"), "If-Match");
    const ifNone = parseTags(req.headers.get("if-none-match"), "If-None-Match");
    if (ifMatch === undefined && ifNone === undefined) return undefined;
    for (;;) {
      const current = db.version(key);
      const failure = conditionFailure(ifMatch, ifNone, current);
      if (failure === undefined) return current;
      const settled = db.whenSettled(key);
      if (settled === undefined || await settled) throw failure;
    }
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

    const now = monotonic();
    releaseExpired(now);
    let snapshot: Snapshot | undefined;
    let snapshotId: string | undefined;
    // A cursor only continues the range it was made for: limit and
    // keys_only may change between pages, the bounds may not.
    const binding = cursorBinding(p.get("start"), p.get("end"), prefix);
    let createdAt = now;
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
      if (h !== undefined && h.createdAt + cursorMaxAgeMs <= now) {
        dropHeld(c.snapshotId, h, now);
      }
      if (agedOut.has(c.snapshotId)) {
        throw new HttpError(
          410,
          "cursor_expired",
          `the cursor's snapshot is older than the limit of ${cursorMaxAgeMs} ms; start the scan again`,
        );
      }
      if (h !== undefined) {
        // Move to the back of the LRU order.
        unhold(c.snapshotId, h);
        snapshot = h.snapshot;
        snapshotId = c.snapshotId;
        createdAt = h.createdAt;
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
      releaseQuietly(snapshot);
      throw err;
    }
    let next = "null";
    if (more && lastKey !== undefined) {
      snapshotId ??= randomId();
      hold(snapshotId, {
        snapshot,
        expiresAt: Math.min(now + cursorTtlMs, createdAt + cursorMaxAgeMs),
        createdAt,
        client: ctx.client,
      }, now);
      releaseExpired(now);
      next = `"${encodeCursor(reverse, binding, snapshotId, lastKey)}"`;
    } else {
      releaseQuietly(snapshot);
    }
    return new Response(`{"items":[${parts.join(",")}],"next":${next}}`, {
      headers: JSON_HEADERS,
    });
  }

  async function batch(ctx: Ctx): Promise<Response> {
    parseQuery(ctx.query, []);
    // A browser page can send text/plain without a preflight; JSON cannot.
    requireJson(ctx.req);
    const body = await readBody(
      ctx,
      maxBatchBytes,
      "payload_too_large",
      "batch body",
    );
    checkJsonDepth(body, "batch body");
    // Decoding and parsing hold about two more copies of the body (the text,
    // then the parsed strings and their decoded bytes): charge them too.
    await ctx.lease.take(2 * body.length);
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
    ctx: Ctx,
    limit: number,
    tooLargeCode: string,
    what: string,
  ): Promise<Uint8Array> {
    const req = ctx.req;
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
      try {
        await ctx.lease.take(Number(lengthHeader));
      } catch (err) {
        // Refused (503 overloaded): let the HTTP layer drop the unread body.
        req.body.cancel().catch(() => {});
        throw err;
      }
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
        try {
          await ctx.lease.take(value.length);
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

  const handler = async (
    req: Request,
    info?: ClientInfo,
  ): Promise<Response> => {
    const t0 = performance.now();
    metrics.begin();
    const ctx: Ctx = {
      req,
      path: "/",
      query: "",
      authority: "",
      route: "other",
      client: info?.remoteAddr?.hostname ?? "local",
      lease: budget.lease(),
    };
    let res: Response;
    try {
      // Route from the request path only: Deno builds req.url from Host.
      const target = requestTarget(req);
      ctx.path = target.path;
      ctx.query = target.query;
      ctx.authority = target.authority;
      // /health stays reachable for probes by any name; it reveals nothing.
      if (target.path !== "/health") checkSite(req, target, site);
      res = await dispatch(ctx);
    } catch (err) {
      const code = (err as { code?: unknown } | null)?.code;
      if (typeof code === "string" && REFUSAL_REASONS.has(code)) {
        refusals.count(code);
      }
      res = errorResponse(err, {
        format: "json",
        log,
        fields: { method: req.method, route: ctx.route },
      });
    } finally {
      ctx.lease.release();
    }
    if (held.size > 0) releaseExpired(monotonic());
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
    refusals,
    drain() {
      draining = true;
      closeKvConnectWatches(db);
      statsStreams.closeAll();
      watch.close();
    },
    close() {
      statsStreams.closeAll();
      for (const h of held.values()) releaseQuietly(h.snapshot);
      held.clear();
    },
  });
}

// ---- helpers --------------------------------------------------------------

/** Routes whose latency the stats stream reports: the data API, not monitoring. */
function isDataRoute(route: string): boolean {
  return route.startsWith("/kv/") || route === "/deno-kv";
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

/** The 412 that If-Match / If-None-Match give at `current`, or undefined. */
function conditionFailure(
  ifMatch: Tags | undefined,
  ifNone: Tags | undefined,
  current: number | null,
): HttpError | undefined {
  if (ifMatch !== undefined) {
    if (current === null || !tagsMatch(ifMatch, current, true)) {
      return new HttpError(
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
      return new HttpError(
        412,
        "precondition_failed",
        `If-None-Match failed: the key exists at version ${current}`,
        { etag: `"${current}"` },
      );
    }
  }
  return undefined;
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
