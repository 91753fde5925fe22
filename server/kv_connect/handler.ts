/**
 * KV Connect: serves Deno's own KV client (`Deno.openKv("http://…/deno-kv/name")`)
 * from the shale store. Protocol: denoland/denokv `proto/kv-connect.md`
 * (versions 1 to 3) and `proto/schema/datapath.proto`.
 *
 * Routes (all POST):
 *
 * ```
 * /deno-kv                       metadata exchange, database "default"
 * /deno-kv/<name>                metadata exchange, database <name>
 * /deno-kv/<name>/snapshot_read  data path (protobuf)
 * /deno-kv/<name>/atomic_write   data path (protobuf)
 * /deno-kv/<name>/watch          data path (protobuf, streamed frames)
 * ```
 *
 * Where each database's keys live: see `keyspace.ts`. Answers to requests
 * the client got wrong are 4xx with a plain-text reason; only temporary
 * conditions (store closed, read-only, I/O trouble, write contention) are
 * 5xx, because Deno's client retries 5xx answers indefinitely.
 *
 * @module
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { type Db, PreconditionFailedError } from "../../mod.ts";
import { errorResponse as funnel, type LogFn } from "../errors.ts";
import {
  failedChecks,
  parseAtomicWrite,
  type ParsedWrite,
  planBatch,
  wireEncoding,
} from "./atomic.ts";
import { badRequest, KvConnectError } from "./errors.ts";
import {
  dataPrefix,
  DEFAULT_DATABASE,
  ensureDatabaseId,
  isValidName,
  join,
  MAX_NAME_LENGTH,
  prefixEnd,
  readDatabaseId,
  toVersionstamp,
} from "./keyspace.ts";
import {
  AW_CHECK_FAILURE,
  AW_SUCCESS,
  decodeAtomicWrite,
  decodeSnapshotRead,
  decodeWatch,
  encodeAtomicWriteOutput,
  encodeSnapshotReadOutput,
  type KvEntry,
  ProtobufError,
} from "./protobuf.ts";
import { keyId, WatchHub } from "./watch.ts";

/** What {@link handleKvConnect} needs from the server. */
export interface KvConnectContext {
  db: Db;
  /** When set, the metadata exchange needs `Authorization: Bearer <token>`. */
  authToken?: string;
  /** Where unexpected faults are reported. Default: `console.error`. */
  log?: LogFn;
}

/** URL path prefix of every KV Connect route. */
export const KV_CONNECT_PATH = "/deno-kv";
/** Protocol versions served. */
export const SUPPORTED_VERSIONS: readonly number[] = [1, 2, 3];
/** How long metadata (and its data-path token) stays valid. */
export const METADATA_TTL_MS = 60 * 60 * 1000;
/** Most ranges in one snapshot read. */
export const MAX_READ_RANGES = 10;
/** Most entries one read may ask for, over all its ranges (Deno's client: 1000). */
export const MAX_READ_ENTRIES = 1000;
/** Most keys one watch may cover. */
export const MAX_WATCH_KEYS = 100;
/** Largest request body. Deno's client stays below 1 MiB per write. */
export const MAX_BODY_BYTES = 8 << 20;
/** Attempts at a sum/min/max write before answering 503 (the client retries). */
export const MAX_RMW_ATTEMPTS = 50;

const DATA_METHODS = new Set(["snapshot_read", "atomic_write", "watch"]);
const PROTO_HEADERS = { "content-type": "application/x-protobuf" };
const CHALLENGE = { "www-authenticate": 'Bearer realm="shale-kv-connect"' };
/** Token handed out when the server runs without auth (any value works then). */
const OPEN_TOKEN = "shale-no-auth";

interface State {
  /** Database ids by name, settled once per process. */
  ids: Map<string, Promise<string>>;
  /** Data key prefixes by name. */
  prefixes: Map<string, Uint8Array>;
  hub: WatchHub;
}

const states = new WeakMap<Db, State>();

