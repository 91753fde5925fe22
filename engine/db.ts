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
import type { JobRunner } from "./background.ts";
import { InlineRunner, WorkerRunner } from "./background.ts";
import { unrefTimer } from "./runtime.ts";
import {
  Arena,
  binaryString,
  ByteWriter,
  compareBytes,
  prefixEnd,
} from "./coding.ts";
import type {
  CompactionJob,
  CompactionPick,
  CompactionResult,
} from "./compaction.ts";
import {
  levelScore,
  levelTarget,
  pickCompaction,
  pickFor,
} from "./compaction.ts";
import { BlockCache } from "./cache.ts";
import type { Entry, EntryIterator } from "./entry.ts";
import {
  isLive,
  KIND_DELETE,
  KIND_PUT,
  KIND_RANGE_DELETE,
  MAX_SEQ,
} from "./entry.ts";
import {
  ClosedError,
  InvalidArgumentError,
  PreconditionFailedError,
  ReadOnlyError,
  ShaleError,
  wrapIoError,
} from "./errors.ts";
import type { FileSystem, WritableFile } from "./fs.ts";
import { realFs } from "./fs.ts";
import { ChangeHistory } from "./changes.ts";
import { LevelIterator, MergingIterator, visibleEntries } from "./iterator.ts";
import type { FlushResult, TableSettings } from "./jobs.ts";
import type { ManifestState, TableMeta, VersionEdit } from "./manifest.ts";
import {
  applyEdit,
  ManifestWriter,
  NUM_LEVELS,
  setCurrent,
} from "./manifest.ts";
import { lockPath, logPath, manifestFileName, tablePath } from "./filename.ts";
import { Memtable } from "./memtable.ts";
import type { RangeTombstone } from "./range_tombstones.ts";
import {
  covers,
  deleteRangeEntry,
  dropCoveredOps,
  obsoleteTombstones,
  overlapsBounds,
  RangeTombstoneIndex,
  tombstoneFromEntry,
} from "./range_tombstones.ts";
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
  VersionedKey,
} from "./types.ts";
import { MAX_KEY_SPACE, USER_KEY_SPACE } from "./types.ts";
import type { TableProps } from "./sstable/writer.ts";
import type { Version } from "./version.ts";
import {
  findTableIndex,
  overlaps,
  versionFromState,
  VersionSet,
} from "./version.ts";
import {
  closeMarker,
  createLog,
  encodeBatchOps,
  frameBatch,
  WAL_MAGIC,
} from "./wal.ts";

/** A versioned put found by validation: which op, and its encoded entry. */
interface KeyStamp {
  op: number;
  entry: Entry;
  build: VersionedKey;
}

interface PendingWrite {
  seq: number;
  entries: Entry[];
  /** binaryString() of each entry's key, computed once. */
  skeys: string[];
  resolve: (seq: number) => void;
  reject: (err: Error) => void;
  /**
   * Callers whose answer depends on this write (see #checkConditions), told
   * once it is visible (true) or has failed (false).
   */
  watchers?: ((visible: boolean) => void)[];
}

/** A write accepted for a key and not yet visible or failed. */
interface Inflight {
  /** Whether the key exists after this write (a live put). */
  live: boolean;
  write: PendingWrite;
}

/**
 * A condition decision that depends on writes still in flight: answer only
 * once they are visible (then `error`, if any, stands), or re-check when one
 * of them failed.
 */
interface PendingVerdict {
  waitFor: PendingWrite[];
  error?: PreconditionFailedError;
}

interface Immutable {
  mem: Memtable;
  walNumbers: number[];
}

const EMPTY = new Uint8Array(0);

/** The stored form of `key` in `space` (a new array: for bounds that live on). */
function spaceKey(space: number, key: Uint8Array = EMPTY): Uint8Array {
  const out = new Uint8Array(key.length + 1);
  out[0] = space;
  out.set(key, 1);
  return out;
}

