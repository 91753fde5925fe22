/**
 * Options accepted by `open()`, with their defaults in one place.
 *
 * @module
 */
import type { FileSystem } from "./fs.ts";

/** How writes reach the disk. */
export type SyncMode = "always" | "interval" | "none";

/** Options for opening a database. Every field is optional. */
export interface DbOptions {
  /**
   * One memory budget for memtables, the block cache and the index and
   * filter data of open tables. When set, it sizes `memtableBytes` (1/16
   * each, up to 1 + maxImmutableMemtables of them), `blockCacheBytes` (3/8)
   * and `maxOpenTables` (open tables' index and filter data get the
   * remaining ~7/16, at an estimated 5% of a table's size, enough to keep
   * every table of a dataset ~9x the budget open); explicit values win.
   */
  memoryBudgetBytes?: number;
  /**
   * `always` (default): a write resolves after fdatasync (group commit shares
   * one fsync between all writes waiting for it). `interval`: fdatasync every
   * `syncIntervalMs`. `none`: left to the OS.
   */
  sync?: SyncMode;
  /** Period of the `interval` sync mode. Default 100 ms. */
  syncIntervalMs?: number;
  /** Memtable size that triggers a flush. Default 8 MiB. */
  memtableBytes?: number;
  /** Frozen memtables allowed before writes wait for a flush. Default 2. */
  maxImmutableMemtables?: number;
  /** Target size of a data block. Default 4 KiB. */
  blockSize?: number;
  /** Bloom filter bits per key (10 gives about 1% false positives). */
  bloomBitsPerKey?: number;
  /** Block cache capacity in bytes. Default 64 MiB. */
  blockCacheBytes?: number;
  /** Open table files kept at once (LRU). Default 500. */
  maxOpenTables?: number;
  /** Largest key accepted. Default (and maximum) 4096 bytes. */
  maxKeyBytes?: number;
  /** Largest value accepted. Default 16 MiB. */
  maxValueBytes?: number;
  /**
   * Memory kept for the change history (`db.changes`, the HTTP change
   * feed's resume window); the oldest write groups go first. Default 64 MiB.
   */
  changeHistoryBytes?: number;
  /** Target size of one table file written by compaction. Default 8 MiB. */
  tableTargetBytes?: number;
  /** Target size of level 1; each deeper level is 10x. Default 64 MiB. */
  baseLevelBytes?: number;
  /** L0 table count that triggers compaction. Default 4. */
  l0CompactionTrigger?: number;
  /** L0 table count at which writes are delayed. Default 8. */
  l0SlowdownTrigger?: number;
  /** L0 table count at which writes wait for compaction. Default 12. */
  l0StopTrigger?: number;
  /**
   * Where flushes and compactions run: `worker` (default, a Web Worker on
   * another core) or `inline` (on the calling thread; tests use it with a
   * fault-injecting file system).
   */
  background?: "worker" | "inline";
  /**
   * Manifest size past which it is rolled over to a new manifest that starts
   * with a snapshot of the state (and at least 4x that snapshot, so a large
   * state does not roll on every edit). Bounds the manifest's growth and
   * the time the next open spends replaying it. Default 4 MiB, at least
   * 1 KiB.
   */
  maxManifestBytes?: number;
  /** Skip corrupt WAL records in the middle of a log instead of failing. */
  salvage?: boolean;
  /** Clock for expiry, ms since the epoch. Default Date.now. */
  clock?: () => number;
  /** File system; tests inject a faulty one. */
  fs?: FileSystem;
}

/** DbOptions with every default filled in. */
export type ResolvedOptions =
  & Required<Omit<DbOptions, "fs" | "memoryBudgetBytes">>
  & {
    fs: FileSystem | undefined;
    memoryBudgetBytes: number | undefined;
  };

/** Share of a table file that its index and bloom filter take in memory (estimate). */
const TABLE_META_FRACTION = 0.05;

/** Hard ceiling on key size, whatever the options say. */
export const MAX_KEY_BYTES = 4096;

/** Fills in defaults and validates ranges. */
export function resolveOptions(o: DbOptions = {}): ResolvedOptions {
  const budget = o.memoryBudgetBytes;
  if (budget !== undefined) {
    if (!(Number.isFinite(budget) && budget >= 8 << 20)) {
      throw new RangeError("memoryBudgetBytes must be at least 8 MiB");
    }
    const table = o.tableTargetBytes ?? 8 << 20;
    o = {
      ...o,
      memtableBytes: o.memtableBytes ?? Math.floor(budget / 16),
      blockCacheBytes: o.blockCacheBytes ?? Math.floor(budget * 3 / 8),
      maxOpenTables: o.maxOpenTables ??
        Math.max(
          8,
          Math.floor(budget * 7 / 16 / (table * TABLE_META_FRACTION)),
        ),
    };
  }
  const r: ResolvedOptions = {
    memoryBudgetBytes: budget,
    sync: o.sync ?? "always",
    syncIntervalMs: o.syncIntervalMs ?? 100,
    memtableBytes: o.memtableBytes ?? 8 << 20,
    maxImmutableMemtables: o.maxImmutableMemtables ?? 2,
    blockSize: o.blockSize ?? 4096,
    bloomBitsPerKey: o.bloomBitsPerKey ?? 10,
    blockCacheBytes: o.blockCacheBytes ?? 64 << 20,
    maxOpenTables: o.maxOpenTables ?? 500,
    maxKeyBytes: o.maxKeyBytes ?? MAX_KEY_BYTES,
    maxValueBytes: o.maxValueBytes ?? 16 << 20,
    changeHistoryBytes: o.changeHistoryBytes ?? 64 << 20,
    tableTargetBytes: o.tableTargetBytes ?? 8 << 20,
    baseLevelBytes: o.baseLevelBytes ?? 64 << 20,
    l0CompactionTrigger: o.l0CompactionTrigger ?? 4,
    l0SlowdownTrigger: o.l0SlowdownTrigger ?? 8,
    l0StopTrigger: o.l0StopTrigger ?? 12,
    maxManifestBytes: o.maxManifestBytes ?? 4 << 20,
    background: o.background ?? "worker",
    salvage: o.salvage ?? false,
    clock: o.clock ?? Date.now,
    fs: o.fs,
  };
  if (!["always", "interval", "none"].includes(r.sync)) {
    throw new RangeError(
      `sync must be always, interval or none, got ${r.sync}`,
    );
  }
  if (
    !(Number.isSafeInteger(r.changeHistoryBytes) && r.changeHistoryBytes >= 0)
  ) {
    throw new RangeError("changeHistoryBytes must be a non-negative integer");
  }
  if (r.maxKeyBytes < 1 || r.maxKeyBytes > MAX_KEY_BYTES) {
    throw new RangeError(`maxKeyBytes must be 1..${MAX_KEY_BYTES}`);
  }
  for (
    const k of [
      "memtableBytes",
      "blockSize",
      "blockCacheBytes",
      "maxOpenTables",
      "tableTargetBytes",
      "baseLevelBytes",
      "l0CompactionTrigger",
      "syncIntervalMs",
    ] as const
  ) {
    if (!(Number.isFinite(r[k]) && r[k] > 0)) {
      throw new RangeError(`${k} must be a positive number`);
    }
  }
  if (
    !(Number.isSafeInteger(r.maxManifestBytes) && r.maxManifestBytes >= 1024)
  ) {
    throw new RangeError(
      `maxManifestBytes must be an integer of at least 1024, got ${r.maxManifestBytes}`,
    );
  }
  return r;
}
