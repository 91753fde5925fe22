/**
 * Options accepted by `open()`, with their defaults in one place.
 *
 * @module
 */
import { InvalidArgumentError } from "./errors.ts";
import type { FileSystem } from "./fs.ts";
import type { DbOptions } from "./types.ts";
import { mmapAvailable } from "./mmap.ts";
import process from "node:process";
import { isBun } from "./runtime.ts";
import { MAX_NICE } from "./thread_priority.ts";
import { type Compression, zstdAvailable } from "./sstable/codec.ts";

/** DbOptions with every default filled in. */
export type ResolvedOptions =
  & Required<
    Omit<DbOptions, "fs" | "memoryBudgetBytes" | "readMode" | "compression">
  >
  & {
    compression: Compression;
    /** `auto` resolved against what this process may do. */
    readMode: "mmap" | "pread";
    fs: FileSystem | undefined;
    memoryBudgetBytes: number | undefined;
  };

/** Share of a table file that its index and bloom filter take in memory (estimate). */
const TABLE_META_FRACTION = 0.05;

/**
 * Default `tableTargetBytes` and `baseLevelBytes`. With random keys every L0
 * table spans the whole key space, so each L0 -> L1 compaction rewrites all
 * of L1: at the former 64 MiB L1 and 8 MiB tables that was 80-100 MiB per
 * compaction, the worker fell behind and writes spent most of their time
 * stalled at L0's stop trigger (bench/embedded.ts, 1M keys: overwrite 0.4x
 * LevelDB). A 16 MiB L1 in 4 MiB tables keeps each L0 compaction small and
 * L1 -> L2 compactions one table wide; LevelDB uses a 10 MiB L1 and 2 MiB
 * tables. The measurements are in the commit that set these values.
 */
export const DEFAULT_TABLE_TARGET_BYTES = 4 << 20;
/** See {@link DEFAULT_TABLE_TARGET_BYTES}. */
export const DEFAULT_BASE_LEVEL_BYTES = 16 << 20;

/** Hard ceiling on key size, whatever the options say. */
export const MAX_KEY_BYTES = 4096;

/** Every option `open()` knows; anything else is a typo and refused. */
const KNOWN = new Set([
  "changeHistoryBytes",
  "memoryBudgetBytes",
  "sync",
  "syncIntervalMs",
  "memtableBytes",
  "maxImmutableMemtables",
  "blockSize",
  "bloomBitsPerKey",
  "compression",
  "blockCacheBytes",
  "readMode",
  "maxOpenTables",
  "maxKeyBytes",
  "maxValueBytes",
  "tableTargetBytes",
  "compactionBytesPerSecond",
  "baseLevelBytes",
  "l0CompactionTrigger",
  "l0SlowdownTrigger",
  "l0StopTrigger",
  "maxManifestBytes",
  "background",
  "compactionNice",
  "salvage",
  "clock",
  "fs",
]);

/**
 * An environment variable (SHALE_READ_MODE, SHALE_COMPRESSION: the test
 * suite reruns through them) when set and readable without a permission
 * prompt.
 */
