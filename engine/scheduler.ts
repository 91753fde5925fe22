/**
 * Background work and backpressure: when to flush a frozen memtable and
 * when to compact, running those jobs in their workers and installing their
 * results, holding writes back (slowdown, stall) while the tree is behind,
 * and retrying after a full disk.
 *
 * What to compact and how a job and its result are described are pure
 * functions in `compaction.ts`; this file decides when, runs one flush and
 * one compaction at a time, and wakes stalled writers when either ends.
 * Everything here runs on the main thread; the file work runs in workers
 * (or inline, with `background: "inline"`).
 *
 * @module
 */
import type { RangeTombstone } from "./range_tombstones.ts";
import { overlapsBounds } from "./range_tombstones.ts";
import type { JobRunner } from "./background.ts";
import { InlineRunner, WorkerRunner } from "./background.ts";
import type { WorkerMemoryReport } from "./worker_memory.ts";
import type { CommitPipeline } from "./commit.ts";
import type { CompactionPick, CompactionResult } from "./compaction.ts";
import {
  compactionEdit,
  compactionJob,
  isTrivialMove,
  outputReserve,
  pickCompaction,
  pickFor,
  tableMetaFrom,
  trivialMoveEdit,
} from "./compaction.ts";
import { wrapIoError } from "./errors.ts";
import { logPath } from "./filename.ts";
import type { DirFiles } from "./data_dir.ts";
import type { FlushResult } from "./jobs.ts";
import type { VersionEdit } from "./manifest.ts";
import { NUM_LEVELS } from "./manifest.ts";
import type { Immutable } from "./memtables.ts";
import type { ResolvedOptions } from "./options.ts";
import { unrefTimer } from "./runtime.ts";
import type { ThreadPriority } from "./thread_priority.ts";
import type { VersionSet } from "./version.ts";
import { overlaps } from "./version.ts";
import { mustStall, writePressure } from "./backpressure.ts";

/** The counters the scheduler keeps (the Db's stats object has them all). */
export interface SchedulerCounters {
  flushes: number;
  flushBytes: number;
  stalls: number;
  stallMs: number;
  slowdowns: number;
  /** Compactions that merged tables and wrote new ones. */
  compactions: number;
  /** Tables moved down a level by a manifest edit alone (not in `compactions`). */
  trivialMoves: number;
  compactBytesRead: number;
  compactBytesWritten: number;
  compactMs: number;
  compactDropped: number;
}

/** What the scheduler needs from the Db. */
export interface SchedulerEnv extends DirFiles {
  options: ResolvedOptions;
  commit: CommitPipeline;
  versions: VersionSet;
  counters: SchedulerCounters;
  closed(): boolean;
  /** Throws ClosedError once closed, or the sticky failure. */
  checkWritable(): void;
  /** The frozen memtables, newest first. */
  immutables(): readonly Immutable[];
  /** Drops a memtable whose flush is installed. */
  flushed(imm: Immutable): void;
  /** The number of the WAL segment being written. */
  walNumber(): number;
  compactPointers(): readonly (Uint8Array | undefined)[];
  oldestSnapshotSeq(): number;
  /** Appends an edit to the manifest (durably), then installs the Version. */
  logAndApply(edit: VersionEdit): Promise<void>;
  /** Every range tombstone: persisted and in memtables. */
  rangeTombstones(): RangeTombstone[];
  /** Drops the persisted range tombstones nothing needs (a manifest edit). */
  dropObsoleteRangeTombstones(): Promise<void>;
}

/** Decides and runs flushes and compactions; holds writes back when behind. */
export class Scheduler {
  #env: SchedulerEnv;
  #flushRunner: JobRunner;
  #flushing: Promise<void> | undefined;
  #compactRunner: JobRunner;
  #compacting: Promise<void> | undefined;
  #stallWaiters: (() => void)[] = [];
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Background work hit a full disk; it waits for the retry timer. */
  #blocked = false;

  constructor(env: SchedulerEnv) {
    this.#env = env;
    const inline = env.options.background === "inline";
    this.#flushRunner = inline ? new InlineRunner(env.fs) : new WorkerRunner();
    // Only the compaction worker runs at a lower CPU priority (RocksDB
    // lowers its compaction pool, not its flush pool): it takes most of the
    // background CPU, and L0 backpressure slows writers when it falls
    // behind, while a late flush would stall every write at once.
    this.#compactRunner = inline
      ? new InlineRunner(env.fs)
      : new WorkerRunner(undefined, env.options.compactionNice);
  }

