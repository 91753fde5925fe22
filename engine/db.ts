/**
 * The database's public surface: {@link open} and the {@link Db} methods,
 * each with its guarantees and errors, over db_impl.ts (LevelDB's db.h over
 * DBImpl). Writes: write.ts decides conditions, commit.ts group-commits
 * (nothing is visible before it is durable). Reads: read.ts, synchronous, at
 * a snapshot. Background: scheduler.ts, flushes and compactions in workers.
 * See ../shared/DESIGN.md.
 *
 * @module
 */
import type { ChangeHistory } from "./changes.ts";
import type { ResolvedOptions } from "./options.ts";
import {
  type BatchOp,
  type DbOptions,
  type KeySpace,
  type PutOptions,
  type ReadResult,
  type RecoveryInfo,
  type ScanItem,
  type ScanOptions,
  type Snapshot,
  USER_KEY_SPACE,
} from "./types.ts";
import { deleteOp, deleteRangeOp, putOp } from "./batch.ts";
import { checkKeySpaceId, KeySpaces } from "./key_space.ts";
import type { BackupPin } from "./backup.ts";
import { DbImpl } from "./db_impl.ts";
import { getBorrowed } from "./value_view.ts";

/**
 * Opens (creating if needed) the database in `dir`: takes the directory's
 * lock, replays the WAL and checks the manifest against the files, so every
 * write acknowledged before a crash is readable again.
 *
 * @example Open a store
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "../mod.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const db = await open(dir, { sync: "always" });
 * assert.equal(db.health().ok, true);
 * assert.equal(db.recovery.walRecords, 0); // a new store replays nothing
 * await db.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @throws {LockedError} when another process (or another open Db) holds `dir`.
 * @throws {InvalidArgumentError} when an option is out of range.
 * @throws {CorruptionError} when stored data fails a check (and `salvage` is off).
 * @throws {FormatVersionError} when `dir` holds an older on-disk format.
 */
export function open(dir: string, options?: DbOptions): Promise<Db> {
  return Db.open(dir, options);
}

/**
 * A shale database. Create one with {@link open}.
 */
export class Db implements KeySpace {
  /** The data directory. */
  readonly dir: string;
  /** The options in force, every default filled in. */
  readonly options: ResolvedOptions;
  #impl: DbImpl;
  #spaces: KeySpaces;

  private constructor(impl: DbImpl) {
    this.#impl = impl;
    this.#spaces = new KeySpaces(impl, () => this.snapshot());
    this.dir = impl.dir;
    this.options = impl.options;
  }

  /** The same as {@link open}, with its guarantees and errors. */
  static async open(dir: string, options?: DbOptions): Promise<Db> {
    return new Db(await DbImpl.open(dir, options));
  }

  /** What open-time recovery found and did. */
  get recovery(): RecoveryInfo {
    return this.#impl.recovery;
  }

  /**
   * Writes `value` under `key`; resolves with the write's version (seqno)
   * once it is durable as `sync` says and visible to every later read.
   * Writes resolve in the order they were made; a rejected write changed
   * nothing.
   *
   * @example Put, then get
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "../mod.ts";
   *
   * const dir = await Deno.makeTempDir();
   * const db = await open(dir, { background: "inline" });
   * const enc = new TextEncoder();
   * const version = await db.put(enc.encode("k"), enc.encode("v1"));
   * const got = db.get(enc.encode("k"));
   * assert.equal(new TextDecoder().decode(got!.value), "v1");
   * assert.equal(got!.version, version);
   * assert.equal(db.get(enc.encode("missing")), undefined);
   * await db.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   *
   * @throws {InvalidArgumentError} for an empty or too long key, a too large
   *   value or a bad option (codes `invalid_argument`, `key_too_long`,
   *   `value_too_large`); nothing is written.
   * @throws {PreconditionFailedError} when `opts.ifVersion` does not hold.
   * @throws {ReadOnlyError} after an earlier failed write or fsync.
   * @throws {DiskFullError} when the disk is full; nothing was written.
   * @throws {ClosedError} once close() was called.
   */
  put(key: Uint8Array, value: Uint8Array, opts?: PutOptions): Promise<number> {
    return this.#impl.batch(USER_KEY_SPACE, [putOp(key, value, opts)]);
  }

  /**
   * Deletes `key` (writes a tombstone); resolves with the delete's version,
   * with the same durability and ordering as {@link put}. It is not an error
   * if `key` did not exist.
   *
   * @throws {InvalidArgumentError} for an empty or too long key.
   * @throws {PreconditionFailedError} when `opts.ifVersion` does not hold.
   * @throws {ReadOnlyError} after an earlier failed write or fsync.
   * @throws {DiskFullError} when the disk is full; nothing was written.
   * @throws {ClosedError} once close() was called.
   */
  delete(
    key: Uint8Array,
    opts?: { ifVersion?: number | null },
  ): Promise<number> {
    return this.#impl.batch(USER_KEY_SPACE, [deleteOp(key, opts)]);
  }

