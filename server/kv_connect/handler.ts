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
import { concat } from "../body.ts";
import type { Db } from "../../mod.ts";
import { errorResponse as funnel, type LogFn } from "../errors.ts";
import { badRequest, KvConnectError } from "./errors.ts";
import {
  dataPrefix,
  DEFAULT_DATABASE,
  ensureDatabaseId,
  isValidName,
  kvConnectSpace,
  MAX_NAME_LENGTH,
  readDatabaseId,
} from "./keyspace.ts";
import { ProtobufError } from "./protobuf.ts";
import { WatchHub } from "./watch.ts";
import { dataToken, requireDataToken, requireToken } from "./tokens.ts";
import { atomicWrite, snapshotRead, watch } from "./data_path.ts";
import { MAX_WATCHES, MAX_WATCHES_PER_CLIENT } from "./limits.ts";
import { errorText } from "../error_text.ts";
import { requestHeader } from "../request_headers.ts";

export {
  MAX_READ_ENTRIES,
  MAX_READ_RANGES,
  MAX_RMW_ATTEMPTS,
  MAX_WATCH_KEYS,
} from "./data_path.ts";

/** What {@link handleKvConnect} needs from the server. */
export interface KvConnectContext {
  db: Db;
  /** When set, the metadata exchange needs `Authorization: Bearer <token>`. */
  authToken?: string;
  /** Where unexpected faults are reported. Default: `console.error`. */
  log?: LogFn;
  /**
   * `scheme://host[:port]` clients reach the server at: the configured
   * public URL, or the validated Host. Version 1 endpoint URLs start with it.
   */
  origin: string;
  /** Wall clock (ms since epoch) for token expiry. Default `Date.now`. */
  clock?: () => number;
  /** The client's identity (remote address), for the per-client watch cap. */
  client?: string;
  /** Takes `n` bytes from the server's body budget (may wait or throw 503). */
  reserveBody?: (n: number) => Promise<void>;
  /** Counts a protective refusal by reason (for `/metrics`). */
  refused?: (reason: string) => void;
}

/** URL path prefix of every KV Connect route. */
export const KV_CONNECT_PATH = "/deno-kv";
/** Protocol versions served. */
export const SUPPORTED_VERSIONS: readonly number[] = [1, 2, 3];
/** How long metadata (and its data-path token) stays valid. */
export const METADATA_TTL_MS = 60 * 60 * 1000;
/** Most database names whose ids stay cached in memory. */
export const MAX_CACHED_DATABASES = 1024;
/** Largest request body. Deno's client stays below 1 MiB per write. */
export const MAX_BODY_BYTES = 8 << 20;