function stateOf(db: Db): State {
  let s = states.get(db);
  if (!s) {
    states.set(
      db,
      s = { ids: new Map(), prefixes: new Map(), hub: new WatchHub() },
    );
  }
  return s;
}

function prefixOf(state: State, name: string): Uint8Array {
  let p = state.prefixes.get(name);
  if (p === undefined) {
    if (state.prefixes.size >= 1024) state.prefixes.clear();
    state.prefixes.set(name, p = dataPrefix(name));
  }
  return p;
}

/**
 * Ends every open watch stream on `db` (the clients reconnect). Call when the
 * server starts draining, so that graceful shutdown is not held up by
 * never-ending responses.
 */
export function closeKvConnectWatches(db: Db): void {
  states.get(db)?.hub.closeAll();
}

/** Open watch streams on `db` (for stats and tests). */
export function kvConnectWatchCount(db: Db): number {
  return states.get(db)?.hub.size ?? 0;
}

/**
 * Handles one request whose path is `/deno-kv` or starts with `/deno-kv/`.
 * Never throws: every failure is answered.
 */
export async function handleKvConnect(
  req: Request,
  url: URL,
  ctx: KvConnectContext,
): Promise<Response> {
  try {
    return await route(req, url, ctx);
  } catch (err) {
    return errorResponse(err, req, url, ctx);
  }
}

async function route(
  req: Request,
  url: URL,
  ctx: KvConnectContext,
): Promise<Response> {
  const path = url.pathname;
  let parts: string[];
  if (path === KV_CONNECT_PATH) parts = [];
  else if (path.startsWith(KV_CONNECT_PATH + "/")) {
    parts = path.slice(KV_CONNECT_PATH.length + 1).split("/");
  } else {
    throw new KvConnectError(404, `not a KV Connect path: ${clip(path)}`);
  }
  if (parts.length > 2) {
    throw new KvConnectError(404, `no KV Connect route for ${clip(path)}`);
  }
  const name = parts.length === 0 ? DEFAULT_DATABASE : parts[0];
  if (!isValidName(name)) {
    throw badRequest(
      `invalid database name ${
        JSON.stringify(clip(name))
      }: use 1 to ${MAX_NAME_LENGTH} characters from A-Z a-z 0-9 . _ -`,
    );
  }
  if (parts.length === 2 && !DATA_METHODS.has(parts[1])) {
    throw new KvConnectError(
      404,
      `unknown KV Connect method ${
        JSON.stringify(clip(parts[1]))
      } (expected snapshot_read, atomic_write or watch)`,
    );
  }
  if (req.method !== "POST") {
    throw new KvConnectError(
      405,
      `method ${clip(req.method, 16)} is not allowed; KV Connect uses POST`,
      { allow: "POST" },
    );
  }
  const state = stateOf(ctx.db);
  if (parts.length < 2) return await metadata(req, url, ctx, state, name);
  const prefix = prefixOf(state, name);
  await checkDataPath(req, ctx, state, name);
  const body = await readBody(req);
  switch (parts[1]) {
    case "snapshot_read":
      return snapshotRead(ctx.db, prefix, body);
    case "atomic_write":
      return await atomicWrite(ctx.db, state, prefix, body);
    default:
      return watch(req, ctx.db, state, prefix, body);
  }
}

// ---------------------------------------------------------------- auth

function sha256(s: string): Uint8Array {
  return createHash("sha256").update(s).digest();
}

/** Constant-time equality of a presented secret with a wanted digest. */
function matchesDigest(got: string, want: Uint8Array): boolean {
  return timingSafeEqual(sha256(got), want);
}

/** sha256 digests of expected tokens, so a request hashes only its own. */
const digests = new Map<string, Uint8Array>();

function digestOf(token: string): Uint8Array {
  let d = digests.get(token);
  if (d === undefined) {
    if (digests.size >= 1024) digests.clear();
    digests.set(token, d = sha256(token));
  }
  return d;
}