function envDefault(variable: string): string | undefined {
  try {
    if (isBun) return process.env[variable] || undefined;
    const q = Deno.permissions.querySync({ name: "env", variable });
    if (q.state !== "granted") return undefined;
    return Deno.env.get(variable) || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Default of the `compression` option. Measured by bench/compression.ts
 * (bench/RESULTS_COMPRESSION.md): zstd stores JSON in about a quarter of the
 * space, but each node:zlib zstd call costs tens of µs, so reads that miss
 * the block cache get about 12x slower and flushes and compactions spend
 * twice the time; random values do not shrink at all. Raw
 * blocks are the default, zstd a choice for space.
 */
export const DEFAULT_COMPRESSION: Compression = "none";

/** Validates a compression option: zstd only where node:zlib has it. */
function resolveCompression(c: unknown): Compression {
  if (c !== "none" && c !== "zstd") invalid("compression", "none or zstd", c);
  if (c === "zstd" && !zstdAvailable()) {
    throw new InvalidArgumentError(
      'option compression "zstd" needs zstd in node:zlib, which this runtime lacks (use compression "none")',
    );
  }
  return c;
}

/** Resolves a read mode: `auto` becomes mmap where FFI is permitted. */
function resolveReadMode(mode: unknown): "mmap" | "pread" {
  if (mode !== "mmap" && mode !== "pread" && mode !== "auto") {
    invalid("readMode", "mmap, pread or auto", mode);
  }
  if (mode === "pread") return "pread";
  if (mmapAvailable()) return "mmap";
  if (mode === "auto") return "pread";
  throw new InvalidArgumentError(
    'option readMode "mmap" needs memory maps through FFI, which this process may not use (on Deno, run with --allow-ffi)',
  );
}

function invalid(option: string, rule: string, got: unknown): never {
  const shown = typeof got === "string" ? JSON.stringify(got) : String(got);
  throw new InvalidArgumentError(
    `option ${option} must be ${rule}, got ${shown}`,
  );
}

/** An integer in [min, max]; anything else can never make progress. */
function checkInt(option: string, v: unknown, min: number, max?: number) {
  if (
    typeof v !== "number" || !Number.isSafeInteger(v) || v < min ||
    (max !== undefined && v > max)
  ) {
    invalid(
      option,
      max === undefined
        ? `an integer of at least ${min}`
        : `an integer from ${min} to ${max}`,
      v,
    );
  }
}

/**
 * Fills in defaults and validates every option: a value that could never
 * make progress (a zero size, no room for frozen memtables, L0 triggers out
 * of order) is refused with an InvalidArgumentError naming the option,
 * rather than accepted and then hanging the first write.
 */
export function resolveOptions(o: DbOptions = {}): ResolvedOptions {
  if (typeof o !== "object" || o === null) {
    throw new InvalidArgumentError("options must be an object");
  }
  for (const k of Object.keys(o)) {
    if (!KNOWN.has(k)) throw new InvalidArgumentError(`unknown option ${k}`);
  }
  const budget = o.memoryBudgetBytes;
  if (budget !== undefined) {
    checkInt("memoryBudgetBytes", budget, 8 << 20);
    const table = o.tableTargetBytes ?? DEFAULT_TABLE_TARGET_BYTES;
    o = {
      ...o,
      memtableBytes: o.memtableBytes ?? Math.floor(budget / 16),
      changeHistoryBytes: o.changeHistoryBytes ?? Math.floor(budget / 16),
      // The block cache also carries open tables' index and filter data
      // (reserved in it, at most half of it: tableMetaLimit), so 1/2 of the
      // budget covers both; the last 1/4 is left for what the engine's
      // counts miss (object overhead of memtables and history, the worker).
      blockCacheBytes: o.blockCacheBytes ?? Math.floor(budget / 2),
      maxOpenTables: o.maxOpenTables ??
        Math.max(
          8,
          Math.floor(budget / 4 / (table * TABLE_META_FRACTION)),
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
    readMode: resolveReadMode(
      o.readMode ?? envDefault("SHALE_READ_MODE") ?? "auto",
    ),
    compression: resolveCompression(
      o.compression ?? envDefault("SHALE_COMPRESSION") ?? DEFAULT_COMPRESSION,
    ),
    maxOpenTables: o.maxOpenTables ?? 500,
    maxKeyBytes: o.maxKeyBytes ?? MAX_KEY_BYTES,
    maxValueBytes: o.maxValueBytes ?? 16 << 20,
    changeHistoryBytes: o.changeHistoryBytes ?? 64 << 20,
    tableTargetBytes: o.tableTargetBytes ?? DEFAULT_TABLE_TARGET_BYTES,
    compactionBytesPerSecond: o.compactionBytesPerSecond ?? 0,
    baseLevelBytes: o.baseLevelBytes ?? DEFAULT_BASE_LEVEL_BYTES,
    l0CompactionTrigger: o.l0CompactionTrigger ?? 4,
    l0SlowdownTrigger: o.l0SlowdownTrigger ?? 8,
    l0StopTrigger: o.l0StopTrigger ?? 12,
    maxManifestBytes: o.maxManifestBytes ?? 4 << 20,
    background: o.background ?? "worker",
    compactionNice: o.compactionNice ?? 10,
    salvage: o.salvage ?? false,
    clock: o.clock ?? Date.now,
    fs: o.fs,
  };
  if (!["always", "interval", "none"].includes(r.sync)) {
    invalid("sync", "always, interval or none", r.sync);
  }
  if (r.background !== "worker" && r.background !== "inline") {
    invalid("background", "worker or inline", r.background);
  }
  if (typeof r.salvage !== "boolean") {
    invalid("salvage", "a boolean", r.salvage);
  }
  if (typeof r.clock !== "function") invalid("clock", "a function", r.clock);
  if (r.fs !== undefined && (typeof r.fs !== "object" || r.fs === null)) {
    invalid("fs", "a FileSystem", r.fs);
  }
  checkInt("syncIntervalMs", r.syncIntervalMs, 1);
  checkInt("memtableBytes", r.memtableBytes, 1);
  checkInt("maxImmutableMemtables", r.maxImmutableMemtables, 1);
  checkInt("blockSize", r.blockSize, 1);
  checkInt("bloomBitsPerKey", r.bloomBitsPerKey, 1, 64);
  checkInt("blockCacheBytes", r.blockCacheBytes, 1);
  checkInt("maxOpenTables", r.maxOpenTables, 1);
  checkInt("maxKeyBytes", r.maxKeyBytes, 1, MAX_KEY_BYTES);
  checkInt("maxValueBytes", r.maxValueBytes, 1);
  checkInt("tableTargetBytes", r.tableTargetBytes, 1);
  checkInt("compactionBytesPerSecond", r.compactionBytesPerSecond, 0);
  checkInt("compactionNice", r.compactionNice, 0, MAX_NICE);
  checkInt("baseLevelBytes", r.baseLevelBytes, 1);
  checkInt("l0CompactionTrigger", r.l0CompactionTrigger, 1);
  checkInt("l0SlowdownTrigger", r.l0SlowdownTrigger, 1);
  checkInt("l0StopTrigger", r.l0StopTrigger, 1);
  checkInt("maxManifestBytes", r.maxManifestBytes, 1024);
  checkInt("changeHistoryBytes", r.changeHistoryBytes, 0);
  // Writes stop at l0StopTrigger until compaction brings L0 back down, so
  // compaction must start before the stop or writes would wait for ever.
  // Above the slowdown trigger it is merely slow (RocksDB allows it too).
  if (r.l0CompactionTrigger >= r.l0StopTrigger) {
    throw new InvalidArgumentError(
      `option l0CompactionTrigger (${r.l0CompactionTrigger}) must be below l0StopTrigger (${r.l0StopTrigger})`,
    );
  }
  if (r.l0SlowdownTrigger >= r.l0StopTrigger) {
    throw new InvalidArgumentError(
      `option l0SlowdownTrigger (${r.l0SlowdownTrigger}) must be below l0StopTrigger (${r.l0StopTrigger})`,
    );
  }
  return r;
}

/**
 * Bytes of index and filter data open tables may hold before the least
 * recently used idle ones are closed: half the block cache, in which they
 * are reserved, when a memory budget is set; unbounded otherwise (then only
 * `maxOpenTables` limits them, and they are not charged to the cache).
 */
export function tableMetaLimit(o: ResolvedOptions): number {
  return o.memoryBudgetBytes === undefined
    ? Infinity
    : Math.floor(o.blockCacheBytes / 2);
}
