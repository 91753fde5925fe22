/**
 * DbImpl: the engine behind {@link Db} (LevelDB's DBImpl). It owns the
 * parts and wires them together: the write path (write.ts) and the commit
 * pipeline behind it (commit.ts), the memtables (memtables.ts), the read
 * path (read.ts), the scheduler of flushes and compactions (scheduler.ts),
 * the manifest log (manifest_log.ts), the table cache and the data
 * directory's files (data_dir.ts); and it runs open, flush and close
 * across them. db.ts is the public, documented surface over it.
 *
 * @module
 */
import type { BackupPin } from "./backup.ts";
import { RangeTombstoneSet } from "./range_tombstone_set.ts";
import { BlockCache } from "./cache.ts";
import { ClosedError } from "./errors.ts";
import { type FileSystem, realFs } from "./fs.ts";
import { ChangeHistory } from "./changes.ts";
import { type ManifestState, ManifestWriter } from "./manifest.ts";
import { DataDir } from "./data_dir.ts";
import { lockPath, logPath } from "./filename.ts";
import type { Recovered } from "./recovery.ts";
import {
  accessWarning,
  makeDataDir,
  recover,
  removeUnreferenced,
} from "./recovery.ts";
import {
  type ResolvedOptions,
  resolveOptions,
  tableMetaLimit,
} from "./options.ts";
import { TableCache } from "./table_cache.ts";
import type {
  BatchOp,
  DbOptions,
  ReadResult,
  RecoveryInfo,
  ScanItem,
  ScanOptions,
  Snapshot,
} from "./types.ts";
import { USER_KEY_SPACE } from "./types.ts";
import { versionFromState, VersionSet } from "./version.ts";
import { createLog, WAL_MAGIC } from "./wal.ts";
import { CommitPipeline } from "./commit.ts";
import type { CommitEnv } from "./commit_env.ts";
import { MemtableSet } from "./memtables.ts";
import { Scheduler, type SchedulerEnv } from "./scheduler.ts";
import { SnapshotList } from "./snapshots.ts";
import { dbStats, newCounters, startLagMonitor } from "./stats.ts";
import { ManifestLog } from "./manifest_log.ts";
import { ReadPath } from "./read.ts";
import { checkKey, spaceKey } from "./batch.ts";
import { WritePath } from "./write.ts";

/** The engine behind a {@link Db}; see the module comment. */
export class DbImpl {
  /** The data directory. */
  readonly dir: string;
  /** The options in force, every default filled in. */
  readonly options: ResolvedOptions;
  /** Its file system, the file numbers, obsolete-file removal. */
  #dataDir: DataDir;
  #lock: { release(): void };
  #closed = false;
  /** The close() in progress or done. */
  #closing: Promise<void> | undefined;

  /** The live memtable, the frozen ones, the live WAL segment's number. */
  #memtables = new MemtableSet();
  /** The write queue, the WAL and the failure state (set by #start). */
  #commit!: CommitPipeline;
  /** Validation, backpressure and conditions before a commit (set by #start). */
  #write!: WritePath;
  /** Point lookups and scans over the memtables and tables. */
  #read: ReadPath;
  #changes!: ChangeHistory;
  #snapshots = new SnapshotList();