function bearer(req: Request): string | undefined {
  const h = req.headers.get("authorization");
  const m = h === null ? null : /^Bearer +(\S+) *$/i.exec(h);
  return m === null ? undefined : m[1];
}

/**
 * The data-path token of database `name`: an HMAC of the name under the
 * access token, so it is stable across restarts, differs per database, and
 * stops working when the access token changes.
 */
function dataToken(authToken: string | undefined, name: string): string {
  if (authToken === undefined) return OPEN_TOKEN;
  const memo = `${name}\0${authToken}`;
  let t = dataTokens.get(memo);
  if (t === undefined) {
    t = createHmac("sha256", authToken)
      .update(`shale kv-connect data path\0${name}`)
      .digest("base64url");
    if (dataTokens.size >= 1024) dataTokens.clear();
    dataTokens.set(memo, t);
  }
  return t;
}

const dataTokens = new Map<string, string>();

function requireToken(req: Request, want: string, what: string): void {
  const got = bearer(req);
  if (got === undefined) {
    throw new KvConnectError(
      401,
      `missing ${what} (Authorization: Bearer <token>)`,
      CHALLENGE,
    );
  }
  if (!matchesDigest(got, digestOf(want))) {
    throw new KvConnectError(401, `invalid ${what}`, CHALLENGE);
  }
}

// ---------------------------------------------------------------- metadata

async function metadata(
  req: Request,
  url: URL,
  ctx: KvConnectContext,
  state: State,
  name: string,
): Promise<Response> {
  if (ctx.authToken !== undefined) {
    requireToken(
      req,
      ctx.authToken,
      "access token (set DENO_KV_ACCESS_TOKEN to the server's token)",
    );
  }
  const body = await readBody(req, 64 << 10);
  const version = negotiate(body);
  const databaseId = await databaseIdOf(ctx.db, state, name);
  // Version 1 clients do not resolve relative endpoint URLs.
  const path = `${KV_CONNECT_PATH}/${name}`;
  const endpoint = version === 1 ? url.origin + path : path;
  return new Response(
    JSON.stringify({
      version,
      databaseId,
      endpoints: [{ url: endpoint, consistency: "strong" }],
      token: dataToken(ctx.authToken, name),
      expiresAt: new Date(Date.now() + METADATA_TTL_MS).toISOString(),
    }),
    { headers: { "content-type": "application/json" } },
  );
}

/** Picks the highest version both sides speak; no body means version 1. */
function negotiate(body: Uint8Array): number {
  if (body.length === 0) return 1;
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
  } catch {
    throw badRequest("metadata request body is not valid JSON");
  }
  const versions = (parsed as { supportedVersions?: unknown } | null)
    ?.supportedVersions;
  if (
    typeof parsed !== "object" || parsed === null || !Array.isArray(versions) ||
    !versions.every((v) => Number.isInteger(v))
  ) {
    throw badRequest(
      'metadata request body must be {"supportedVersions": [integers]}',
    );
  }
  let best = 0;
  for (const v of versions as number[]) {
    if (SUPPORTED_VERSIONS.includes(v) && v > best) best = v;
  }
  if (best === 0) {
    throw badRequest(
      `no common protocol version: client speaks ${
        clip(versions.join(", "))
      }, server speaks ${SUPPORTED_VERSIONS.join(", ")}`,
    );
  }
  return best;
}

function databaseIdOf(db: Db, state: State, name: string): Promise<string> {
  let p = state.ids.get(name);
  if (p === undefined) {
    p = ensureDatabaseId(db, name);
    state.ids.set(name, p);
    // A failure (store closed, I/O) must not stick: forget it so the next
    // exchange tries again.
    p.catch(() => state.ids.delete(name));
  }
  return p;
}

// ---------------------------------------------------------------- data path

