/**
 * The {@link Store} over the local engine: shale's own LSM tree in a data
 * directory. What the REST routes did directly before the store interface;
 * every behaviour is the engine's.
 *
 * The write path's linearizability rule lives here: a 412 decided from a
 * write that readers cannot see yet waits until that write is visible
 * (`db.whenSettled`), and is decided again if that write failed.
 *
 * @module
 */
import {
  type BatchOp,
  type Db,
  PreconditionFailedError,
  type ReadResult,
  type Snapshot,
} from "../../mod.ts";
import { getBorrowed } from "../../engine/value_view.ts";
import { HttpError } from "../_codec.ts";
import { conditionFailure } from "../etag.ts";
import type {
  HeaderConditions,
  IfVersion,
  ScanPage,
  ScanRequest,
  Store,
  StoreEntry,
  StoreHealth,
  StoreItem,
  StoreOp,
} from "./store.ts";

/** The engine's {@link Store}. `db` stays the caller's to close. */
export class EngineStore implements Store {
  readonly kind = "engine" as const;
  readonly db: Db;

  constructor(db: Db) {
    this.db = db;
  }

  get maxKeyBytes(): number {
    return this.db.options.maxKeyBytes;
  }

  get maxValueBytes(): number {
    return this.db.options.maxValueBytes;
  }

  get(key: Uint8Array): Promise<StoreEntry | undefined> {
    return Promise.resolve(storeEntry(this.db.get(key)));
  }

  readSync<A, R>(
    key: Uint8Array,
    use: (r: StoreEntry | undefined, arg: A) => R,
    arg: A,
  ): R {
    return use(storeEntry(this.db[getBorrowed](key)), arg);
  }

  getMany(
    keys: Uint8Array[],
    maxResponseBytes: number,
  ): Promise<{ entries: (StoreEntry | undefined)[]; snapshot: string }> {
    const snapshot = this.db.snapshot();
    const entries: (StoreEntry | undefined)[] = [];
    try {
      let bytes = 0;
      for (const key of keys) {
        const r = this.db.get(key, { snapshot });
        if (r === undefined) {
          entries.push(undefined);
          continue;
        }
        bytes += r.value.length;
        if (bytes > maxResponseBytes) throw responseTooLarge(maxResponseBytes);
        entries.push({
          value: r.value,
          version: String(r.version),
          expiresAt: r.expiresAt,
        });
      }
    } finally {
      snapshot.release();
    }
    return Promise.resolve({ entries, snapshot: String(snapshot.seq) });
  }

  put(
    key: Uint8Array,
    value: Uint8Array,
    expiresAt: number | undefined,
    cond: HeaderConditions,
  ): Promise<string> {
    // Most writes are unconditional: no await for a condition then, and
    // no async frame of its own.
    if (unconditional(cond)) {
      return this.db.put(key, value, { expiresAt }).then(String);
    }
    return this.#conditionalPut(key, value, expiresAt, cond);
  }

  async #conditionalPut(
    key: Uint8Array,
    value: Uint8Array,
    expiresAt: number | undefined,
    cond: HeaderConditions,
  ): Promise<string> {
    const ifVersion = await this.#condition(key, cond);
    return String(await this.db.put(key, value, { expiresAt, ifVersion }));
  }

  async delete(key: Uint8Array, cond: HeaderConditions): Promise<void> {
    const ifVersion = unconditional(cond)
      ? undefined
      : await this.#condition(key, cond);
    await this.db.delete(key, { ifVersion });
  }

  batch(ops: StoreOp[]): Promise<string> {
    let engineOps: BatchOp[];
    try {
      engineOps = toEngineOps(ops);
    } catch (err) {
      // A promise's failure, as from the async method this was: callers
      // await it in their own try (the route's 412 with the op's index).
      return Promise.reject(err);
    }
    // Not awaited here: this frame (and `ops`) need not outlive the call.
    return this.db.batch(engineOps).then(String);
  }

  snapshot(): Snapshot {
    return this.db.snapshot();
  }

  scanPage(req: ScanRequest): Promise<ScanPage> {
    const items: StoreItem[] = [];
    let bytes = 0;
    let more = false;
    const { start, end, reverse, snapshot } = req;
    for (const item of this.db.scan({ start, end, reverse, snapshot })) {
      if (items.length >= req.limit || bytes >= req.maxBytes) {
        more = true;
        break;
      }
      items.push({
        key: item.key,
        value: item.value,
        version: String(item.version),
        expiresAt: item.expiresAt,
      });
      bytes += item.key.length + (req.keysOnly ? 0 : item.value.length);
    }
    return Promise.resolve({ items, more });
  }

  health(): Promise<StoreHealth> {
    return Promise.resolve(this.db.health());
  }

  lastHealth(): StoreHealth {
    return this.db.health();
  }

  stats(): Record<string, unknown> {
    return this.db.stats() as unknown as Record<string, unknown>;
  }

  samples(): [] {
    return [];
  }

  /** Nothing to stop: the engine is the caller's to close. */
  close(): void {}

  /**
   * Turns If-Match / If-None-Match into the engine's `ifVersion`
   * (undefined: unconditional; null: the key must not exist). The current
   * version counts writes still waiting for their fsync, and the engine
   * re-checks `ifVersion` atomically, so racing writers cannot both win. A
   * 412 decided from a write readers cannot see yet waits until that write
   * is visible (and is decided again if that write failed): answering
   * earlier would reveal a write that a following GET does not return.
   */
  async #condition(
    key: Uint8Array,
    cond: HeaderConditions,
  ): Promise<number | null | undefined> {
    if (unconditional(cond)) return undefined;
    for (;;) {
      const current = this.db.version(key);
      const failure = conditionFailure(cond.ifMatch, cond.ifNone, current);
      if (failure === undefined) return current;
      const settled = this.db.whenSettled(key);
      if (settled === undefined || await settled) throw failure;
    }
  }
}

/** Neither If-Match nor If-None-Match was sent. */
function unconditional(cond: HeaderConditions): boolean {
  return cond.ifMatch === undefined && cond.ifNone === undefined;
}

/** The 413 of a multi-get whose values pass the response limit. */
export function responseTooLarge(max: number): HttpError {
  return new HttpError(
    413,
    "response_too_large",
    `the values of these keys pass ${max} bytes; ask for fewer keys per request`,
  );
}

/**
 * The store's ops as the engine's: versions as numbers. Throws
 * PreconditionFailedError (naming the op) for a version never written.
 */
function toEngineOps(ops: StoreOp[]): BatchOp[] {
  return ops.map((op, i): BatchOp => {
    if (op.type === "deleteRange") return op;
    const ifVersion = engineVersion(op.ifVersion, i);
    if (op.type === "check") {
      return { type: "check", key: op.key, ifVersion: ifVersion ?? null };
    }
    return op.type === "put"
      ? { ...op, ifVersion }
      : { type: "delete", key: op.key, ifVersion };
  });
}

/**
 * A version string as the engine's seqno. A version past the safe-integer
 * range names no engine write, so op `i`'s condition fails (412).
 */
function engineVersion(v: IfVersion, i: number): number | null | undefined {
  if (v === undefined || v === null) return v;
  const n = Number(v);
  if (!Number.isSafeInteger(n)) {
    throw new PreconditionFailedError(
      `op ${i}: version ${v} was never written`,
      i,
    );
  }
  return n;
}

/** The store's form of the engine's read result. */
function storeEntry(r: ReadResult | undefined): StoreEntry | undefined {
  return r === undefined ? undefined : {
    value: r.value,
    version: String(r.version),
    expiresAt: r.expiresAt,
  };
}
