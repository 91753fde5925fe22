/**
 * What the REST routes need from the data behind them: the {@link Store}.
 * Two implementations: the local engine (`engine_store.ts`, shale's own
 * LSM tree) and a KV Connect backend (`kv_connect_store.ts`: Deno Deploy
 * KV, denokv, or another shale), which makes shale a stateless gateway.
 *
 * Versions are decimal strings: the engine's seqnos, or a backend's 80-bit
 * versionstamps as decimal numbers. Both only grow, so an ETag never goes
 * back.
 *
 * @module
 */
import type { BatchOp, Snapshot } from "../../mod.ts";
import type { Tags } from "../etag.ts";
import type { Sample } from "../metrics.ts";

/** A key's current value. `expiresAt` is ms since epoch, 0 when none or unknown. */
export interface StoreEntry {
  value: Uint8Array;
  version: string;
  expiresAt: number;
}

/** One item of a scan page. */
export interface StoreItem {
  key: Uint8Array;
  value: Uint8Array;
  version: string;
  /** ms since epoch; 0 for never, or unknown (KV Connect reads carry no expiry). */
  expiresAt: number;
}

/**
 * A condition on a key: undefined (none), null (the key must be absent) or
 * the version it must have.
 */
export type IfVersion = string | null | undefined;

/** One op of an atomic batch. */
export type StoreOp =
  | {
    type: "put";
    key: Uint8Array;
    value: Uint8Array;
    expiresAt?: number;
    ifVersion?: IfVersion;
  }
  | { type: "delete"; key: Uint8Array; ifVersion?: IfVersion }
  | { type: "check"; key: Uint8Array; ifVersion: string | null }
  | Extract<BatchOp, { type: "deleteRange" }>;

/** If-Match / If-None-Match of a single-key write, parsed. */
export interface HeaderConditions {
  ifMatch?: Tags;
  ifNone?: Tags;
}

/** One page of a scan over `[start, end)`. */
export interface ScanRequest {
  start?: Uint8Array;
  end?: Uint8Array;
  reverse: boolean;
  /** Most items. */
  limit: number;
  /** The page ends once its keys (and values unless keysOnly) pass this. */
  maxBytes: number;
  keysOnly: boolean;
  /** Read at this snapshot (engine only); the latest state otherwise. */
  snapshot?: Snapshot;
}

/** A scan page, and whether more items follow it. */
export interface ScanPage {
  items: StoreItem[];
  more: boolean;
}

/** What `/health` says about the store. */
export interface StoreHealth {
  ok: boolean;
  /** snake_case reason when not ok. */
  code?: string;
  /** Details for the log (may name files; never sent to clients). */
  reason?: string;
  /** A message safe for clients, when the store has one. */
  message?: string;
}

/** The data behind the REST routes. Every method may throw `ShaleError` or `HttpError`. */
export interface Store {
  /** "engine" or "kv_connect": which routes beyond the data API exist. */
  readonly kind: "engine" | "kv_connect";
  /** Largest key the store takes (the REST default of `maxKeyBytes`). */
  readonly maxKeyBytes: number;
  /** Largest value the store takes (the REST default of `maxValueBytes`). */
  readonly maxValueBytes: number;
  /** The current value of `key`, or undefined. */
  get(key: Uint8Array): Promise<StoreEntry | undefined>;
  /**
   * `use(r, arg)` of the same answer `r` as {@link get}, synchronously, for
   * a store that reads without waiting (the engine): `GET /kv/{key}` then
   * answers without a promise. The entry's value may be borrowed (a view
   * into a mapped table): it is valid only while `use` runs, which copies
   * what it keeps (a `Response` copies its body). `arg` spares the caller a
   * closure per request. Absent where reads wait for I/O.
   */
  readSync?<A, R>(
    key: Uint8Array,
    use: (r: StoreEntry | undefined, arg: A) => R,
    arg: A,
  ): R;
  /**
   * Reads `keys` at one snapshot, in order; `snapshot` names it (for a
   * backend: the highest version read, a lower bound). Throws 413
   * `response_too_large` when the values pass `maxResponseBytes`.
   */
  getMany(
    keys: Uint8Array[],
    maxResponseBytes: number,
  ): Promise<{ entries: (StoreEntry | undefined)[]; snapshot: string }>;
  /** Writes `value`, conditional on the headers; resolves with its version. */
  put(
    key: Uint8Array,
    value: Uint8Array,
    expiresAt: number | undefined,
    cond: HeaderConditions,
  ): Promise<string>;
  /** Deletes `key`, conditional on the headers. */
  delete(key: Uint8Array, cond: HeaderConditions): Promise<void>;
  /**
   * Applies `ops` atomically; resolves with the commit's version. A failed
   * condition throws `PreconditionFailedError` with the op's index.
   */
  batch(ops: StoreOp[]): Promise<string>;
  /** A snapshot for paging cursors, or undefined when the store has none. */
  snapshot(): Snapshot | undefined;
  /** One page of a scan. */
  scanPage(req: ScanRequest): Promise<ScanPage>;
  /** Whether the store can serve now (a backend is asked). */
  health(): Promise<StoreHealth>;
  /** The last known health, without asking (for `/stats`). */
  lastHealth(): StoreHealth;
  /** Counters for `/stats` (under "engine" or "backend"). */
  stats(): Record<string, unknown>;
  /** Samples for `/metrics`. */
  samples(): Sample[];
  /** Stops background work (a backend's health probe); the engine stays open. */
  close?(): void;
}