  /**
   * Deletes every key of [start, end) (`end` omitted: every key from
   * `start` on) with one range tombstone, without reading the keys;
   * resolves with its version, with the durability of {@link put}. The
   * space is reclaimed by compaction. Same as a batch of one
   * `deleteRange` op.
   *
   * @example Delete a range
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "../mod.ts";
   *
   * const dir = await Deno.makeTempDir();
   * const db = await open(dir, { background: "inline" });
   * const enc = new TextEncoder();
   * for (const k of "abcd") await db.put(enc.encode(k), enc.encode("x"));
   * await db.deleteRange(enc.encode("b"), enc.encode("d"));
   * const keys = [...db.scan()].map((i) => new TextDecoder().decode(i.key));
   * assert.deepEqual(keys, ["a", "d"]);
   * await db.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   *
   * @throws {InvalidArgumentError} when start does not sort before end or a
   *   bound is too long; nothing is written.
   * @throws {ReadOnlyError} after an earlier failed write or fsync.
   * @throws {DiskFullError} when the disk is full; nothing was written.
   * @throws {ClosedError} once close() was called.
   */
  deleteRange(start: Uint8Array, end?: Uint8Array): Promise<number> {
    return this.#impl.batch(USER_KEY_SPACE, [deleteRangeOp(start, end)]);
  }

  /**
   * The same API as the Db's own, bound to key space `id` (0..255); 0 is the
   * Db itself. The handle is reused and lives as long as the Db.
   *
   * @throws {InvalidArgumentError} when `id` is not an integer 0..255.
   */
  keySpace(id: number): KeySpace {
    checkKeySpaceId(id);
    return id === USER_KEY_SPACE ? this : this.#spaces.handle(id);
  }

  /**
   * Applies every op atomically with one seqno, or none of them. Conditions
   * are checked against every earlier accepted write. A batch of checks only
   * writes nothing and resolves with the current visible seqno.
   *
   * @example Batch with conditions
   * ```ts
   * import assert from "node:assert/strict";
   * import { open, PreconditionFailedError } from "../mod.ts";
   *
   * const dir = await Deno.makeTempDir();
   * const db = await open(dir, { background: "inline" });
   * const enc = new TextEncoder();
   * const [a, b] = [enc.encode("a"), enc.encode("b")];
   * const v = await db.batch([
   *   { type: "put", key: a, value: enc.encode("1"), ifVersion: null },
   *   { type: "put", key: b, value: enc.encode("2") },
   * ]);
   * assert.equal(db.get(a)!.version, v);
   * assert.equal(db.get(b)!.version, v);
   *
   * // "a" exists now, so a batch that requires it absent changes nothing.
   * await assert.rejects(
   *   db.batch([
   *     { type: "delete", key: b },
   *     { type: "check", key: a, ifVersion: null },
   *   ]),
   *   (err) => err instanceof PreconditionFailedError && err.index === 1,
   * );
   * assert.equal(db.get(b)!.version, v);
   * await db.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   *
   * @throws {InvalidArgumentError} for an empty batch or a bad op (the
   *   message names the op); nothing is written.
   * @throws {PreconditionFailedError} when a condition fails; `index` names
   *   the first failing op and nothing is written.
   * @throws {ReadOnlyError} after an earlier failed write or fsync.
   * @throws {DiskFullError} when the disk is full; nothing was written.
   * @throws {ClosedError} once close() was called.
   */
  batch(ops: readonly BatchOp[]): Promise<number> {
    return this.#impl.batch(USER_KEY_SPACE, ops);
  }

  /**
   * For conditions the caller decides itself (e.g. HTTP entity-tag lists):
   * when a write to `key` is in flight (accepted, not yet visible), a
   * promise that resolves once it is visible (true) or failed (false);
   * otherwise undefined. {@link version} counts that write, so a failed
   * condition decided from it must not be answered before this resolves
   * true, and must be decided again if it resolves false.
   */
  whenSettled(key: Uint8Array): Promise<boolean> | undefined {
    return this.#impl.whenSettled(key);
  }

  /**
   * Freezes the memtable (if it holds anything) and waits until every
   * frozen memtable is written to a table: a real operation for users (it
   * makes the WAL short, so the next open replays little), also used by
   * tests. Acknowledged writes are durable without it.
   *
   * @throws {ReadOnlyError} after an earlier failed write or fsync, or when
   *   the flush fails.
   * @throws {ClosedError} once close() was called.
   */
  flush(): Promise<void> {
    return this.#impl.flush();
  }

  /**
   * Compacts every table overlapping [start, end] (unbounded when omitted)
   * down through the levels, after flushing the memtable: a real operation
   * for users (reclaim space after deleting a range, or prepare a store for
   * read-only use); automatic compaction is paused while it runs.
   *
   * @throws {ReadOnlyError} after an earlier failed write or fsync, or when
   *   this compaction's writes fail.
   * @throws {ClosedError} once close() was called.
   */
  compactRange(start?: Uint8Array, end?: Uint8Array): Promise<void> {
    return this.#impl.compactRange(start, end);
  }

