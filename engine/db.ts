/**
 * The database: open and recover, the write path with group commit, reads at
 * a snapshot, scans, memtable flushes, and close.
 *
 * Threads: everything here runs on the main thread. Reads are synchronous
 * (memtables, then tables through synchronous positional reads). Table
 * building runs in a background worker; the main thread only installs its
 * result with one manifest edit.
 *
 * Write path (see ../shared/DESIGN.md): validate and check conditions
 * against every accepted write (including those still waiting for fsync) →
 * assign a seqno and append the WAL record to an in-memory buffer → the
 * commit loop writes everything buffered with one write and one fdatasync →
 * apply to the memtable → resolve. Nothing becomes visible before it is
 * durable in the chosen sync mode.
 *
 * @module
 */
import { Arena } from "./coding.ts";
import { BlockCache } from "./cache.ts";
import { isLive } from "./entry.ts";
import { ClosedError, InvalidArgumentError } from "./errors.ts";
import type { FileSystem } from "./fs.ts";
import { realFs } from "./fs.ts";
import { ChangeHistory } from "./changes.ts";
import type { ManifestState } from "./manifest.ts";
import { ManifestWriter } from "./manifest.ts";
import { lockPath, logPath, tablePath } from "./filename.ts";
import { Memtable } from "./memtable.ts";
import type { Recovered } from "./recovery.ts";
import {
  accessWarning,
  makeDataDir,
  recover,
  removeUnreferenced,
} from "./recovery.ts";
import type { ResolvedOptions } from "./options.ts";
import { resolveOptions } from "./options.ts";
import { TableCache } from "./table_cache.ts";
import type {
  BatchOp,
  DbOptions,
  KeySpace,
  PutOptions,
  ReadResult,
  RecoveryInfo,
  ScanItem,
  ScanOptions,
  Snapshot,
} from "./types.ts";
import { MAX_KEY_SPACE, USER_KEY_SPACE } from "./types.ts";
import type { Version } from "./version.ts";
import { versionFromState, VersionSet } from "./version.ts";
import { createLog, encodeBatchOps, WAL_MAGIC } from "./wal.ts";
import type { CommitEnv } from "./commit.ts";
import { CommitPipeline } from "./commit.ts";
import type { SchedulerEnv } from "./scheduler.ts";
import { MemtableSet } from "./memtables.ts";
import { Scheduler } from "./scheduler.ts";
import { SnapshotList } from "./snapshots.ts";
import { dbStats, newCounters, startLagMonitor } from "./stats.ts";
import { ManifestLog } from "./manifest_log.ts";
import { ReadPath } from "./read.ts";
import {
  checkKey,
  keyStamps,
  putOp,
  spaceKey,
  stampKeys,
  validateBatch,
} from "./batch.ts";

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
  #fs: FileSystem;
  #lock: { release(): void };
  #closed = false;
  /** The close() in progress or done. */
  #closing: Promise<void> | undefined;
  /** Set once close() let go of the directory: no file may be touched after. */
  #released = false;

  /** The live memtable, the frozen ones, the live WAL segment's number. */
  #memtables = new MemtableSet();
  /** The write queue, the WAL and the failure state (set by #start). */
  #commit!: CommitPipeline;
  /**
   * Where write batches are copied to. Entries of one memtable come from
   * neighbouring slabs, so slabs are freed together when it is flushed.
   */
  #arena = new Arena();
  /** Point lookups and scans over the memtables and tables. */
  #read: ReadPath;
  #spaces = new Map<number, KeySpace>();
  #changes!: ChangeHistory;
  #nextFile = 1;
  #snapshots = new SnapshotList();

  #state: ManifestState;
  /** The manifest and the edits to it (set by #start). */
  #manifest!: ManifestLog;
  #versions: VersionSet;
  #tables: TableCache;
  #blockCache: BlockCache;
  /** Flushes, compactions and backpressure (set by #start). */
  #scheduler!: Scheduler;
  #lagTimer: ReturnType<typeof setInterval> | undefined;

  /** What open-time recovery found and did (set by {@link Db.open}). */
  recovery!: RecoveryInfo;
  #counters = newCounters();

  private constructor(
    dir: string,
    options: ResolvedOptions,
    fs: FileSystem,
    lock: { release(): void },
    state: ManifestState,
  ) {
    this.dir = dir;
    this.options = options;
    this.#fs = fs;
    this.#lock = lock;
    this.#state = state;
    this.#blockCache = new BlockCache(options.blockCacheBytes);
    this.#tables = new TableCache(
      fs,
      dir,
      this.#blockCache,
      options.maxOpenTables,
      options.readMode,
    );
    this.#versions = new VersionSet(versionFromState(state));
    this.#versions.onObsolete = (n) => this.#deleteTable(n);
    this.#read = new ReadPath({
      memtable: () => this.#memtables.mem,
      immutables: () => this.#memtables.imm,
      versions: this.#versions,
      tables: this.#tables,
      clock: options.clock,
      closed: () => this.#closed,
      visibleSeq: () => this.#commit.visibleSeq,
      counters: this.#counters,
    }, options.maxKeyBytes);
    this.#lagTimer = startLagMonitor(this.#counters);
  }

  /**
   * Opens (creating if needed) the database in `dir`; see {@link open}.
   *
   * @throws {LockedError} when another process (or another open Db) holds `dir`.
   * @throws {InvalidArgumentError} when an option is out of range.
   * @throws {CorruptionError} when stored data fails a check (and `salvage` is off).
   * @throws {FormatVersionError} when `dir` holds an older on-disk format.
   */
  static async open(dir: string, options?: DbOptions): Promise<Db> {
    const started = performance.now();
    const opts = resolveOptions(options);
    const fs = opts.fs ?? realFs;
    const warning = accessWarning(fs, dir);
    await makeDataDir(fs, dir);
    const lock = fs.lock(lockPath(dir));
    let db: Db | undefined;
    try {
      const recovered = await recover(fs, dir, opts);
      db = new Db(dir, opts, fs, lock, recovered.state);
      db.recovery = recovered.info;
      if (warning) db.recovery.warnings.push(warning);
      await db.#start(recovered);
      db.recovery.ms = performance.now() - started;
      return db;
    } catch (err) {
      if (db) db.#abandon();
      else lock.release();
      throw err;
    }
  }

  /**
   * Takes over what recovery found: the replayed memtable (flushed in the
   * background), a new WAL segment, and a new manifest holding the whole
   * state; then removes what it no longer references and starts the timers
   * and any background work due.
   */
  async #start(r: Recovered): Promise<void> {
    const fs = this.#fs;
    this.#nextFile = r.nextFile;
    this.#changes = ChangeHistory.fromRecovered(
      r.entries,
      r.lastSeq,
      this.options.changeHistoryBytes,
    );

    const firstLive = r.replayed.count > 0 ? r.replayedLogs : [];
    if (r.replayed.count > 0) {
      this.#memtables.imm.push({ mem: r.replayed, walNumbers: firstLive });
    }
    this.#memtables.walNumber = this.#nextFile++;
    const wal = await createLog(
      fs,
      logPath(this.dir, this.#memtables.walNumber),
      WAL_MAGIC,
    );
    this.#commit = new CommitPipeline(this.#commitEnv(), wal, r.lastSeq);
    this.#scheduler = new Scheduler(this.#schedulerEnv());
    this.#state.logNumber = firstLive.length > 0
      ? firstLive[0]
      : this.#memtables.walNumber;
    this.#state.lastSeq = r.lastSeq;
    const manifestNumber = this.#nextFile++;
    this.#state.nextFileNumber = this.#nextFile;
    this.#manifest = new ManifestLog(
      {
        fs,
        dir: this.dir,
        versions: this.#versions,
        commit: this.#commit,
        maxManifestBytes: this.options.maxManifestBytes,
        newFileNumber: () => this.#nextFile++,
        nextFileNumber: () => this.#nextFile,
        removeQuietly: (path) => this.#removeQuietly(path),
        counters: this.#counters,
      },
      this.#state,
      await ManifestWriter.create(fs, this.dir, manifestNumber, this.#state),
    );
    this.recovery.removedFiles.push(
      ...removeUnreferenced(fs, this.dir, this.#state, {
        logs: new Set(firstLive),
        walNumber: this.#memtables.walNumber,
        manifest: this.#manifest.name,
      }),
    );
    this.#scheduler.maybeScheduleFlush();
    this.#scheduler.maybeScheduleCompaction();
  }

  /** How the commit pipeline reaches the memtable, the read path and stats. */
  #commitEnv(): CommitEnv {
    const o = this.options;
    return {
      sync: o.sync,
      syncIntervalMs: o.syncIntervalMs,
      clock: o.clock,
      memtable: () => this.#memtables.mem,
      makeRoom: () =>
        this.#memtables.mem.bytes >= o.memtableBytes
          ? this.#rotate()
          : undefined,
      published: (seq, entries) => this.#changes.publish(seq, entries),
      diskFull: () => this.#scheduler.diskFullRetry(),
      backgroundBlocked: () => this.#scheduler.backgroundBlocked,
      storedKey: (space, key) => this.#read.storedKey(space, key),
      visibleVersion: (key) => this.#read.visibleVersion(key),
      counters: this.#counters,
    };
  }

  /** How the scheduler reaches the memtables, the manifest and the commit state. */
  #schedulerEnv(): SchedulerEnv {
    return {
      dir: this.dir,
      fs: this.#fs,
      options: this.options,
      commit: this.#commit,
      versions: this.#versions,
      counters: this.#counters,
      closed: () => this.#closed,
      checkWritable: () => this.#checkWritable(),
      immutables: () => this.#memtables.imm,
      flushed: (imm) => this.#memtables.flushed(imm),
      walNumber: () => this.#memtables.walNumber,
      newFileNumber: () => this.#nextFile++,
      nextFileNumber: () => this.#nextFile,
      compactPointers: () => this.#state.compactPointers,
      oldestSnapshotSeq: () => this.oldestSnapshotSeq(),
      logAndApply: (edit) => this.#manifest.logAndApply(edit),
      removeQuietly: (path) => this.#removeQuietly(path),
    };
  }

  // ---------------------------------------------------------------- writes

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
    return this.#batch(USER_KEY_SPACE, [putOp(key, value, opts)]);
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
    return this.#batch(USER_KEY_SPACE, [
      { type: "delete", key, ifVersion: opts?.ifVersion },
    ]);
  }

  /**
   * The same API as the Db's own, bound to key space `id` (0..255); 0 is the
   * Db itself. The handle is reused and lives as long as the Db.
   */
  keySpace(id: number): KeySpace {
    if (!Number.isInteger(id) || id < 0 || id > MAX_KEY_SPACE) {
      throw new InvalidArgumentError(
        `a key space is an integer 0..${MAX_KEY_SPACE}, got ${id}`,
      );
    }
    if (id === USER_KEY_SPACE) return this;
    let space = this.#spaces.get(id);
    if (space === undefined) {
      space = {
        get: (key, opts) => this.#get(id, key, opts),
        version: (key) => this.#version(id, key),
        put: (key, value, opts) => this.#batch(id, [putOp(key, value, opts)]),
        delete: (key, opts) =>
          this.#batch(id, [{
            type: "delete",
            key,
            ifVersion: opts?.ifVersion,
          }]),
        batch: (ops) => this.#batch(id, ops),
        scan: (opts) => this.#scanAt(id, opts),
        snapshot: () => this.snapshot(),
      };
      this.#spaces.set(id, space);
    }
    return space;
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
    return this.#batch(USER_KEY_SPACE, ops);
  }

  async #batch(space: number, ops: readonly BatchOp[]): Promise<number> {
    this.#checkWritable();
    // Validate and copy synchronously: the caller may reuse its buffers as
    // soon as this call returns its promise.
    const { entries, versioned } = validateBatch(ops, this.options);
    const encoded = encodeBatchOps(entries, this.#arena, space);
    const stamps = versioned &&
      keyStamps(ops, entries, encoded.entries, versioned);
    await this.#scheduler.waitForRoom();
    for (;;) {
      this.#checkWritable();
      // Decided and enqueued in one synchronous stretch: no other write can
      // be accepted between the check and this write's seqno.
      const pending = this.#commit.checkConditions(
        space,
        ops,
        entries.length > 0,
      );
      if (pending === undefined) break;
      if (await this.#commit.settled(pending.waitFor)) {
        if (pending.error) {
          this.#counters.preconditionFailures++;
          throw pending.error;
        }
        this.#checkWritable();
        return this.#commit.visibleSeq;
      }
      // A write the answer depended on failed: decide again.
    }
    if (entries.length === 0) return this.#commit.visibleSeq;
    const stamp = stamps &&
      ((seq: number) => stampKeys(encoded.entries, stamps, seq));
    return this.#commit.enqueue(
      encoded.entries,
      encoded.payload,
      ops.length > 1,
      stamp,
    );
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
    if (this.#closed) throw new ClosedError();
    checkKey(this.options, key);
    const p = this.#commit.inflight(this.#read.storedKey(USER_KEY_SPACE, key));
    return p ? this.#commit.settled([p.write]) : undefined;
  }

  #rotate(): Promise<void> {
    return this.#memtables.rotate({
      fs: this.#fs,
      dir: this.dir,
      sync: this.options.sync,
      commit: this.#commit,
      newFileNumber: () => this.#nextFile++,
      removeQuietly: (path) => this.#removeQuietly(path),
      failed: (err) => this.#scheduler.backgroundFailed(err, "new WAL segment"),
      frozen: () => this.#scheduler.maybeScheduleFlush(),
    });
  }

  #checkWritable(): void {
    if (this.#closed) throw new ClosedError();
    if (this.#commit.failure) throw this.#commit.failure;
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
  async compactRange(
    userStart?: Uint8Array,
    userEnd?: Uint8Array,
  ): Promise<void> {
    // Bounds are keys of the user key space; an open end also covers the
    // key spaces after it.
    const start = userStart && spaceKey(USER_KEY_SPACE, userStart);
    const end = userEnd && spaceKey(USER_KEY_SPACE, userEnd);
    await this.flush();
    await this.#scheduler.compactRange(start, end);
  }

  /**
   * Waits until no flush or compaction is running or needed. A hook for
   * tests and benchmarks (a quiet store to measure); users never need it.
   */
  compactUntilIdle(): Promise<void> {
    return this.#scheduler.untilIdle();
  }

  #deleteTable(n: number): void {
    this.#tables.evict(n);
    // Not #closed: a compaction that close() waits for still makes its
    // inputs obsolete, and they must go before the lock is released.
    if (this.#released) return;
    this.#removeQuietly(tablePath(this.dir, n));
  }

  /** Deletes an obsolete file; a failure leaves it for the next open to remove. */
  #removeQuietly(path: string): void {
    try {
      this.#fs.remove(path);
    } catch {
      // Open removes every file the manifest does not reference.
    }
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
  async flush(): Promise<void> {
    this.#checkWritable();
    // The rotation holds the commit slot, so no group is appended to the
    // old segment while it is being closed.
    await this.#commit.exclusive(async () => {
      this.#checkWritable();
      if (this.#memtables.mem.count > 0) await this.#rotate();
    });
    while (this.#scheduler.flushing) await this.#scheduler.flushing;
    if (this.#commit.failure) throw this.#commit.failure;
  }

  // ---------------------------------------------------------------- reads

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
    return this.#get(USER_KEY_SPACE, key, opts);
  }

  #get(
    space: number,
    key: Uint8Array,
    opts?: { snapshot?: Snapshot },
  ): ReadResult | undefined {
    if (this.#closed) throw new ClosedError();
    checkKey(this.options, key);
    this.#counters.gets++;
    const e = this.#read.find(
      this.#read.storedKey(space, key),
      opts?.snapshot?.seq ?? this.#commit.visibleSeq,
    );
    if (e === undefined || !isLive(e, this.options.clock())) return undefined;
    return {
      value: e.value,
      version: e.seq,
      encoding: e.encoding,
      expiresAt: e.expiresAt,
    };
  }

  /**
   * The version of `key`'s latest accepted write, counting writes still
   * waiting for their fsync; null when absent, deleted or expired.
   */
  version(key: Uint8Array): number | null {
    return this.#version(USER_KEY_SPACE, key);
  }

  #version(space: number, userKey: Uint8Array): number | null {
    if (this.#closed) throw new ClosedError();
    checkKey(this.options, userKey);
    const key = this.#read.storedKey(space, userKey);
    const p = this.#commit.inflight(key);
    if (p) return p.live ? p.write.seq : null;
    return this.#read.visibleVersion(key);
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
    return this.#scanAt(USER_KEY_SPACE, opts);
  }

  #scanAt(space: number, opts: ScanOptions = {}): Generator<ScanItem> {
    if (this.#closed) throw new ClosedError();
    const it = this.#read.scan(space, opts);
    // Run the body up to its first (internal) yield: that takes the
    // snapshot now. From then on, return() releases what it pinned.
    it.next();
    return it;
  }

  /**
   * A snapshot at the newest visible write; reads through it see nothing
   * newer. Release it when done: it keeps old versions from compaction.
   *
   * @throws {ClosedError} once close() was called.
   */
  snapshot(): Snapshot {
    if (this.#closed) throw new ClosedError();
    return this.#snapshots.take(this.#commit.visibleSeq);
  }

  /** The oldest seqno a live snapshot still reads at (or the visible seqno). */
  oldestSnapshotSeq(): number {
    return this.#snapshots.oldest(this.#commit.visibleSeq);
  }

  /**
   * For engine/backup.ts only: at one instant, pins the current Version (its
   * tables are not deleted until release()) and returns it with the visible
   * seqno and the memtables, newest first. The memtables keep changing and
   * are freed once flushed: copy what you need before the next await.
   *
   * @internal Not part of the public API: it hands out engine internals.
   * @ignore
   */
  pinForBackup(): {
    version: Version;
    seq: number;
    memtables: Memtable[];
    fs: FileSystem;
    release(): void;
  } {
    if (this.#closed) throw new ClosedError();
    const version = this.#versions.pin();
    let released = false;
    return {
      version,
      seq: this.#commit.visibleSeq,
      memtables: this.#memtables.all(),
      fs: this.#fs,
      release: () => {
        if (released) return;
        released = true;
        if (!this.#released) this.#versions.unpin(version);
      },
    };
  }

  /** The last seqno handed out. */
  get lastSeq(): number {
    return this.#commit.lastSeq;
  }

  /**
   * The retained history of committed write groups and the hook for new
   * ones (see `engine/changes.ts`): the change feed reads it.
   */
  get changes(): ChangeHistory {
    return this.#changes;
  }

  /** The newest seqno visible to readers. */
  get visibleSeq(): number {
    return this.#commit.visibleSeq;
  }

  // ---------------------------------------------------------------- status

  /** Whether the store takes writes, and why not. */
  health(): { ok: boolean; reason?: string; code?: string } {
    if (this.#closed) return { ok: false, reason: "closed", code: "closed" };
    const problem = this.#commit.failure ?? this.#commit.diskFull;
    if (problem) {
      return { ok: false, reason: problem.message, code: problem.code };
    }
    return { ok: true };
  }

  /** Counters and sizes, as a JSON-serialisable object. */
  stats(): Record<string, unknown> {
    return dbStats({
      options: this.options,
      counters: this.#counters,
      version: this.#versions.current,
      lastSeq: this.#commit.lastSeq,
      visibleSeq: this.#commit.visibleSeq,
      mem: this.#memtables.mem,
      imm: this.#memtables.imm,
      wal: { number: this.#memtables.walNumber, bytes: this.#commit.log.size },
      manifest: this.#manifest.stats(),
      tables: this.#tables,
      blockCache: this.#blockCache,
      snapshots: this.#snapshots.count,
      background: this.#scheduler.running,
      writeState: this.#scheduler.writeState(),
      recovery: this.recovery,
    });
  }

  // ---------------------------------------------------------------- close

  /**
   * Stops taking writes, finishes queued ones (synced), waits for background
   * work, closes files and releases the directory lock. Calling it again
   * waits for the first call.
   *
   * @throws {ReadOnlyError} or an I/O error when the final sync fails; the
   *   lock is released anyway.
   */
  close(): Promise<void> {
    // A second call gets the first one's promise: it resolves only once the
    // files are closed and the directory lock released.
    this.#closing ??= this.#closed ? Promise.resolve() : this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    await this.#commit.stop();
    this.#closed = true;
    this.#scheduler.wakeStalled();
    if (!this.#commit.failure) await this.#commit.markCleanClose();
    await this.#scheduler.idle();
    await this.#manifest.idle();
    this.#abandon();
  }

  /** Releases every resource without waiting for anything. */
  #abandon(): void {
    this.#closed = true;
    this.#released = true;
    if (this.#lagTimer !== undefined) clearInterval(this.#lagTimer);
    this.#tables.closeAll();
    this.#scheduler?.close();
    this.#commit?.close();
    this.#manifest?.close();
    this.#lock.release();
  }
}