  #state: ManifestState;
  /** Every range tombstone, persisted or in a memtable. */
  #rangeDels: RangeTombstoneSet;
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
    this.#dataDir = new DataDir(fs, dir);
    this.#lock = lock;
    this.#state = state;
    this.#blockCache = new BlockCache(options.blockCacheBytes);
    this.#tables = new TableCache(
      fs,
      dir,
      this.#blockCache,
      options.maxOpenTables,
      options.readMode,
      tableMetaLimit(options),
    );
    this.#versions = new VersionSet(versionFromState(state));
    this.#versions.onObsolete = (n) => {
      this.#tables.evict(n);
      this.#dataDir.removeTable(n);
    };
    this.#rangeDels = new RangeTombstoneSet({
      state,
      memtables: this.#memtables,
      versions: this.#versions,
      logAndApply: (edit) => this.#manifest.logAndApply(edit),
    });
    this.#read = new ReadPath({
      memtable: () => this.#memtables.mem,
      immutables: () => this.#memtables.imm,
      versions: this.#versions,
      tables: this.#tables,
      clock: options.clock,
      closed: () => this.#closed,
      visibleSeq: () => this.#commit.visibleSeq,
      counters: this.#counters,
      rangeTombstones: () => this.#rangeDels.index(),
    }, options.maxKeyBytes);
    this.#lagTimer = startLagMonitor(this.#counters);
  }

  /** See {@link Db.open}. */
  static async open(dir: string, options?: DbOptions): Promise<DbImpl> {
    const started = performance.now();
    const opts = resolveOptions(options);
    const fs = opts.fs ?? realFs;
    const warning = accessWarning(fs, dir);
    await makeDataDir(fs, dir);
    const lock = fs.lock(lockPath(dir));
    let db: DbImpl | undefined;
    try {
      const recovered = await recover(fs, dir, opts);
      db = new DbImpl(dir, opts, fs, lock, recovered.state);
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
    const fs = this.#dataDir.fs;
    this.#dataDir.next = r.nextFile;
    this.#changes = ChangeHistory.fromRecovered(
      r.entries,
      r.lastSeq,
      this.options.changeHistoryBytes,
    );

    const firstLive = r.replayed.count > 0 ? r.replayedLogs : [];
    if (r.replayed.count > 0) {
      this.#memtables.imm.push({ mem: r.replayed, walNumbers: firstLive });
    }
    this.#memtables.walNumber = this.#dataDir.next++;
    const wal = await createLog(
      fs,
      logPath(this.dir, this.#memtables.walNumber),
      WAL_MAGIC,
    );
    this.#commit = new CommitPipeline(this.#commitEnv(), wal, r.lastSeq);
    this.#scheduler = new Scheduler(this.#schedulerEnv());
    this.#write = new WritePath({
      limits: this.options,
      commit: this.#commit,
      waitForRoom: () => this.#scheduler.waitForRoom(),
      checkWritable: () => this.#checkWritable(),
      storedKey: (space, key) => this.#read.storedKey(space, key),
      visibleVersion: (key) => this.#read.visibleVersion(key),
      counters: this.#counters,
    });
    this.#state.logNumber = firstLive.length > 0
      ? firstLive[0]
      : this.#memtables.walNumber;
    this.#state.lastSeq = r.lastSeq;
    const manifestNumber = this.#dataDir.next++;
    this.#state.nextFileNumber = this.#dataDir.next;
    this.#manifest = new ManifestLog(
      {
        ...this.#dataDir.files(),
        versions: this.#versions,
        commit: this.#commit,
        maxManifestBytes: this.options.maxManifestBytes,
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
      published: (seq, entries, payload) =>
        this.#changes.publish(seq, entries, false, payload),
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
      ...this.#dataDir.files(),
      options: this.options,
      commit: this.#commit,
      versions: this.#versions,
      counters: this.#counters,
      closed: () => this.#closed,
      checkWritable: () => this.#checkWritable(),
      immutables: () => this.#memtables.imm,
      flushed: (imm) => this.#memtables.flushed(imm),
      walNumber: () => this.#memtables.walNumber,
      compactPointers: () => this.#state.compactPointers,
      oldestSnapshotSeq: () => this.oldestSnapshotSeq(),
      logAndApply: (edit) => this.#manifest.logAndApply(edit),
      rangeTombstones: () => this.#rangeDels.all(),
      dropObsoleteRangeTombstones: () => this.#rangeDels.dropObsolete(),
    };
  }

  // ---------------------------------------------------------------- writes

  /** Db.batch (and put, delete) in key space `space`. */
  batch(space: number, ops: readonly BatchOp[]): Promise<number> {
    return this.#write.batch(space, ops);
  }

  /** See {@link Db.whenSettled}. */
  whenSettled(key: Uint8Array): Promise<boolean> | undefined {
    if (this.#closed) throw new ClosedError();
    return this.#write.whenSettled(key);
  }

  #rotate(): Promise<void> {
    return this.#memtables.rotate({
      ...this.#dataDir.files(),
      commit: this.#commit,
      failed: (err) => this.#scheduler.backgroundFailed(err, "new WAL segment"),
      frozen: () => this.#scheduler.maybeScheduleFlush(),
    });
  }

  #checkWritable(): void {
    if (this.#closed) throw new ClosedError();
    if (this.#commit.failure) throw this.#commit.failure;
  }

  /** See {@link Db.compactRange}. */
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
    await this.#dataDir.idle();
  }

  /** See {@link Db.compactUntilIdle}. */
  async compactUntilIdle(): Promise<void> {
    await this.#scheduler.untilIdle();
    await this.#dataDir.idle();
  }

  /** See {@link Db.flush}. */
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
   * Db.get in key space `space`; `borrow` as for ReadPath.get (the value may
   * be a view into a mapped table, valid until the caller yields).
   */
  get(
    space: number,
    key: Uint8Array,
    opts?: { snapshot?: Snapshot },
    borrow = false,
  ): ReadResult | undefined {
    if (this.#closed) throw new ClosedError();
    checkKey(this.options, key);
    this.#counters.gets++;
    return this.#read.get(
      this.#read.storedKey(space, key),
      opts?.snapshot?.seq ?? this.#commit.visibleSeq,
      borrow,
    );
  }

  /** Db.version in key space `space`. */
  version(space: number, userKey: Uint8Array): number | null {
    if (this.#closed) throw new ClosedError();
    return this.#write.version(space, userKey);
  }

  /** Db.scan in key space `space`. */
  scan(space: number, opts: ScanOptions = {}): Generator<ScanItem> {
    if (this.#closed) throw new ClosedError();
    const it = this.#read.scan(space, opts);
    // Run the body up to its first (internal) yield: that takes the
    // snapshot now. From then on, return() releases what it pinned.
    it.next();
    return it;
  }

  /** See {@link Db.snapshot}. */
  snapshot(): Snapshot {
    if (this.#closed) throw new ClosedError();
    return this.#snapshots.take(this.#commit.visibleSeq);
  }

  /** The oldest seqno a live snapshot still reads at (or the visible seqno). */
  oldestSnapshotSeq(): number {
    return this.#snapshots.oldest(this.#commit.visibleSeq);
  }

  /** See {@link Db.pinForBackup}. */
  pinForBackup(): BackupPin {
    if (this.#closed) throw new ClosedError();
    const version = this.#versions.pin();
    let released = false;
    return {
      version,
      seq: this.#commit.visibleSeq,
      memtables: this.#memtables.all(),
      rangeTombstones: this.#rangeDels.persistedList(),
      fs: this.#dataDir.fs,
      release: () => {
        if (released) return;
        released = true;
        if (!this.#dataDir.released) this.#versions.unpin(version);
      },
    };
  }

  /** The last seqno handed out. */
  get lastSeq(): number {
    return this.#commit.lastSeq;
  }

  /** See {@link Db.changes}. */
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
    return this.#commit.health();
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
      changeHistoryBytes: this.#changes.bytes,
      snapshots: this.#snapshots.count,
      rangeTombstones: {
        persisted: this.#rangeDels.persisted,
        live: this.#rangeDels.index()?.size ?? 0,
      },
      background: {
        ...this.#scheduler.running,
        compactionNice: this.#scheduler.compactionNice,
      },
      workers: this.#scheduler.workerMemory(),
      writeState: this.#scheduler.writeState(),
      recovery: this.recovery,
    });
  }

  // ---------------------------------------------------------------- close

  /** See {@link Db.close}. */
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
    // Obsolete files go before the lock does (the next owner's open would
    // race the deletions otherwise).
    await this.#dataDir.idle();
    this.#abandon();
  }

  /** Releases every resource without waiting for anything. */
  #abandon(): void {
    this.#closed = true;
    this.#dataDir.released = true;
    if (this.#lagTimer !== undefined) clearInterval(this.#lagTimer);
    this.#tables.closeAll();
    this.#scheduler?.close();
    this.#commit?.close();
    this.#manifest?.close();
    this.#lock.release();
  }
}
