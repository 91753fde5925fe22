/**
 * The options of `createHandler` (`app.ts`): the limits, clocks and
 * collaborators a server is built from, each documented with its default,
 * and {@link serverEnv}, which applies those defaults.
 *
 * @module
 */
import { Db } from "../mod.ts";
import { BodyBudget } from "./body_budget.ts";
import type { ServerEnv } from "./context.ts";
import { CursorSnapshots } from "./cursors.ts";
import type { LogFn } from "./errors.ts";
import { Metrics } from "./metrics.ts";
import { Refusals } from "./refusals.ts";
import type { WatchOptions } from "./routes/watch.ts";
import { EngineStore } from "./store/engine_store.ts";
import type { Store } from "./store/store.ts";
import type { ScopedToken } from "./token_file.ts";

/** Options for `createHandler` (`app.ts`); every field has a default. */
export interface HandlerOptions {
  /** When set, every route but `/health` needs `Authorization: Bearer <token>`. */
  authToken?: string;
  /**
   * Tokens limited to a key prefix and a mode (`--token-file`); they reach
   * the `/kv/` routes only. Needs `authToken` (the admin token).
   */
  scopedTokens?: ScopedToken[];
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

/**
 * The server's shared state for `source` (the engine, or any `Store`), with
 * every option missing from `options` at its default.
 */
export function serverEnv(
  source: Db | Store,
  options: HandlerOptions,
): ServerEnv {
  const log: LogFn = options.log ??
    ((level, message, fields) => console.error(level, message, fields ?? ""));
  const db = source instanceof Db ? source : undefined;
  const store = db !== undefined ? new EngineStore(db) : source as Store;
  return {
    store,
    db,
    limits: {
      maxKeyBytes: options.maxKeyBytes ?? db?.options.maxKeyBytes ??
        store.maxKeyBytes,
      maxValueBytes: options.maxValueBytes ?? db?.options.maxValueBytes ??
        store.maxValueBytes,
      maxBatchBytes: options.maxBatchBytes ?? 8 << 20,
      maxBatchOps: options.maxBatchOps ?? 10000,
      maxScanLimit: options.maxScanLimit ?? 10000,
      maxPageBytes: options.maxPageBytes ?? 4 << 20,
    },
    clock: options.clock ?? Date.now,
    monotonic: options.monotonic ?? (() => performance.now()),
    log,
    metrics: options.metrics ?? new Metrics(),
    budget: new BodyBudget(
      options.maxBodyMemoryBytes ?? 32 << 20,
      options.bodyWaitMs ?? 1000,
    ),
    refusals: new Refusals(),
    cursors: new CursorSnapshots({
      ttlMs: options.cursorTtlMs ?? 60_000,
      maxAgeMs: options.cursorMaxAgeMs ?? 60_000,
      max: options.maxCursors ?? 1000,
      maxPerClient: options.maxCursorsPerClient ?? 100,
    }, log),
    draining: false,
  };
}