  /**
   * Waits until no flush or compaction is running or needed and obsolete
   * files are deleted: a hook for tests and benchmarks, not for users.
   */
  compactUntilIdle(): Promise<void> {
    return this.#impl.compactUntilIdle();
  }

  /**
   * The newest visible value of `key` (at `opts.snapshot` when given), or
   * undefined when it is absent, deleted or expired. Synchronous: it never
   * waits for writes or background work, and sees every write that has
   * resolved.
   *
   * @throws {InvalidArgumentError} for an empty or too long key.
   * @throws {CorruptionError} when a table read fails its checksum.
   * @throws {ClosedError} once close() was called.
   */
  get(key: Uint8Array, opts?: { snapshot?: Snapshot }): ReadResult | undefined {
    return this.#impl.get(USER_KEY_SPACE, key, opts);
  }

  /**
   * `db.get(key)`, except that the value may be a view into a mapped table,
   * valid only until the caller returns to the event loop:
   * engine/value_view.ts.
   */
  [getBorrowed](key: Uint8Array): ReadResult | undefined {
    return this.#impl.get(USER_KEY_SPACE, key, undefined, true);
  }

  /**
   * The version of `key`'s latest accepted write, counting writes still
   * waiting for their fsync; null when absent, deleted or expired.
   */
  version(key: Uint8Array): number | null {
    return this.#impl.version(USER_KEY_SPACE, key);
  }

  /**
   * Yields the newest visible version of each key in [start, end) (and with
   * `prefix`), in byte order (or reversed), skipping deleted and expired
   * keys. It reads at one snapshot taken at the call (or `opts.snapshot`),
   * so writes made while it runs are not seen.
   *
   * @example Scan with a snapshot
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "../mod.ts";
   *
   * const dir = await Deno.makeTempDir();
   * const db = await open(dir, { background: "inline" });
   * const enc = new TextEncoder();
   * const dec = new TextDecoder();
   * for (const k of ["user/1", "user/2", "other"]) {
   *   await db.put(enc.encode(k), enc.encode("x"));
   * }
   * const snap = db.snapshot();
   * await db.put(enc.encode("user/3"), enc.encode("x")); // after the snapshot
   * const keys = [...db.scan({ prefix: enc.encode("user/"), snapshot: snap })]
   *   .map((item) => dec.decode(item.key));
   * assert.deepEqual(keys, ["user/1", "user/2"]);
   * snap.release();
   * assert.equal([...db.scan({ prefix: enc.encode("user/") })].length, 3);
   * await db.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   *
   * @throws {InvalidArgumentError} for bad bounds, limit or snapshot.
   * @throws {CorruptionError} when a table read fails its checksum.
   * @throws {ClosedError} when the store is (or gets) closed.
   */
  scan(opts: ScanOptions = {}): Generator<ScanItem> {
    return this.#impl.scan(USER_KEY_SPACE, opts);
  }

  /**
   * A snapshot at the newest visible write; reads through it see nothing
   * newer. Release it when done: it keeps old versions from compaction.
   *
   * @throws {ClosedError} once close() was called.
   */
  snapshot(): Snapshot {
    return this.#impl.snapshot();
  }

  /** The oldest seqno a live snapshot still reads at (or the visible seqno). */
  oldestSnapshotSeq(): number {
    return this.#impl.oldestSnapshotSeq();
  }

  /**
   * For engine/backup.ts only: pins, at one instant, what a backup copies
   * (see {@link BackupPin}).
   *
   * @internal Not part of the public API: it hands out engine internals.
   * @ignore
   */
  pinForBackup(): BackupPin {
    return this.#impl.pinForBackup();
  }

  /** The last seqno handed out. */
  get lastSeq(): number {
    return this.#impl.lastSeq;
  }

  /**
   * The retained history of committed write groups and the hook for new
   * ones (see `engine/changes.ts`): the change feed reads it.
   */
  get changes(): ChangeHistory {
    return this.#impl.changes;
  }

  /** The newest seqno visible to readers. */
  get visibleSeq(): number {
    return this.#impl.visibleSeq;
  }

  /** Whether the store takes writes, and why not. */
  health(): { ok: boolean; reason?: string; code?: string } {
    return this.#impl.health();
  }

  /** Counters and sizes, as a JSON-serialisable object. */
  stats(): Record<string, unknown> {
    return this.#impl.stats();
  }

  /**
   * Stops taking writes, finishes queued ones (synced), waits for background
   * work, closes files and releases the directory lock. Calling it again
   * waits for the first call.
   *
   * @throws {ReadOnlyError} or an I/O error when the final sync fails; the
   *   lock is released anyway.
   */
  close(): Promise<void> {
    return this.#impl.close();
  }
}
