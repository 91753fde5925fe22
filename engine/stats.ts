/**
 * The Db's statistics: the counters every part bumps, the event-loop lag
 * monitor, and the JSON object {@link Db.stats} returns (served as
 * GET /stats and read by the dashboard).
 *
 * @module
 */
import type { BlockCache } from "./cache.ts";
import { levelScore, levelTarget } from "./compaction.ts";
import type { Memtable } from "./memtable.ts";
import type { ResolvedOptions } from "./options.ts";
import { unrefTimer } from "./runtime.ts";
import type { Immutable } from "./memtables.ts";
import type { Scheduler } from "./scheduler.ts";
import type { writePressure } from "./backpressure.ts";
import type { TableCache } from "./table_cache.ts";
import type { ThreadPriority } from "./thread_priority.ts";
import type { RecoveryInfo } from "./types.ts";
import type { Version } from "./version.ts";

/** The counters of one Db, reported under `ops` in its stats. */
export type DbCounters = ReturnType<typeof newCounters>;

/** Every counter at zero. */
export function newCounters() {
  return {
    puts: 0,
    deletes: 0,
    batches: 0,
    gets: 0,
    scans: 0,
    writeGroups: 0,
    walSyncs: 0,
    walBytes: 0,
    flushes: 0,
    flushBytes: 0,
    stalls: 0,
    stallMs: 0,
    slowdowns: 0,
    preconditionFailures: 0,
    userBytes: 0,
    compactions: 0,
    trivialMoves: 0,
    compactBytesRead: 0,
    compactBytesWritten: 0,
    compactMs: 0,
    compactDropped: 0,
    manifestRolls: 0,
    maxEventLoopStallMs: 0,
  };
}

/**
 * Measures how late a short timer fires: the longest event-loop stall,
 * reported in stats, is how we know background work never blocks reads.
 * Returns the timer (unref'd) for the caller to clear.
 */
export function startLagMonitor(
  counters: { maxEventLoopStallMs: number },
): ReturnType<typeof setInterval> {
  const period = 20;
  let expected = performance.now() + period;
  const timer = setInterval(() => {
    const now = performance.now();
    const late = now - expected;
    if (late > counters.maxEventLoopStallMs) {
      counters.maxEventLoopStallMs = Math.round(late * 1000) / 1000;
    }
    expected = now + period;
  }, period);
  unrefTimer(timer);
  return timer;
}

/** What {@link dbStats} reports from (the Db's state at one instant). */
export interface StatsSources {
  options: ResolvedOptions;
  counters: DbCounters;
  version: Version;
  lastSeq: number;
  visibleSeq: number;
  mem: Memtable;
  imm: readonly Immutable[];
  wal: { number: number; bytes: number };
  manifest: { name: string; bytes: number; snapshotBytes: number };
  tables: TableCache;
  blockCache: BlockCache;
  /** Bytes the change history (db.changes) holds, as it counts them. */
  changeHistoryBytes: number;
  /** Live snapshots. */
  snapshots: number;
  /** Range tombstones in force, and those of them in the manifest. */
  rangeTombstones: { persisted: number; live: number };
  background: {
    flushing: boolean;
    compacting: boolean;
    compactionNice: ThreadPriority;
  };
  /** The background workers' heaps (see engine/worker_memory.ts). */
  workers: ReturnType<Scheduler["workerMemory"]>;
  writeState: ReturnType<typeof writePressure>;
  recovery: RecoveryInfo;
}

/** Counters and sizes, as a JSON-serialisable object. */
export function dbStats(s: StatsSources): Record<string, unknown> {
  const v = s.version;
  const levels = v.levels.map((tables, level) => ({
    level,
    tables: tables.length,
    bytes: v.levelBytes(level),
    targetBytes: level === 0 ? 0 : levelTarget(s.options, level),
    score: Math.round(levelScore(v, s.options, level) * 1000) / 1000,
  }));
  const c = s.counters;
  const diskBytes = c.walBytes + c.flushBytes + c.compactBytesWritten;
  return {
    ops: { ...c },
    writeAmplification: c.userBytes > 0
      ? Math.round(diskBytes / c.userBytes * 1000) / 1000
      : 0,
    seq: { last: s.lastSeq, visible: s.visibleSeq },
    memtable: {
      bytes: s.mem.bytes,
      entries: s.mem.count,
      immutable: s.imm.length,
      immutableBytes: s.imm.reduce((s, i) => s + i.mem.bytes, 0),
    },
    wal: s.wal,
    manifest: s.manifest,
    levels,
    tables: {
      open: s.tables.size,
      maxOpen: s.options.maxOpenTables,
      opens: s.tables.opens,
      metaBytes: s.tables.metaBytes,
      ...s.tables.stats,
    },
    blockCache: s.blockCache.stats(),
    memory: {
      budget: s.options.memoryBudgetBytes ?? null,
      memtables: s.mem.bytes +
        s.imm.reduce((s, i) => s + i.mem.bytes, 0),
      blockCache: s.blockCache.stats().bytes,
      tableMeta: s.tables.metaBytes,
      changeHistory: s.changeHistoryBytes,
      workers: s.workers,
    },
    snapshots: s.snapshots,
    rangeTombstones: s.rangeTombstones,
    background: s.background,
    writeState: s.writeState,
    recovery: {
      ms: Math.round(s.recovery.ms * 1000) / 1000,
      walFiles: s.recovery.walFiles,
      walRecords: s.recovery.walRecords,
      tornTails: s.recovery.tornTails.length,
      skippedRecords: s.recovery.skipped.length,
    },
  };
}