  /**
   * The compaction worker's CPU priority: the nice value asked for, whether
   * its thread runs at it (false until the worker has answered, and with
   * inline background work), and why not.
   */
  get compactionNice(): ThreadPriority {
    const requested = this.#env.options.compactionNice;
    if (requested === 0) {
      return { requested, applied: false, reason: "compactionNice is 0" };
    }
    const r = this.#compactRunner;
    if (!(r instanceof WorkerRunner)) {
      return { requested, applied: false, reason: "background is inline" };
    }
    return r.priority ??
      { requested, applied: false, reason: "worker starting" };
  }

  /** Whether background work waits for the disk-full retry timer. */
  get backgroundBlocked(): boolean {
    return this.#blocked;
  }

  /** Whether a flush or a compaction is running. */
  get running(): { flushing: boolean; compacting: boolean } {
    return {
      flushing: this.#flushing !== undefined,
      compacting: this.#compacting !== undefined,
    };
  }

  /** The running flush, if any (flush() waits for every frozen memtable). */
  get flushing(): Promise<void> | undefined {
    return this.#flushing;
  }

  /** Resolves once no flush or compaction is running. */
  async idle(): Promise<void> {
    while (this.#flushing || this.#compacting) {
      await (this.#flushing ?? this.#compacting);
    }
  }

  /** The background workers' heaps as they last reported them (null: inline). */
  workerMemory(): {
    flush: WorkerMemoryReport | null;
    compaction: WorkerMemoryReport | null;
  } {
    return {
      flush: this.#flushRunner.memory() ?? null,
      compaction: this.#compactRunner.memory() ?? null,
    };
  }

  /** Stops the retry timer and the workers, waiting for nothing. */
  close(): void {
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
    this.#flushRunner.close();
    this.#compactRunner.close();
  }

  // ---------------------------------------------------------- backpressure

  /**
   * Backpressure: waits while too many frozen memtables await their flush,
   * so memory stays bounded when writes outpace the disk.
   */
  async waitForRoom(): Promise<void> {
    const env = this.#env;
    const o = env.options;
    const c = env.counters;
    const l0 = env.versions.current.levels[0].length;
    if (l0 >= o.l0SlowdownTrigger && l0 < o.l0StopTrigger) {
      // Slowdown: give compaction the shortest timer sleep per write
      // instead of letting L0 (and read amplification) grow until a hard
      // stop. LevelDB sleeps 1 ms; a 1 ms timer lasts ~2.1 ms on Deno
      // (~1.1 ms on Bun). Pacing Deno's to 1 ms per write on average let
      // L0 reach its stop trigger in bench/embedded.ts deleterandom (1-2
      // hard stalls per phase, none before) for no clear gain (2026-12-01).
      c.slowdowns++;
      await new Promise((r) => setTimeout(r, 1));
    }
    if (!this.#mustStall()) return;
    // Waiting for a flush that cannot write would hang the caller.
    if (env.commit.diskFull) throw env.commit.diskFull;
    const started = performance.now();
    c.stalls++;
    while (
      this.#mustStall() && !env.closed() && !env.commit.failure &&
      !env.commit.diskFull
    ) {
      await new Promise<void>((r) => this.#stallWaiters.push(r));
    }
    c.stallMs += performance.now() - started;
    if (env.commit.diskFull && this.#mustStall()) throw env.commit.diskFull;
  }

  #mustStall(): boolean {
    const env = this.#env;
    return mustStall(
      env.immutables().length,
      env.versions.current.levels[0].length,
      env.options,
    );
  }

  /** What {@link waitForRoom} would do to a write arriving now, and why. */
  writeState(): { state: "ok" | "slowdown" | "stall"; reason: string | null } {
    const env = this.#env;
    return writePressure(
      env.immutables().length,
      env.versions.current.levels[0].length,
      env.options,
    );
  }

  /** Lets stalled writers look again (something finished, or the store closed). */
  wakeStalled(): void {
    const waiters = this.#stallWaiters;
    this.#stallWaiters = [];
    for (const w of waiters) w();
  }

  // ------------------------------------------------------------ disk full

  /**
   * Background work or a WAL append hit a full disk. Nothing was lost;
   * health reports it, background work retries every second, and writes
   * that would have to wait for a flush are rejected with disk_full.
   */
  diskFullRetry(): void {
    this.wakeStalled();
    if (this.#retryTimer !== undefined || this.#env.closed()) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#blocked = false;
      this.maybeScheduleFlush();
      this.maybeScheduleCompaction();
    }, 1000);
    unrefTimer(this.#retryTimer);
  }

  /** Routes a background failure: a full disk is retried, anything else is fatal. */
  backgroundFailed(err: unknown, what: string): void {
    const e = wrapIoError(err, what);
    if (e.code === "disk_full") {
      this.#blocked = true;
      this.#env.commit.noteDiskFull(e);
    } else this.#env.commit.fail(e);
  }

  // ---------------------------------------------------------------- flush

  /** Starts flushing the oldest frozen memtable unless one is running. */
  maybeScheduleFlush(): void {
    const env = this.#env;
    if (this.#flushing || env.immutables().length === 0 || env.closed()) {
      return;
    }
    if (env.commit.failure || this.#blocked) return;
    this.#flushing = this.#flushOldest().finally(() => {
      this.#flushing = undefined;
      this.wakeStalled();
      this.maybeScheduleFlush();
      this.maybeScheduleCompaction();
    });
  }

  async #flushOldest(): Promise<void> {
    const env = this.#env;
    const o = env.options;
    const imms = env.immutables();
    const imm = imms[imms.length - 1];
    const fileNumber = env.newFileNumber();
    let result: FlushResult;
    try {
      // The WAL segments stay until the edit installing the table is
      // durable: recovery replays them if the flush never lands.
      const image = imm.mem.image();
      result = await this.#flushRunner.run({
        type: "flush",
        dir: env.dir,
        blockSize: o.blockSize,
        bloomBitsPerKey: o.bloomBitsPerKey,
        compression: o.compression,
        image,
        fileNumber,
      }, [image.pool, ...image.bufs]) as FlushResult;
    } catch (err) {
      if (env.closed()) return;
      this.backgroundFailed(err, "memtable flush");
      return;
    }
    // Rotations during the await added newer memtables at the front.
    const remaining = env.immutables().slice(0, -1);
    const logNumber = remaining.length > 0
      ? remaining[remaining.length - 1].walNumbers[0]
      : env.walNumber();
    const edit: VersionEdit = {
      logNumber,
      nextFileNumber: env.nextFileNumber(),
      lastSeq: env.commit.lastSeq,
      added: result.table ? [tableMetaFrom(result.table, 0)] : [],
      rangeTombstonesAdded: imm.mem.rangeDels,
    };
    try {
      await env.logAndApply(edit);
    } catch (err) {
      env.commit.fail(wrapIoError(err, "manifest write"));
      return;
    }
    env.flushed(imm);
    try {
      await env.dropObsoleteRangeTombstones();
    } catch (err) {
      env.commit.fail(wrapIoError(err, "manifest write"));
      return;
    }
    env.commit.diskFull = undefined;
    env.counters.flushes++;
    env.counters.flushBytes += result.table?.fileSize ?? 0;
    for (const n of imm.walNumbers) env.removeQuietly(logPath(env.dir, n));
  }

  // ----------------------------------------------------------- compaction

  /** Starts the most urgent compaction unless one is running. */
  maybeScheduleCompaction(): void {
    const env = this.#env;
    if (this.#compacting || env.closed() || env.commit.failure) return;
    if (this.#blocked) return;
    const pick = pickCompaction(
      env.versions.current,
      env.options,
      env.compactPointers(),
    );
    if (!pick) return;
    this.#compacting = this.#compact(pick).finally(() => {
      this.#compacting = undefined;
      this.wakeStalled();
      this.maybeScheduleCompaction();
    });
  }

  /**
   * Runs one compaction and installs its result; failures turn the store
   * read-only. `rewrite` merges even a lone table that could just move
   * down a level (compactRange: so the range tombstones over it apply).
   */
  async #compact(pick: CompactionPick, rewrite = false): Promise<void> {
    const env = this.#env;
    const o = env.options;
    const c = env.counters;
    const started = performance.now();
    let edit: VersionEdit;
    if (!rewrite && isTrivialMove(pick)) {
      edit = trivialMoveEdit(pick);
      c.trivialMoves++;
    } else {
      const outputNumbers: number[] = [];
      const reserve = outputReserve(pick, o.tableTargetBytes);
      for (let i = 0; i < reserve; i++) outputNumbers.push(env.newFileNumber());
      const job = compactionJob(pick, {
        dir: env.dir,
        blockSize: o.blockSize,
        bloomBitsPerKey: o.bloomBitsPerKey,
        compression: o.compression,
        tableTargetBytes: o.tableTargetBytes,
        bytesPerSecond: o.compactionBytesPerSecond,
        smallestSnapshot: env.oldestSnapshotSeq(),
        now: o.clock(),
        map: o.readMode === "mmap",
      }, outputNumbers);
      job.rangeTombstones = env.rangeTombstones().filter((t) =>
        t.seq <= job.smallestSnapshot
      );
      let result: CompactionResult;
      try {
        result = await this.#compactRunner.run(job) as CompactionResult;
      } catch (err) {
        if (env.closed()) return;
        this.backgroundFailed(err, "compaction");
        return;
      }
      edit = compactionEdit(pick, result, env.nextFileNumber());
      // Only with tombstones to apply: a later one has a higher seqno than
      // any snapshot now, and a store that never deletes a range keeps
      // writing the manifest older builds read.
      if (job.rangeTombstones.length > 0) {
        for (const t of edit.added ?? []) t.cleanSeq = job.smallestSnapshot;
      }
      c.compactions++;
      c.compactBytesRead += result.bytesRead;
      c.compactDropped += result.dropped;
      for (const out of result.outputs) c.compactBytesWritten += out.fileSize;
    }
    try {
      await env.logAndApply(edit);
      await env.dropObsoleteRangeTombstones();
    } catch (err) {
      env.commit.fail(wrapIoError(err, "manifest write"));
      return;
    }
    c.compactMs += performance.now() - started;
    env.commit.diskFull = undefined;
  }

  /**
   * Compacts every table overlapping the stored-key range [start, end]
   * (unbounded when omitted) down through the levels (see Db.compactRange;
   * the caller flushes first). Automatic compaction waits meanwhile.
   */
  async compactRange(start?: Uint8Array, end?: Uint8Array): Promise<void> {
    const env = this.#env;
    // Push the range down to the deepest level that holds any of it, then
    // rewrite that level's part in place, so versions no snapshot needs and
    // tombstones with nothing below them are gone afterwards.
    const inRange = (level: number) =>
      env.versions.current.levels[level].filter((t) => overlaps(t, start, end));
    let deepest = -1;
    for (let l = 0; l < NUM_LEVELS; l++) if (inRange(l).length > 0) deepest = l;
    if (deepest < 0) return;
    const bottom = Math.max(deepest, 1);
    let mergedIntoBottom = false;
    for (let level = 0; level <= bottom; level++) {
      while (this.#compacting) await this.#compacting;
      env.checkWritable();
      const v = env.versions.current;
      let inputs = inRange(level);
      if (inputs.length === 0) continue;
      // A merge from above already purged the bottom level's part.
      if (level === bottom && mergedIntoBottom) break;
      if (level === 0) inputs = [...v.levels[0]];
      const output = level < bottom ? level + 1 : level;
      if (output === bottom && level < bottom) mergedIntoBottom = true;
      // A lone table under a range tombstone is merged, not moved, so the
      // entries the tombstone hides are dropped now.
      const rewrite = env.rangeTombstones().some((t) =>
        inputs.some((x) => overlapsBounds(t, x.smallest, x.largest))
      );
      const run = this.#compact(pickFor(v, level, inputs, output), rewrite);
      this.#compacting = run.finally(() => {
        this.#compacting = undefined;
        this.wakeStalled();
      });
      await this.#compacting;
      if (env.commit.failure) throw env.commit.failure;
    }
    this.maybeScheduleCompaction();
  }

  /** Waits until no flush or compaction is running or needed (see Db.compactUntilIdle). */
  async untilIdle(): Promise<void> {
    this.#blocked = false; // an explicit call retries at once
    for (;;) {
      this.maybeScheduleFlush();
      this.maybeScheduleCompaction();
      const busy = this.#flushing ?? this.#compacting;
      if (!busy) break;
      await busy;
    }
    if (this.#env.commit.failure) throw this.#env.commit.failure;
  }
}