async function checkDataPath(
  req: Request,
  ctx: KvConnectContext,
  state: State,
  name: string,
): Promise<void> {
  requireToken(req, dataToken(ctx.authToken, name), "data-path token");
  const version = req.headers.get("x-denokv-version");
  let idHeader: string | null;
  if (version === null) {
    idHeader = req.headers.get("x-transaction-domain-id");
  } else {
    if (version !== "2" && version !== "3") {
      throw badRequest(
        `unsupported x-denokv-version ${
          clip(version, 16)
        } (server speaks 1, 2, 3)`,
      );
    }
    idHeader = req.headers.get("x-denokv-database-id");
  }
  if (idHeader === null) {
    throw badRequest(
      "missing database id header (x-denokv-database-id, or x-transaction-domain-id for version 1)",
    );
  }
  const contentType = req.headers.get("content-type");
  if (
    contentType !== null && !/^application\/x-protobuf\b/i.test(contentType)
  ) {
    throw new KvConnectError(
      415,
      `content-type must be application/x-protobuf, got ${clip(contentType)}`,
    );
  }
  const cached = state.ids.get(name);
  const id = cached !== undefined ? await cached : readDatabaseId(ctx.db, name);
  if (id === undefined) {
    throw new KvConnectError(
      404,
      `database ${name} does not exist yet; do the metadata exchange first (POST ${KV_CONNECT_PATH}/${name})`,
    );
  }
  if (idHeader.toLowerCase() !== id) {
    throw badRequest(
      `database id ${
        clip(idHeader, 40)
      } does not match database ${name} (${id}); reopen the database`,
    );
  }
}

function toEntry(
  prefixLength: number,
  key: Uint8Array,
  value: Uint8Array,
  encoding: number,
  seq: number,
): KvEntry {
  return {
    key: key.subarray(prefixLength),
    value,
    encoding: wireEncoding(encoding),
    versionstamp: toVersionstamp(seq),
  };
}