const DATA_METHODS = new Set(["snapshot_read", "atomic_write", "watch"]);
/** Per-store state of KV Connect. */
export interface State {
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
      s = {
        ids: new Map(),
        prefixes: new Map(),
        hub: new WatchHub(
          Date.now,
          () => db.visibleSeq,
          MAX_WATCHES,
          MAX_WATCHES_PER_CLIENT,
        ),
      },
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

/** Database ids cached in memory for `db` (bounded; for tests). */
export function kvConnectCachedDatabases(db: Db): number {
  return states.get(db)?.ids.size ?? 0;
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
  path: string,
  ctx: KvConnectContext,
): Promise<Response> {
  try {
    return await route(req, path, ctx);
  } catch (err) {
    return errorResponse(err, req, path, ctx);
  }
}

async function route(
  req: Request,
  path: string,
  ctx: KvConnectContext,
): Promise<Response> {
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
  if (parts.length < 2) return await metadata(req, ctx, state, name);
  const prefix = prefixOf(state, name);
  await checkDataPath(req, ctx, state, name);
  const body = await readBody(req, ctx);
  const space = kvConnectSpace(ctx.db);
  switch (parts[1]) {
    case "snapshot_read":
      return snapshotRead(ctx, space, prefix, body);
    case "atomic_write":
      return await atomicWrite(ctx.db, space, state, prefix, body);
    default:
      return watch(req, ctx, space, state, prefix, body);
  }
}

// ---------------------------------------------------------------- metadata

async function metadata(
  req: Request,
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
  const body = await readBody(req, ctx, 64 << 10);
  const version = negotiate(body);
  const databaseId = await databaseIdOf(ctx.db, state, name);
  // Version 1 clients do not resolve relative endpoint URLs; the origin is
  // the configured public URL or the validated Host, never raw input.
  const path = `${KV_CONNECT_PATH}/${name}`;
  const endpoint = version === 1 ? ctx.origin + path : path;
  const expiresAt = (ctx.clock ?? Date.now)() + METADATA_TTL_MS;
  return new Response(
    JSON.stringify({
      version,
      databaseId,
      endpoints: [{ url: endpoint, consistency: "strong" }],
      token: dataToken(ctx.authToken, name, expiresAt),
      expiresAt: new Date(expiresAt).toISOString(),
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
    p = ensureDatabaseId(kvConnectSpace(db), name);
    // A cache, bounded: without a token anyone can name databases, and a
    // forgotten id is read back from the store when needed.
    if (state.ids.size >= MAX_CACHED_DATABASES) {
      state.ids.delete(state.ids.keys().next().value!);
    }
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
  requireDataToken(req, ctx, name);
  const version = requestHeader(req, "x-denokv-version");
  let idHeader: string | null;
  if (version === null) {
    idHeader = requestHeader(req, "x-transaction-domain-id");
  } else {
    if (version !== "2" && version !== "3") {
      throw badRequest(
        `unsupported x-denokv-version ${
          clip(version, 16)
        } (server speaks 1, 2, 3)`,
      );
    }
    idHeader = requestHeader(req, "x-denokv-database-id");
  }
  if (idHeader === null) {
    throw badRequest(
      "missing database id header (x-denokv-database-id, or x-transaction-domain-id for version 1)",
    );
  }
  const contentType = requestHeader(req, "content-type");
  if (
    contentType !== null && !/^application\/x-protobuf\b/i.test(contentType)
  ) {
    throw new KvConnectError(
      415,
      `content-type must be application/x-protobuf, got ${clip(contentType)}`,
    );
  }
  const cached = state.ids.get(name);
  const id = cached !== undefined
    ? await cached
    : readDatabaseId(kvConnectSpace(ctx.db), name);
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

// ---------------------------------------------------------------- plumbing

/**
 * Reads the body, refusing (413) as soon as it passes `max` bytes, charging
 * the server's body budget. The REST reader (`../body.ts`) adds HTTP/1.1
 * framing checks (411, a bad Content-Length) that this protocol's clients
 * never need; the errors here are plain text, as KV Connect answers them.
 */
async function readBody(
  req: Request,
  ctx: KvConnectContext,
  max = MAX_BODY_BYTES,
): Promise<Uint8Array> {
  const length = requestHeader(req, "content-length");
  if (length !== null) {
    // The HTTP layer holds the body to its declared length, so a declared
    // size within the limit can be read in one go. `req.body` is not
    // touched first: on Deno that getter builds a stream, and
    // `arrayBuffer()` then collects through it (as in ../body.ts).
    if (Number(length) > max) throw tooLarge(max);
    await reserve(req, ctx, Number(length));
    return new Uint8Array(await req.arrayBuffer());
  }
  if (req.body === null) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = req.body.getReader();
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > max) throw tooLarge(max);
      await reserve(req, ctx, value.length);
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  return concat(chunks, size);
}

/** Takes body bytes from the server's budget; past it, 503 (the client retries). */
async function reserve(
  req: Request,
  ctx: KvConnectContext,
  n: number,
): Promise<void> {
  if (ctx.reserveBody === undefined) return;
  try {
    await ctx.reserveBody(n);
  } catch (err) {
    req.body?.cancel().catch(() => {});
    const status = (err as { status?: number }).status;
    throw new KvConnectError(
      status === 503 ? 503 : 500,
      errorText(err),
      { "retry-after": "1" },
    );
  }
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
  path: string,
  ctx: KvConnectContext,
): Response {
  if (err instanceof ProtobufError) {
    err = badRequest(`malformed protobuf: ${err.message}`);
  }
  return funnel(err, {
    format: "text",
    log: ctx.log ?? defaultLog,
    fields: { method: req.method, route: KV_CONNECT_PATH, path },
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