function putOp(key: Uint8Array, value: Uint8Array, opts?: PutOptions): BatchOp {
  return {
    type: "put",
    key,
    value,
    expiresAt: opts?.expiresAt,
    encoding: opts?.encoding,
    ifVersion: opts?.ifVersion,
    versionedKey: opts?.versionedKey,
  };
}

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
  /** Set after a failed fsync or manifest write: the store is read-only until reopened. */
  #failure: ShaleError | undefined;
  /**
   * Set while the disk is full: the failing write was undone and rejected,
   * and writes are retried as they come; cleared by the next success.
   */
  #diskFull: ShaleError | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Background work hit a full disk; it waits for the retry timer. */
  #backgroundBlocked = false;

  #mem = new Memtable();
  #imm: Immutable[] = []; // newest first
  #wal!: WritableFile;
  #walNumber = 0;
  #walBuf = new ByteWriter(64 * 1024);
  /**
   * Where write batches are copied to. Entries of one memtable come from
   * neighbouring slabs, so slabs are freed together when it is flushed.
   */
  #arena = new Arena();
  /**
   * Where point reads build the stored key (space byte + key), and views of
   * it by length, made once each: a new array costs ~1.3 us, a new view
   * ~80 ns, a cached one nothing. Only synchronous code uses them, and
   * nothing keeps a view.
   */
  #keyScratch: Uint8Array;
  #scratchViews: (Uint8Array | undefined)[];
  #spaces = new Map<number, KeySpace>();
  #queue: PendingWrite[] = [];
  #committing = false;
  #commitDone: Promise<void> = Promise.resolve();
  #inflight = new Map<string, Inflight>();
  /** Range deletes accepted and not yet visible or failed. */
  #inflightRanges: { t: RangeTombstone; write: PendingWrite }[] = [];
  /** The read index of every range tombstone, and what it was built from. */
  #rangeCache:
    | {
      mem: Memtable;
      len: number;
      imm: number;
      gen: number;
      index: RangeTombstoneIndex | undefined;
    }
    | undefined;
  #walDirty = false;
  #intervalTimer: ReturnType<typeof setInterval> | undefined;

  #lastSeq = 0;
  #visibleSeq = 0;
  #changes!: ChangeHistory;
  #nextFile = 1;
  #snapshots = new Map<number, number>();

  #state: ManifestState;
  #manifest!: ManifestWriter;
  #manifestChain: Promise<void> = Promise.resolve();
  #versions: VersionSet;
  #tables: TableCache;
  #blockCache: BlockCache;
  #flushRunner: JobRunner;
  #flushing: Promise<void> | undefined;
  #compactRunner: JobRunner;
  #compacting: Promise<void> | undefined;
  #lagTimer: ReturnType<typeof setInterval> | undefined;
  #stallWaiters: (() => void)[] = [];

  /** What open-time recovery found and did (set by {@link Db.open}). */
  recovery!: RecoveryInfo;
  #counters = {
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
    this.#keyScratch = new Uint8Array(options.maxKeyBytes + 1);
    this.#scratchViews = new Array(options.maxKeyBytes + 2).fill(undefined);
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
    const inline = options.background === "inline";
    this.#flushRunner = inline ? new InlineRunner(fs) : new WorkerRunner();
    this.#compactRunner = inline ? new InlineRunner(fs) : new WorkerRunner();
    this.#startLagMonitor();
  }

  /**
   * Measures how late a short timer fires: the longest event-loop stall,
   * reported in stats, is how we know background work never blocks reads.
   */
  #startLagMonitor(): void {
    const period = 20;
    let expected = performance.now() + period;
    this.#lagTimer = setInterval(() => {
      const now = performance.now();
      const late = now - expected;
      if (late > this.#counters.maxEventLoopStallMs) {
        this.#counters.maxEventLoopStallMs = Math.round(late * 1000) / 1000;
      }
      expected = now + period;
    }, period);
    unrefTimer(this.#lagTimer);
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
    this.#lastSeq = r.lastSeq;
    this.#visibleSeq = this.#lastSeq;
    this.#changes = ChangeHistory.fromRecovered(
      r.entries,
      this.#lastSeq,
      this.options.changeHistoryBytes,
    );

    const firstLive = r.replayed.count > 0 ? r.replayedLogs : [];
    if (r.replayed.count > 0) {
      this.#imm.push({ mem: r.replayed, walNumbers: firstLive });
    }
    this.#walNumber = this.#nextFile++;
    this.#wal = await createLog(
      fs,
      logPath(this.dir, this.#walNumber),
      WAL_MAGIC,
    );
    this.#state.logNumber = firstLive.length > 0
      ? firstLive[0]
      : this.#walNumber;
    this.#state.lastSeq = this.#lastSeq;
    const manifestNumber = this.#nextFile++;
    this.#state.nextFileNumber = this.#nextFile;
    this.#manifest = await ManifestWriter.create(
      fs,
      this.dir,
      manifestNumber,
      this.#state,
    );
    this.recovery.removedFiles.push(
      ...removeUnreferenced(fs, this.dir, this.#state, {
        logs: new Set(firstLive),
        walNumber: this.#walNumber,
        manifest: this.#manifest.name,
      }),
    );
    this.#startIntervalSync();
    this.#maybeScheduleFlush();
    this.#maybeScheduleCompaction();
  }

  #startIntervalSync(): void {
    if (this.options.sync !== "interval") return;
    this.#intervalTimer = setInterval(() => {
      if (!this.#walDirty || this.#failure) return;
      this.#walDirty = false;
      this.#wal.sync().then(
        () => this.#counters.walSyncs++,
        (err) => this.#fail(wrapIoError(err, "interval WAL sync")),
      );
    }, this.options.syncIntervalMs);
    unrefTimer(this.#intervalTimer);
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
   * for (const k of ["a", "b", "c", "d"]) {
   *   await db.put(enc.encode(k), enc.encode("x"));
   * }
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
    return this.#batch(USER_KEY_SPACE, [{ type: "deleteRange", start, end }]);
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
        deleteRange: (start, end) =>
          this.#batch(id, [{ type: "deleteRange", start, end }]),
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
    const { entries, versioned } = this.#validate(ops);
    const encoded = encodeBatchOps(entries, this.#arena, space);
    let stamps: KeyStamp[] | undefined;
    if (versioned !== undefined) {
      stamps = [];
      for (let i = 0; i < entries.length; i++) {
        const op = versioned.get(entries[i]);
        if (op === undefined) continue;
        const build = (ops[op] as { versionedKey: VersionedKey }).versionedKey;
        stamps.push({ op, entry: encoded.entries[i], build });
      }
    }
    await this.#waitForRoom();
    for (;;) {
      this.#checkWritable();
      // Decided and enqueued in one synchronous stretch: no other write can
      // be accepted between the check and this write's seqno.
      const pending = this.#checkConditions(space, ops, entries.length > 0);
      if (pending === undefined) break;
      if (await this.#settled(pending.waitFor)) {
        if (pending.error) {
          this.#counters.preconditionFailures++;
          throw pending.error;
        }
        this.#checkWritable();
        return this.#visibleSeq;
      }
      // A write the answer depended on failed: decide again.
    }
    if (entries.length === 0) return this.#visibleSeq;
    return this.#enqueue(
      encoded.entries,
      encoded.payload,
      ops.length > 1,
      stamps,
    );
  }

  /**
   * Checks every op and returns the entries to write (seq still 0), views
   * of the caller's buffers. Ops of a batch share one seqno, so two versions
   * of one key could not be ordered: the last op for a key wins, as it would
   * in a sequence of writes.
   */
  #validate(
    ops: readonly BatchOp[],
  ): { entries: Entry[]; versioned?: Map<Entry, number> } {
    if (!Array.isArray(ops) || ops.length === 0) {
      throw new InvalidArgumentError("a batch needs at least one op");
    }
    const entries: (Entry | undefined)[] = [];
    let slotOf: Map<string, number> | undefined;
    let dropped = 0;
    /** Entries of versioned puts -> their op index. */
    let versioned: Map<Entry, number> | undefined;
    let ranges = false;
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i];
      if (op?.type === "deleteRange") {
        if ((op as { ifVersion?: unknown }).ifVersion !== undefined) {
          throw new InvalidArgumentError(
            `op ${i}: a range delete takes no condition`,
          );
        }
        entries.push(deleteRangeEntry(op, i, this.options.maxKeyBytes));
        ranges = true;
        continue;
      }
      this.#checkKey(op.key);
      const build = op.type === "put" ? op.versionedKey : undefined;
      if (build !== undefined) {
        if (typeof build !== "function") {
          throw new InvalidArgumentError(
            `op ${i}: versionedKey must be a function`,
          );
        }
        if (op.ifVersion !== undefined) {
          throw new InvalidArgumentError(
            `op ${i}: a put with a versioned key cannot take ifVersion`,
          );
        }
      }
      if (ops.length > 1 && op.type !== "check") {
        slotOf ??= new Map();
        // Placeholders of versioned keys are no keys: they only meet each
        // other (0x100 never occurs in a binary string).
        const id = build !== undefined
          ? "\u0100" + binaryString(op.key)
          : binaryString(op.key);
        const earlier = slotOf.get(id);
        if (earlier !== undefined) {
          entries[earlier] = undefined;
          dropped++;
        }
        slotOf.set(id, entries.length);
      }
      if (op.type === "put") {
        if (!(op.value instanceof Uint8Array)) {
          throw new InvalidArgumentError(`op ${i}: value must be bytes`);
        }
        if (op.value.length > this.options.maxValueBytes) {
          throw new InvalidArgumentError(
            `op ${i}: value of ${op.value.length} bytes exceeds the limit of ${this.options.maxValueBytes}`,
            "value_too_large",
          );
        }
        const expiresAt = op.expiresAt ?? 0;
        if (!Number.isSafeInteger(expiresAt) || expiresAt < 0) {
          throw new InvalidArgumentError(
            `op ${i}: expiresAt must be a non-negative integer`,
          );
        }
        const encoding = op.encoding ?? 0;
        if (!Number.isInteger(encoding) || encoding < 0 || encoding > 255) {
          throw new InvalidArgumentError(`op ${i}: encoding must be 0..255`);
        }
        const entry: Entry = {
          key: op.key,
          seq: 0,
          kind: KIND_PUT,
          encoding,
          expiresAt,
          value: op.value,
        };
        entries.push(entry);
        if (build !== undefined) (versioned ??= new Map()).set(entry, i);
      } else if (op.type === "delete") {
        entries.push({
          key: op.key,
          seq: 0,
          kind: KIND_DELETE,
          encoding: 0,
          expiresAt: 0,
          value: EMPTY,
        });
      } else if (op.type !== "check") {
        throw new InvalidArgumentError(
          `op ${i}: type must be put, delete, check or deleteRange`,
        );
      }
      const v = op.ifVersion;
      if (
        v !== undefined && v !== null && !(Number.isSafeInteger(v) && v >= 0)
      ) {
        throw new InvalidArgumentError(
          `op ${i}: ifVersion must be a version number or null`,
        );
      }
      if (op.type === "check" && v === undefined) {
        throw new InvalidArgumentError(`op ${i}: a check needs ifVersion`);
      }
    }
    let kept = dropped === 0
      ? entries as Entry[]
      : entries.filter((e): e is Entry => e !== undefined);
    if (ranges) {
      if (versioned !== undefined) {
        throw new InvalidArgumentError(
          "a batch with a range delete cannot hold a versioned-key put",
        );
      }
      kept = dropCoveredOps(kept);
    }
    return { entries: kept, versioned };
  }

  #checkKey(key: Uint8Array): void {
    if (!(key instanceof Uint8Array) || key.length === 0) {
      throw new InvalidArgumentError("key must be 1 or more bytes");
    }
    if (key.length > this.options.maxKeyBytes) {
      throw new InvalidArgumentError(
        `key of ${key.length} bytes exceeds the limit of ${this.options.maxKeyBytes}`,
        "key_too_long",
      );
    }
  }

  /**
   * Decides a batch's conditions against every accepted write, in-flight
   * ones included, so two racing conditional writes can never both win.
   * Returns undefined when they hold and the batch may be enqueued now
   * (its own fsync then covers every write it was checked against). Throws
   * when one fails against visible state. Otherwise the answer depends on
   * writes readers cannot see yet, and revealing it now would not be
   * linearizable: the caller waits for them (see {@link PendingVerdict}).
   * That is the case for a failed condition whose key has a write in
   * flight, and for a check-only batch (it writes nothing, so no fsync of
   * its own orders it) that read any in-flight write.
   */
  #checkConditions(
    space: number,
    ops: readonly BatchOp[],
    writes: boolean,
  ): PendingVerdict | undefined {
    let read: PendingWrite[] | undefined;
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i];
      if (op.type === "deleteRange" || op.ifVersion === undefined) continue;
      const want = op.ifVersion;
      const key = this.#storedKey(space, op.key);
      const p = this.#inflightAt(key);
      const have = p
        ? (p.live ? p.write.seq : null)
        : this.#visibleVersion(key);
      if (want === null ? have !== null : have !== want) {
        const error = new PreconditionFailedError(
          want === null
            ? `op ${i}: key exists (version ${have})`
            : `op ${i}: expected version ${want}, found ${have ?? "none"}`,
          i,
        );
        if (p) return { waitFor: [p.write], error };
        this.#counters.preconditionFailures++;
        throw error;
      }
      if (p && !writes) (read ??= []).push(p.write);
    }
    return read && { waitFor: read };
  }

  /**
   * Resolves once every write in `writes` is visible (true) or once one of
   * them failed (false). Never rejects.
   */
  #settled(writes: PendingWrite[]): Promise<boolean> {
    return Promise.all(
      writes.map((w) =>
        new Promise<boolean>((r) => (w.watchers ??= []).push(r))
      ),
    ).then((all) => all.every((v) => v));
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
    this.#checkKey(key);
    const p = this.#inflightAt(this.#storedKey(USER_KEY_SPACE, key));
    return p ? this.#settled([p.write]) : undefined;
  }

  /**
   * The newest accepted, not yet visible write to stored key `key`: a
   * write of the key itself, or a range delete covering it.
   */
  #inflightAt(key: Uint8Array): Inflight | undefined {
    let p = this.#inflight.size > 0
      ? this.#inflight.get(binaryString(key))
      : undefined;
    for (const r of this.#inflightRanges) {
      // A write of the key in the same batch (same seqno) comes after it.
      if (covers(r.t, key) && (!p || r.write.seq > p.write.seq)) {
        p = { live: false, write: r.write };
      }
    }
    return p;
  }

  /** Resolves a write's caller and whoever waits on its outcome. */
  #resolveWrite(w: PendingWrite): void {
    w.resolve(w.seq);
    if (w.watchers) { for (const f of w.watchers) f(true); }
  }

  /** Rejects a write's caller and tells whoever waits on its outcome. */
  #rejectWrite(w: PendingWrite, err: Error): void {
    this.#dropInflight(w);
    w.reject(err);
    if (w.watchers) { for (const f of w.watchers) f(false); }
  }

  #checkWritable(): void {
    if (this.#closed) throw new ClosedError();
    if (this.#failure) throw this.#failure;
  }

  #enqueue(
    entries: Entry[],
    opsPayload: Uint8Array,
    isBatch: boolean,
    stamps?: KeyStamp[],
  ): Promise<number> {
    const seq = this.#lastSeq + 1;
    // Throws (and the batch fails) before the seqno is used up.
    if (stamps !== undefined) this.#stampKeys(entries, stamps, seq);
    this.#lastSeq = seq;
    const skeys: string[] = [];
    for (const e of entries) {
      e.seq = seq;
      const skey = binaryString(e.key);
      skeys.push(skey);
      if (e.kind === KIND_PUT) this.#counters.puts++;
      else this.#counters.deletes++;
      this.#counters.userBytes += e.key.length - 1 + e.value.length;
    }
    if (isBatch) this.#counters.batches++;
    frameBatch(this.#walBuf, seq, opsPayload);
    return new Promise<number>((resolve, reject) => {
      const write: PendingWrite = { seq, entries, skeys, resolve, reject };
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i];
        if (e.kind === KIND_RANGE_DELETE) {
          this.#inflightRanges.push({ t: tombstoneFromEntry(e), write });
          continue;
        }
        this.#inflight.set(skeys[i], {
          live: e.kind === KIND_PUT &&
            (e.expiresAt === 0 || e.expiresAt > this.options.clock()),
          write,
        });
      }
      this.#queue.push(write);
      if (!this.#committing) {
        this.#committing = true;
        this.#commitDone = this.#commitLoop();
      }
    });
  }

  /**
   * Writes the keys of versioned puts, now that their version `seq` is
   * known, into the encoded batch (entry keys are views into it, so the WAL
   * record framed next and the memtable both get the final key).
   */
  #stampKeys(entries: Entry[], stamps: KeyStamp[], seq: number): void {
    for (const s of stamps) {
      const stored = s.entry.key; // space byte + placeholder
      const key = s.build(seq);
      if (!(key instanceof Uint8Array) || key.length !== stored.length - 1) {
        throw new InvalidArgumentError(
          `op ${s.op}: versionedKey must return ${
            stored.length - 1
          } bytes (the placeholder's length), got ${
            key instanceof Uint8Array ? key.length : typeof key
          }`,
        );
      }
      stored.set(key, 1);
    }
    // Two versions of one key under one seqno could not be ordered.
    if (entries.length === 1) return;
    const seen = new Set<string>();
    for (const e of entries) seen.add(binaryString(e.key));
    if (seen.size === entries.length) return;
    for (const s of stamps) {
      const id = binaryString(s.entry.key);
      let n = 0;
      for (const e of entries) if (binaryString(e.key) === id) n++;
      if (n > 1) {
        throw new InvalidArgumentError(
          `op ${s.op}: its versioned key equals another key of the batch`,
        );
      }
    }
  }

  /**
   * Group commit: while writes are queued, take all of them, write their
   * records with one write and one fdatasync, apply them to the memtable and
   * resolve them. Writes arriving during the fsync form the next group.
   */
  async #commitLoop(): Promise<void> {
    await Promise.resolve(); // let writes of this tick join the first group
    try {
      while (this.#queue.length > 0 && !this.#failure) {
        if (this.#mem.bytes >= this.options.memtableBytes) {
          await this.#rotate();
          if (this.#failure) break;
        }
        const group = this.#queue;
        this.#queue = [];
        const data = this.#walBuf.finish();
        this.#walBuf.reset();
        const walSize = this.#wal.size;
        try {
          this.#wal.append(data);
        } catch (err) {
          // A failed append (typically ENOSPC) wrote nothing durable: cut
          // the partial record off and reject just this group. Only if the
          // cut fails is the log in doubt, and the store turns read-only.
          const e = wrapIoError(err, "WAL write");
          try {
            this.#wal.truncate(walSize);
          } catch {
            this.#fail(e);
          }
          if (!this.#failure) this.#noteDiskFull(e);
          for (const w of group) this.#rejectWrite(w, this.#failure ?? e);
          continue;
        }
        if (!this.#backgroundBlocked) this.#diskFull = undefined;
        try {
          this.#counters.walBytes += data.length;
          if (this.options.sync === "always") {
            await this.#wal.sync();
            this.#counters.walSyncs++;
          } else {
            this.#walDirty = true;
          }
        } catch (err) {
          this.#fail(wrapIoError(err, "WAL write"));
          for (const w of group) this.#rejectWrite(w, this.#failure!);
          break;
        }
        this.#counters.writeGroups++;
        if (group.length === 1) {
          this.#mem.addMany(group[0].entries, group[0].skeys);
        } else {
          const entries: Entry[] = [];
          const skeys: string[] = [];
          for (const w of group) {
            for (let i = 0; i < w.entries.length; i++) {
              entries.push(w.entries[i]);
              skeys.push(w.skeys[i]);
            }
          }
          this.#mem.addMany(entries, skeys);
        }
        for (const w of group) {
          this.#visibleSeq = w.seq;
          this.#dropInflight(w);
          this.#changes.publish(w.seq, w.entries); // the change feed's hook
        }
        for (const w of group) this.#resolveWrite(w);
      }
    } catch (err) {
      // Nothing above should throw; if something does, fail loudly rather
      // than leave queued writers waiting forever.
      this.#fail(wrapIoError(err, "commit loop"));
    } finally {
      if (this.#failure) {
        for (const w of this.#queue) this.#rejectWrite(w, this.#failure);
        this.#queue = [];
        this.#walBuf.reset();
      }
      this.#committing = false;
    }
  }

  #dropInflight(w: PendingWrite): void {
    for (const id of w.skeys) {
      if (this.#inflight.get(id)?.write === w) this.#inflight.delete(id);
    }
    if (this.#inflightRanges.length > 0) {
      this.#inflightRanges = this.#inflightRanges.filter((r) => r.write !== w);
    }
  }

  /** Turns the store read-only after a failed fsync or manifest write. */
  #fail(err: ShaleError): void {
    if (this.#failure) return;
    this.#failure = new ReadOnlyError(err.message, { cause: err });
  }

  /**
   * Background work or a WAL append hit a full disk. Nothing was lost;
   * health reports it, background work retries every second, and writes
   * that would have to wait for a flush are rejected with disk_full.
   */
  #noteDiskFull(err: ShaleError): void {
    this.#diskFull = err;
    this.#wakeStalled();
    if (this.#retryTimer !== undefined || this.#closed) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#backgroundBlocked = false;
      this.#maybeScheduleFlush();
      this.#maybeScheduleCompaction();
    }, 1000);
    unrefTimer(this.#retryTimer);
  }

  /** Routes a background failure: a full disk is retried, anything else is fatal. */
  #backgroundFailed(err: unknown, what: string): void {
    const e = wrapIoError(err, what);
    if (e.code === "disk_full") {
      this.#backgroundBlocked = true;
      this.#noteDiskFull(e);
    } else this.#fail(e);
  }

  /** Freezes the memtable and starts a new one with a new WAL segment. */
  async #rotate(): Promise<void> {
    const n = this.#nextFile++;
    let wal: WritableFile;
    try {
      // The old segment must be complete on disk before the new one gets
      // a record: recovery treats a bad tail in any but the newest segment
      // as corruption. With sync "always" every record is already synced.
      if (this.options.sync !== "always") await this.#wal.sync();
      wal = await createLog(
        this.#fs,
        logPath(this.dir, n),
        WAL_MAGIC,
      );
      await this.#fs.syncDir(this.dir);
    } catch (err) {
      // Keep writing to the current segment; the memtable just grows.
      this.#removeQuietly(logPath(this.dir, n));
      this.#backgroundFailed(err, "new WAL segment");
      return;
    }
    this.#wal.close();
    this.#imm.unshift({ mem: this.#mem, walNumbers: [this.#walNumber] });
    this.#mem = new Memtable();
    this.#wal = wal;
    this.#walNumber = n;
    this.#maybeScheduleFlush();
  }

  /**
   * Backpressure: waits while too many frozen memtables await their flush,
   * so memory stays bounded when writes outpace the disk.
   */
  async #waitForRoom(): Promise<void> {
    const l0 = this.#versions.current.levels[0].length;
    if (
      l0 >= this.options.l0SlowdownTrigger && l0 < this.options.l0StopTrigger
    ) {
      // Slowdown: give compaction a millisecond per write instead of
      // letting L0 (and read amplification) grow until a hard stop.
      this.#counters.slowdowns++;
      await new Promise((r) => setTimeout(r, 1));
    }
    if (!this.#mustStall()) return;
    // Waiting for a flush that cannot write would hang the caller.
    if (this.#diskFull) throw this.#diskFull;
    const started = performance.now();
    this.#counters.stalls++;
    while (
      this.#mustStall() && !this.#closed && !this.#failure && !this.#diskFull
    ) {
      await new Promise<void>((r) => this.#stallWaiters.push(r));
    }
    this.#counters.stallMs += performance.now() - started;
    if (this.#diskFull && this.#mustStall()) throw this.#diskFull;
  }

  #mustStall(): boolean {
    return this.#imm.length >= this.options.maxImmutableMemtables ||
      this.#versions.current.levels[0].length >= this.options.l0StopTrigger;
  }

  /**
   * What {@link #waitForRoom} would do to a write arriving now, and why:
   * the stall and slowdown counters only say it happened before.
   */
  #writeState(): { state: "ok" | "slowdown" | "stall"; reason: string | null } {
    const imm = this.#imm.length;
    const l0 = this.#versions.current.levels[0].length;
    const o = this.options;
    if (imm >= o.maxImmutableMemtables) {
      return {
        state: "stall",
        reason:
          `${imm} frozen memtables wait for a flush (limit ${o.maxImmutableMemtables})`,
      };
    }
    if (l0 >= o.l0StopTrigger) {
      return {
        state: "stall",
        reason: `L0 has ${l0} tables (writes wait at ${o.l0StopTrigger})`,
      };
    }
    if (l0 >= o.l0SlowdownTrigger) {
      return {
        state: "slowdown",
        reason:
          `L0 has ${l0} tables (writes slow down at ${o.l0SlowdownTrigger})`,
      };
    }
    return { state: "ok", reason: null };
  }

  #wakeStalled(): void {
    const waiters = this.#stallWaiters;
    this.#stallWaiters = [];
    for (const w of waiters) w();
  }

  // ---------------------------------------------------------------- flush

  #tableSettings(): TableSettings {
    return {
      dir: this.dir,
      blockSize: this.options.blockSize,
      bloomBitsPerKey: this.options.bloomBitsPerKey,
      compression: this.options.compression,
    };
  }

  #maybeScheduleFlush(): void {
    if (this.#flushing || this.#imm.length === 0 || this.#closed) return;
    if (this.#failure || this.#backgroundBlocked) return;
    this.#flushing = this.#flushOldest().finally(() => {
      this.#flushing = undefined;
      this.#wakeStalled();
      this.#maybeScheduleFlush();
      this.#maybeScheduleCompaction();
    });
  }

  // ---------------------------------------------------------- compaction

  #maybeScheduleCompaction(): void {
    if (this.#compacting || this.#closed || this.#failure) return;
    if (this.#backgroundBlocked) return;
    const pick = pickCompaction(
      this.#versions.current,
      this.options,
      this.#state.compactPointers,
    );
    if (!pick) return;
    this.#compacting = this.#compact(pick).finally(() => {
      this.#compacting = undefined;
      this.#wakeStalled();
      this.#maybeScheduleCompaction();
    });
  }

  /**
   * Runs one compaction and installs its result; failures turn the store
   * read-only. `rewrite` merges even a lone table that could just move
   * down a level (compactRange: so the range tombstones over it apply).
   */
  async #compact(pick: CompactionPick, rewrite = false): Promise<void> {
    const started = performance.now();
    const deleted = [...pick.inputs, ...pick.overlapping].map((t) => ({
      level: t.level,
      fileNumber: t.fileNumber,
    }));
    const pointer = pick.inputs.reduce(
      (m, t) => compareBytes(t.largest, m) > 0 ? t.largest : m,
      pick.inputs[0].largest,
    );
    const compactPointers = [{ level: pick.level, key: pointer }];
    let edit: VersionEdit;
    if (
      !rewrite && pick.inputs.length === 1 && pick.overlapping.length === 0 &&
      pick.outputLevel !== pick.level
    ) {
      // Trivial move: nothing to merge, so relink the file one level down.
      const t = pick.inputs[0];
      edit = {
        deleted,
        added: [{ ...t, level: pick.outputLevel }],
        compactPointers,
      };
      this.#counters.trivialMoves++;
    } else {
      let bytes = 0;
      for (const t of deleted) bytes += this.#tableSize(t.fileNumber);
      const reserve = Math.ceil(bytes * 1.5 / this.options.tableTargetBytes) +
        2;
      const outputNumbers: number[] = [];
      for (let i = 0; i < reserve; i++) outputNumbers.push(this.#nextFile++);
      const job: CompactionJob = {
        type: "compact",
        dir: this.dir,
        blockSize: this.options.blockSize,
        bloomBitsPerKey: this.options.bloomBitsPerKey,
        compression: this.options.compression,
        bytesPerSecond: this.options.compactionBytesPerSecond,
        tableTargetBytes: this.options.tableTargetBytes,
        inputs: deleted.map((d) => d.fileNumber),
        outputLevel: pick.outputLevel,
        outputNumbers,
        smallestSnapshot: this.oldestSnapshotSeq(),
        now: this.options.clock(),
        deeper: pick.deeper,
      };
      job.rangeTombstones = this.#allRangeTombstones().filter((t) =>
        t.seq <= job.smallestSnapshot
      );
      let result: CompactionResult;
      try {
        result = await this.#compactRunner.run(job) as CompactionResult;
      } catch (err) {
        if (this.#closed) return;
        this.#backgroundFailed(err, "compaction");
        return;
      }
      edit = {
        deleted,
        // Only with tombstones to apply: a later one has a higher seqno
        // than any snapshot now, and a store that never deletes a range
        // keeps writing the manifest older builds read.
        added: result.outputs.map((o) => ({
          ...this.#metaFrom(o, pick.outputLevel),
          ...(job.rangeTombstones?.length
            ? { cleanSeq: job.smallestSnapshot }
            : {}),
        })),
        compactPointers,
        nextFileNumber: this.#nextFile,
      };
      this.#counters.compactions++;
      this.#counters.compactBytesRead += result.bytesRead;
      this.#counters.compactDropped += result.dropped;
      for (const o of result.outputs) {
        this.#counters.compactBytesWritten += o.fileSize;
      }
    }
    try {
      await this.#logAndApply(edit);
      await this.#dropObsoleteRangeTombstones();
    } catch (err) {
      this.#fail(wrapIoError(err, "manifest write"));
      return;
    }
    this.#counters.compactMs += performance.now() - started;
    this.#diskFull = undefined;
  }

  #tableSize(fileNumber: number): number {
    for (const t of this.#versions.current.allTables()) {
      if (t.fileNumber === fileNumber) return t.size;
    }
    return 0;
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
    // Push the range down to the deepest level that holds any of it, then
    // rewrite that level's part in place, so versions no snapshot needs and
    // tombstones with nothing below them are gone afterwards.
    const inRange = (level: number) =>
      this.#versions.current.levels[level].filter((t) =>
        overlaps(t, start, end)
      );
    let deepest = -1;
    for (let l = 0; l < NUM_LEVELS; l++) if (inRange(l).length > 0) deepest = l;
    if (deepest < 0) return;
    const bottom = Math.max(deepest, 1);
    let mergedIntoBottom = false;
    for (let level = 0; level <= bottom; level++) {
      while (this.#compacting) await this.#compacting;
      this.#checkWritable();
      const v = this.#versions.current;
      let inputs = inRange(level);
      if (inputs.length === 0) continue;
      // A merge from above already purged the bottom level's part.
      if (level === bottom && mergedIntoBottom) break;
      if (level === 0) inputs = [...v.levels[0]];
      const output = level < bottom ? level + 1 : level;
      if (output === bottom && level < bottom) mergedIntoBottom = true;
      // A lone table under a range tombstone is merged, not moved, so the
      // entries the tombstone hides are dropped now.
      const rewrite = this.#allRangeTombstones().some((t) =>
        inputs.some((x) => overlapsBounds(t, x.smallest, x.largest))
      );
      const run = this.#compact(pickFor(v, level, inputs, output), rewrite);
      this.#compacting = run.finally(() => {
        this.#compacting = undefined;
        this.#wakeStalled();
      });
      await this.#compacting;
      if (this.#failure) throw this.#failure;
    }
    this.#maybeScheduleCompaction();
  }

  /**
   * Waits until no flush or compaction is running or needed. A hook for
   * tests and benchmarks (a quiet store to measure); users never need it.
   */
  async compactUntilIdle(): Promise<void> {
    this.#backgroundBlocked = false; // an explicit call retries at once
    for (;;) {
      this.#maybeScheduleFlush();
      this.#maybeScheduleCompaction();
      const busy = this.#flushing ?? this.#compacting;
      if (!busy) break;
      await busy;
    }
    if (this.#failure) throw this.#failure;
  }

  async #flushOldest(): Promise<void> {
    const imm = this.#imm[this.#imm.length - 1];
    const fileNumber = this.#nextFile++;
    let result: FlushResult;
    try {
      result = await this.#flushRunner.run({
        type: "flush",
        ...this.#tableSettings(),
        walPaths: imm.walNumbers.map((n) => logPath(this.dir, n)),
        salvage: this.options.salvage,
        fileNumber,
      }) as FlushResult;
    } catch (err) {
      if (this.#closed) return;
      this.#backgroundFailed(err, "memtable flush");
      return;
    }
    const remaining = this.#imm.slice(0, -1);
    const logNumber = remaining.length > 0
      ? remaining[remaining.length - 1].walNumbers[0]
      : this.#walNumber;
    const edit: VersionEdit = {
      logNumber,
      nextFileNumber: this.#nextFile,
      lastSeq: this.#lastSeq,
      added: result.table ? [this.#metaFrom(result.table, 0)] : [],
      rangeTombstonesAdded: imm.mem.rangeDels,
    };
    try {
      await this.#logAndApply(edit);
    } catch (err) {
      this.#fail(wrapIoError(err, "manifest write"));
      return;
    }
    // Rotations during the awaits above added newer memtables at the front.
    this.#imm = this.#imm.filter((x) => x !== imm);
    try {
      await this.#dropObsoleteRangeTombstones();
    } catch (err) {
      this.#fail(wrapIoError(err, "manifest write"));
      return;
    }
    this.#diskFull = undefined;
    this.#counters.flushes++;
    this.#counters.flushBytes += result.table?.fileSize ?? 0;
    for (const n of imm.walNumbers) {
      this.#removeQuietly(logPath(this.dir, n));
    }
  }

  #metaFrom(p: TableProps, level: number): TableMeta {
    return {
      fileNumber: p.fileNumber,
      level,
      size: p.fileSize,
      entries: p.entries,
      minSeq: p.minSeq,
      maxSeq: p.maxSeq,
      smallest: p.smallestKey,
      largest: p.largestKey,
    };
  }

  /**
   * Appends an edit to the manifest (durably), then installs the new
   * Version. Edits are serialised so they reach the manifest in order.
   */
  #logAndApply(edit: VersionEdit): Promise<void> {
    const run = this.#manifestChain.then(async () => {
      await this.#manifest.append(edit);
      applyEdit(this.#state, edit);
      this.#versions.apply(edit);
      const m = this.#manifest;
      if (
        m.size >= this.options.maxManifestBytes &&
        m.size >= 4 * m.snapshotBytes && !this.#failure
      ) {
        await this.#rollManifest();
      }
    });
    this.#manifestChain = run.catch(() => {});
    return run;
  }

  /**
   * Starts a new manifest holding the whole state and switches CURRENT to
   * it; runs inside the manifest chain, so no edit interleaves. Crash-safe
   * at every step: the new file is complete and durable before CURRENT
   * names it (write temp, fdatasync, rename, fsync directory), and the old
   * one is removed only after. Until the rename the old manifest is in
   * charge, and a failure there just leaves the roll for the next edit; a
   * failure during the switch leaves it unknown which manifest CURRENT
   * names, so the store turns read-only (both are complete, and the next
   * open reads whichever it is).
   */
  async #rollManifest(): Promise<void> {
    const fs = this.#fs;
    const n = this.#nextFile++;
    this.#state.nextFileNumber = this.#nextFile;
    let next: ManifestWriter;
    try {
      next = await ManifestWriter.start(fs, this.dir, n, this.#state);
    } catch {
      this.#removeQuietly(`${this.dir}/${manifestFileName(n)}`);
      return;
    }
    try {
      await setCurrent(fs, this.dir, next.name);
    } catch (err) {
      next.close();
      this.#fail(wrapIoError(err, "manifest roll-over"));
      return;
    }
    const old = this.#manifest;
    this.#manifest = next;
    old.close();
    this.#removeQuietly(`${this.dir}/${old.name}`);
    this.#counters.manifestRolls++;
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
    while (this.#committing) await this.#commitDone;
    this.#checkWritable();
    if (this.#mem.count > 0) {
      // The rotation holds the commit slot; #commitDone must be what ends
      // it, or a concurrent flush() or close() waiting on #commitDone would
      // spin on an already-resolved promise and starve the rotation's I/O.
      this.#committing = true;
      const rotated = this.#rotate().finally(() => {
        this.#committing = false;
        if (this.#queue.length > 0) {
          this.#committing = true;
          this.#commitDone = this.#commitLoop();
        }
      });
      this.#commitDone = rotated.catch(() => {});
      await rotated;
    }
    while (this.#flushing) await this.#flushing;
    if (this.#failure) throw this.#failure;
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
    this.#checkKey(key);
    this.#counters.gets++;
    const stored = this.#storedKey(space, key);
    const seq = opts?.snapshot?.seq ?? this.#visibleSeq;
    const e = this.#find(stored, seq);
    if (e === undefined || !isLive(e, this.options.clock())) return undefined;
    if (this.#rangeIndex()?.hides(stored, e.seq, seq)) return undefined;
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
    this.#checkKey(userKey);
    const key = this.#storedKey(space, userKey);
    const p = this.#inflightAt(key);
    if (p) return p.live ? p.write.seq : null;
    return this.#visibleVersion(key);
  }

  /** The version of `key`'s newest visible write; null when absent. */
  #visibleVersion(key: Uint8Array): number | null {
    const e = this.#find(key, MAX_SEQ);
    if (e === undefined || !isLive(e, this.options.clock())) return null;
    return this.#rangeIndex()?.hides(key, e.seq, MAX_SEQ) ? null : e.seq;
  }

  /** Every range tombstone: persisted, then in memtables (oldest last). */
  #allRangeTombstones(): RangeTombstone[] {
    const all = [...this.#state.rangeTombstones.values()];
    for (const imm of this.#imm) all.push(...imm.mem.rangeDels);
    all.push(...this.#mem.rangeDels);
    return all;
  }

  /**
   * The read index of every range tombstone, or undefined when there is
   * none. Rebuilt when the set changed: tombstones are only appended to the
   * live memtable, moved by a rotation (a new memtable) or a flush (fewer
   * frozen ones), and persisted or dropped by a manifest edit (a new
   * generation); a duplicate seen mid-flush hides nothing more.
   */
  #rangeIndex(): RangeTombstoneIndex | undefined {
    const c = this.#rangeCache;
    const mem = this.#mem;
    const gen = this.#state.rangeGeneration;
    if (
      c !== undefined && c.mem === mem && c.len === mem.rangeDels.length &&
      c.imm === this.#imm.length && c.gen === gen
    ) return c.index;
    const all = this.#allRangeTombstones();
    const index = all.length > 0 ? new RangeTombstoneIndex(all) : undefined;
    this.#rangeCache = {
      mem,
      len: mem.rangeDels.length,
      imm: this.#imm.length,
      gen,
      index,
    };
    return index;
  }

  /**
   * Drops the persisted range tombstones nothing needs any more (no table
   * can hold an entry they hide), with one manifest edit.
   */
  async #dropObsoleteRangeTombstones(): Promise<void> {
    if (this.#state.rangeTombstones.size === 0) return;
    const gone = obsoleteTombstones(
      this.#state.rangeTombstones.values(),
      this.#versions.current.allTables(),
    );
    if (gone.length > 0) {
      await this.#logAndApply({ rangeTombstonesDeleted: gone });
    }
  }

  /**
   * The stored form of a checked key: a view of the scratch buffer, valid
   * until the next call.
   */
  #storedKey(space: number, key: Uint8Array): Uint8Array {
    const s = this.#keyScratch;
    const n = key.length;
    s[0] = space;
    // A loop beats set()'s call overhead for short keys.
    if (n <= 32) { for (let i = 0; i < n; i++) s[i + 1] = key[i]; }
    else s.set(key, 1);
    return this.#scratchViews[n + 1] ??= s.subarray(0, n + 1);
  }

  /** The newest entry (tombstones included) for a stored key at or below seq. */
  #find(key: Uint8Array, seq: number): Entry | undefined {
    const skey = binaryString(key);
    let e = this.#mem.get(key, seq, skey);
    if (e) return e;
    for (const imm of this.#imm) {
      e = imm.mem.get(key, seq, skey);
      if (e) return e;
    }
    const levels = this.#versions.current.levels;
    for (const t of levels[0]) {
      if (
        compareBytes(key, t.smallest) < 0 || compareBytes(key, t.largest) > 0
      ) continue;
      e = this.#tables.get(t.fileNumber).get(key, seq);
      if (e) return e;
    }
    for (let l = 1; l < NUM_LEVELS; l++) {
      const level = levels[l];
      if (level.length === 0) continue;
      const i = findTableIndex(level, key);
      if (i >= level.length || compareBytes(key, level[i].smallest) < 0) {
        continue;
      }
      e = this.#tables.get(level[i].fileNumber).get(key, seq);
      if (e) return e;
    }
    return undefined;
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
    const it = this.#scan(space, opts);
    // Run the body up to its first (internal) yield: that takes the
    // snapshot now. From then on, return() releases what it pinned.
    it.next();
    return it;
  }

  *#scan(space: number, opts: ScanOptions): Generator<ScanItem> {
    let lower = opts.start;
    let upper = opts.end;
    if (opts.prefix !== undefined && opts.prefix.length > 0) {
      if (!lower || compareBytes(opts.prefix, lower) > 0) lower = opts.prefix;
      const pe = prefixEnd(opts.prefix);
      if (pe && (!upper || compareBytes(pe, upper) < 0)) upper = pe;
    }
    const limit = opts.limit ?? Infinity;
    if (
      (lower && upper && compareBytes(lower, upper) >= 0) || !(limit > 0)
    ) {
      yield undefined as unknown as ScanItem; // the snapshot point: nothing
      return;
    }
    // From here on, bounds are stored keys: the space's range at most.
    lower = spaceKey(space, lower);
    upper = upper !== undefined
      ? spaceKey(space, upper)
      : space < MAX_KEY_SPACE
      ? spaceKey(space + 1)
      : undefined;
    this.#counters.scans++;
    const snapshotSeq = opts.snapshot?.seq ?? this.#visibleSeq;
    const version = this.#versions.pin();
    const pinned = new Map<number, number>(); // file number -> pins held
    const closeTable = (t: TableMeta): void => {
      const n = pinned.get(t.fileNumber) ?? 0;
      if (n === 0) return;
      if (n === 1) pinned.delete(t.fileNumber);
      else pinned.set(t.fileNumber, n - 1);
      this.#tables.unpin(t.fileNumber);
    };
    const openTable = (t: TableMeta): EntryIterator => {
      const r = this.#tables.pin(t.fileNumber);
      pinned.set(t.fileNumber, (pinned.get(t.fileNumber) ?? 0) + 1);
      return r.iterator();
    };
    try {
      const children: EntryIterator[] = [this.#mem.iterator()];
      for (const imm of this.#imm) children.push(imm.mem.iterator());
      for (const t of version.levels[0]) {
        if (overlaps(t, lower, upper)) children.push(openTable(t));
      }
      for (let l = 1; l < NUM_LEVELS; l++) {
        const tables = version.levels[l].filter((t) =>
          overlaps(t, lower, upper)
        );
        if (tables.length > 0) {
          children.push(new LevelIterator(tables, openTable, closeTable));
        }
      }
      const merged = new MergingIterator(children, opts.reverse ?? false);
      const now = this.options.clock();
      const ranges = this.#rangeIndex();
      // The snapshot point: scan() resumes the body up to here at once.
      yield undefined as unknown as ScanItem;
      const items = visibleEntries(merged, {
        snapshotSeq,
        now,
        lower,
        upper,
        reverse: opts.reverse ?? false,
        limit,
        ranges,
      });
      for (;;) {
        // close() closes the table files under a scan still in progress.
        if (this.#closed) throw new ClosedError();
        const r = items.next();
        if (r.done) break;
        const item = r.value;
        item.key = item.key.subarray(1); // callers see their own keys
        yield item;
      }
    } finally {
      for (const [n, pins] of pinned) {
        for (let i = 0; i < pins; i++) this.#tables.unpin(n);
      }
      this.#versions.unpin(version);
    }
  }

  /**
   * A snapshot at the newest visible write; reads through it see nothing
   * newer. Release it when done: it keeps old versions from compaction.
   *
   * @throws {ClosedError} once close() was called.
   */
  snapshot(): Snapshot {
    if (this.#closed) throw new ClosedError();
    const seq = this.#visibleSeq;
    this.#snapshots.set(seq, (this.#snapshots.get(seq) ?? 0) + 1);
    let released = false;
    return {
      seq,
      release: () => {
        if (released) return;
        released = true;
        const n = (this.#snapshots.get(seq) ?? 1) - 1;
        if (n > 0) this.#snapshots.set(seq, n);
        else this.#snapshots.delete(seq);
      },
    };
  }

  /** The oldest seqno a live snapshot still reads at (or the visible seqno). */
  oldestSnapshotSeq(): number {
    let min = this.#visibleSeq;
    for (const s of this.#snapshots.keys()) if (s < min) min = s;
    return min;
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
    rangeTombstones: RangeTombstone[];
    fs: FileSystem;
    release(): void;
  } {
    if (this.#closed) throw new ClosedError();
    const version = this.#versions.pin();
    let released = false;
    return {
      version,
      seq: this.#visibleSeq,
      memtables: [this.#mem, ...this.#imm.map((i) => i.mem)],
      rangeTombstones: [...this.#state.rangeTombstones.values()],
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
    return this.#lastSeq;
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
    return this.#visibleSeq;
  }

  // ---------------------------------------------------------------- status

  /** Whether the store takes writes, and why not. */
  health(): { ok: boolean; reason?: string; code?: string } {
    if (this.#closed) return { ok: false, reason: "closed", code: "closed" };
    const problem = this.#failure ?? this.#diskFull;
    if (problem) {
      return { ok: false, reason: problem.message, code: problem.code };
    }
    return { ok: true };
  }

  /** Counters and sizes, as a JSON-serialisable object. */
  stats(): Record<string, unknown> {
    const v = this.#versions.current;
    const levels = v.levels.map((tables, level) => ({
      level,
      tables: tables.length,
      bytes: v.levelBytes(level),
      targetBytes: level === 0 ? 0 : levelTarget(this.options, level),
      score: Math.round(levelScore(v, this.options, level) * 1000) / 1000,
    }));
    const c = this.#counters;
    const diskBytes = c.walBytes + c.flushBytes + c.compactBytesWritten;
    return {
      ops: { ...c },
      writeAmplification: c.userBytes > 0
        ? Math.round(diskBytes / c.userBytes * 1000) / 1000
        : 0,
      seq: { last: this.#lastSeq, visible: this.#visibleSeq },
      memtable: {
        bytes: this.#mem.bytes,
        entries: this.#mem.count,
        immutable: this.#imm.length,
        immutableBytes: this.#imm.reduce((s, i) => s + i.mem.bytes, 0),
      },
      wal: { number: this.#walNumber, bytes: this.#wal.size },
      manifest: {
        name: this.#manifest.name,
        bytes: this.#manifest.size,
        snapshotBytes: this.#manifest.snapshotBytes,
      },
      levels,
      tables: {
        open: this.#tables.size,
        maxOpen: this.options.maxOpenTables,
        opens: this.#tables.opens,
        metaBytes: this.#tables.metaBytes,
        ...this.#tables.stats,
      },
      blockCache: this.#blockCache.stats(),
      memory: {
        budget: this.options.memoryBudgetBytes ?? null,
        memtables: this.#mem.bytes +
          this.#imm.reduce((s, i) => s + i.mem.bytes, 0),
        blockCache: this.#blockCache.stats().bytes,
        tableMeta: this.#tables.metaBytes,
      },
      snapshots: [...this.#snapshots.values()].reduce((a, b) => a + b, 0),
      rangeTombstones: {
        persisted: this.#state.rangeTombstones.size,
        live: this.#rangeIndex()?.size ?? 0,
      },
      background: {
        flushing: this.#flushing !== undefined,
        compacting: this.#compacting !== undefined,
      },
      writeState: this.#writeState(),
      recovery: {
        ms: Math.round(this.recovery.ms * 1000) / 1000,
        walFiles: this.recovery.walFiles,
        walRecords: this.recovery.walRecords,
        tornTails: this.recovery.tornTails.length,
        skippedRecords: this.recovery.skipped.length,
      },
    };
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
    while (this.#committing) await this.#commitDone;
    this.#closed = true;
    this.#wakeStalled();
    if (this.#intervalTimer !== undefined) clearInterval(this.#intervalTimer);
    if (!this.#failure) await this.#markCleanClose();
    while (this.#flushing || this.#compacting) {
      await (this.#flushing ?? this.#compacting);
    }
    await this.#manifestChain;
    this.#abandon();
  }

  /**
   * Makes every write durable, then ends the live WAL segment with a
   * clean-close marker, so the next open knows the segment is complete: a
   * damaged record in it is then corruption, never a torn write. Without
   * the marker (a crash, or this failing) the next open treats a bad tail of
   * the newest segment as torn, as before.
   */
  async #markCleanClose(): Promise<void> {
    try {
      if (this.options.sync !== "always") await this.#wal.sync();
    } catch (err) {
      this.#fail(wrapIoError(err, "WAL sync on close"));
      return;
    }
    const size = this.#wal.size;
    try {
      this.#wal.append(closeMarker(size, this.#lastSeq));
      await this.#wal.sync();
    } catch {
      // Every write is durable already; only the marker is missing, so the
      // next open just cannot tell a damaged tail from a torn one. Cut the
      // partial marker off (best effort: a torn marker is a torn tail).
      try {
        this.#wal.truncate(size);
      } catch {
        // left for the next open to truncate as a torn tail
      }
    }
  }

  /** Releases every resource without waiting for anything. */
  #abandon(): void {
    this.#closed = true;
    this.#released = true;
    if (this.#intervalTimer !== undefined) clearInterval(this.#intervalTimer);
    if (this.#lagTimer !== undefined) clearInterval(this.#lagTimer);
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
    this.#flushRunner.close();
    this.#compactRunner.close();
    this.#tables.closeAll();
    this.#wal?.close();
    this.#manifest?.close();
    this.#lock.release();
  }
}