function compare(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

function snapshotRead(db: Db, prefix: Uint8Array, body: Uint8Array): Response {
  const ranges = decodeSnapshotRead(body);
  if (ranges.length > MAX_READ_RANGES) {
    throw badRequest(
      `too many ranges in one read (${ranges.length} > ${MAX_READ_RANGES})`,
    );
  }
  let total = 0;
  ranges.forEach((r, i) => {
    if (r.limit <= 0 || r.limit > MAX_READ_ENTRIES) {
      throw badRequest(
        `range ${i}: limit must be 1 to ${MAX_READ_ENTRIES}, got ${r.limit}`,
      );
    }
    total += r.limit;
  });
  // Returning fewer entries than asked would end the client's listing early,
  // so an over-large read is refused rather than cut short.
  if (total > MAX_READ_ENTRIES) {
    throw badRequest(
      `the ranges of one read ask for ${total} entries; at most ${MAX_READ_ENTRIES}`,
    );
  }
  const out: KvEntry[][] = [];
  const snapshot = db.snapshot();
  try {
    for (const r of ranges) {
      const start = join(prefix, r.start);
      const end = r.end.length === 0 ? prefixEnd(prefix) : join(prefix, r.end);
      const entries: KvEntry[] = [];
      if (compare(start, end) < 0) {
        for (
          const item of db.scan({
            start,
            end,
            reverse: r.reverse,
            limit: r.limit,
            snapshot,
          })
        ) {
          entries.push(
            toEntry(
              prefix.length,
              item.key,
              item.value,
              item.encoding,
              item.version,
            ),
          );
        }
      }
      out.push(entries);
    }
  } finally {
    snapshot.release();
  }
  return new Response(encodeSnapshotReadOutput(out), {
    headers: PROTO_HEADERS,
  });
}

async function atomicWrite(
  db: Db,
  state: State,
  prefix: Uint8Array,
  body: Uint8Array,
): Promise<Response> {
  const parsed = parseAtomicWrite(decodeAtomicWrite(body), prefix);
  if (parsed.checks.some((c) => c.seq === -1)) return checkFailure(db, parsed);
  for (let attempt = 0; attempt < MAX_RMW_ATTEMPTS; attempt++) {
    const plan = planBatch(db, parsed);
    if (plan.ops.length === 0) {
      return writeOutput(AW_SUCCESS, toVersionstamp(db.visibleSeq));
    }
    let seq: number;
    try {
      seq = await db.batch(plan.ops);
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
      if (err.index < parsed.checks.length) return checkFailure(db, parsed);
      // A key read for sum/min/max changed (or its write is still syncing):
      // wait a moment and recompute.
      await new Promise((r) => setTimeout(r, Math.min(1 + attempt, 10)));
      continue;
    }
    state.hub.notify(plan.touched.map(keyId));
    return writeOutput(AW_SUCCESS, toVersionstamp(seq));
  }
  throw new KvConnectError(
    503,
    "too much contention on the keys of this sum/min/max; retry",
  );
}

function checkFailure(db: Db, parsed: ParsedWrite): Response {
  const failed = failedChecks(db, parsed);
  return writeOutput(AW_CHECK_FAILURE, new Uint8Array(0), failed);
}

function writeOutput(
  status: number,
  versionstamp: Uint8Array,
  failed: number[] = [],
): Response {
  return new Response(encodeAtomicWriteOutput(status, versionstamp, failed), {
    headers: PROTO_HEADERS,
  });
}

function watch(
  req: Request,
  db: Db,
  state: State,
  prefix: Uint8Array,
  body: Uint8Array,
): Response {
  const keys = decodeWatch(body);
  if (keys.length === 0) throw badRequest("a watch needs at least one key");
  if (keys.length > MAX_WATCH_KEYS) {
    throw badRequest(
      `too many keys in one watch (${keys.length} > ${MAX_WATCH_KEYS})`,
    );
  }
  keys.forEach((k, i) => {
    if (k.length === 0) throw badRequest(`watch key ${i} is empty`);
  });
  const full = keys.map((k) => join(prefix, k));
  const read = (key: Uint8Array): KvEntry | undefined => {
    const r = db.get(key);
    return r === undefined
      ? undefined
      : toEntry(prefix.length, key, r.value, r.encoding, r.version);
  };
  // Read once up front so that a bad key or a closed store is answered
  // here, with a status, rather than by a stream that errors.
  for (const k of full) read(k);
  const stream = state.hub.open(full, read, req.signal);
  // The stream is length-prefixed frames, not one protobuf message:
  // `@deno/kv` (Node) refuses any type but application/octet-stream here.
  return new Response(stream, {
    headers: {
      "content-type": "application/octet-stream",
      "cache-control": "no-store",
    },
  });
}

// ---------------------------------------------------------------- plumbing

/** Reads the body, refusing (413) as soon as it passes `max` bytes. */
async function readBody(
  req: Request,
  max = MAX_BODY_BYTES,
): Promise<Uint8Array> {
  if (req.body === null) return new Uint8Array(0);
  const length = req.headers.get("content-length");
  if (length !== null) {
    // The HTTP layer holds the body to its declared length, so a declared
    // size within the limit can be read in one go.
    if (Number(length) > max) throw tooLarge(max);
    return new Uint8Array(await req.arrayBuffer());
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = req.body.getReader();
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > max) throw tooLarge(max);
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

function tooLarge(max: number): KvConnectError {
  return new KvConnectError(413, `request body exceeds ${max} bytes`);
}

/**
 * The server's error funnel, in plain text: engine faults (5xx) answer the
 * code's fixed message, never the engine's, which names files and offsets.
 */
function errorResponse(
  err: unknown,
  req: Request,
  url: URL,
  ctx: KvConnectContext,
): Response {
  if (err instanceof ProtobufError) {
    err = badRequest(`malformed protobuf: ${err.message}`);
  }
  return funnel(err, {
    format: "text",
    log: ctx.log ?? defaultLog,
    fields: { method: req.method, route: KV_CONNECT_PATH, path: url.pathname },
  });
}

function defaultLog(
  level: string,
  message: string,
  fields?: Record<string, unknown>,
): void {
  console.error(level, message, fields ?? "");
}

function clip(s: string, max = 80): string {
  return s.length <= max ? s : s.slice(0, max) + "…";
}
