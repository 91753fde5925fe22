/**
 * The engine's public types in one place: what callers pass to and get back
 * from a `Db` (results, scans, batches, snapshots, key spaces, recovery
 * report, options, change history groups). `mod.ts` re-exports them; engine
 * modules import them from here rather than from each other.
 *
 * @module
 */
import type { FileSystem } from "./fs.ts";

/**
 * How table data blocks are read: `mmap` (a read-only memory map per table;
 * needs FFI, on Deno `--allow-ffi`), `pread` (positional reads through the
 * block cache), `auto` (mmap when FFI is permitted, else pread).
 */
export type ReadMode = "mmap" | "pread" | "auto";

/**
 * How new tables store their data blocks: `none` raw, `zstd` compressed
 * per block where that saves at least an eighth (engine/FORMAT.md).
 */
export type Compression = "none" | "zstd";

/** How writes reach the disk. */
export type SyncMode = "always" | "interval" | "none";

/** Options for opening a database. Every field is optional. */
export interface DbOptions {
  /**
   * One memory budget for memtables, the block cache, the change history
   * and the index and filter data of open tables. When set, it sizes
   * `memtableBytes` (1/16 each, up to 1 + maxImmutableMemtables of them),
   * `changeHistoryBytes` (1/16) and `blockCacheBytes` (1/2), in which open
   * tables' index and filter data are reserved, up to half of it (past
   * that the least recently used idle tables close); `maxOpenTables`
   * follows from the same 1/4 at an estimated 5% of a table's size. The
   * last 1/4 is headroom for what the engine cannot count (object
   * overhead, the compaction worker). Explicit values win.
   */
  memoryBudgetBytes?: number;
  /**
   * `always` (default): a write resolves after fdatasync (group commit shares
   * one fsync between all writes waiting for it). `interval`: fdatasync every
   * `syncIntervalMs`. `none`: left to the OS. With `interval` and `none` a
   * write resolves after its group's write to the log; writes arriving within
   * one event-loop turn share that write.
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
  /**
   * How new tables store their data blocks: `zstd` compresses each block
   * (one that would not shrink by an eighth stays raw), `none` writes them
   * raw. Tables already written keep their codec; both kinds are always
   * readable. Default `none` (bench/RESULTS_COMPRESSION.md: zstd saves space
   * on compressible values but slows reads that miss the block cache), or
   * the environment variable SHALE_COMPRESSION when set and readable (the
   * test suite reruns through it).
   */
  compression?: Compression;
  /** Block cache capacity in bytes. Default 64 MiB. */
  blockCacheBytes?: number;
  /**
   * How tables are read (see {@link ReadMode}). Default `auto`, or the
   * environment variable SHALE_READ_MODE when set and readable (the test
   * suite runs once per mode through it). With `mmap` the block cache is
   * not used for data blocks: the OS page cache holds them.
   */
  readMode?: ReadMode;
  /** Open table files kept at once (LRU). Default 500. */
  maxOpenTables?: number;
  /** Largest key accepted. Default (and maximum) 4096 bytes. */
  maxKeyBytes?: number;
  /** Largest value accepted. Default 16 MiB. */
  maxValueBytes?: number;
  /**
   * Memory kept for the change history (`db.changes`, the HTTP change
   * feed's resume window); the oldest write groups go first. Default 64 MiB,
   * or 1/16 of `memoryBudgetBytes` when that is set.
   */
  changeHistoryBytes?: number;
  /** Target size of one table file written by compaction. Default 4 MiB. */
  tableTargetBytes?: number;
  /**
   * Upper bound on the bytes compaction writes per second, so that it never
   * takes the disk and CPU from reads and writes (a token bucket refilled
   * every 100 ms; flushes are not limited). 0, the default, is unlimited.
   */
  compactionBytesPerSecond?: number;
  /** Target size of level 1; each deeper level is 10x. Default 16 MiB. */
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
   * Nice value (0-19) the compaction worker lowers its thread to, so the OS
   * prefers the main thread (reads, writes, the event loop) when they share
   * a core. The flush worker keeps its priority: a late flush stalls every
   * write. Linux only, and on Deno only with FFI permission (`--allow-ffi`);
   * elsewhere the worker keeps the process's priority and
   * `stats().background.compactionNice.applied` says so. 0 leaves it alone.
   * Default 10.
   */
  compactionNice?: number;
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

/** A key's newest visible value. `version` is the seqno of its last write. */
export interface ReadResult {
  /** The value. */
  value: Uint8Array;
  /** The version (seqno) of the write that stored it: its ETag over HTTP. */
  version: number;
  /** The caller's encoding tag of the value (`ENCODING_RAW` by default). */
  encoding: number;
  /** ms since the epoch, 0 for never. */
  expiresAt: number;
}

/** A point in time that reads can be made at; release it when done. */
export interface Snapshot {
  /** The newest seqno this snapshot sees. */
  readonly seq: number;
  /**
   * Lets go of the snapshot, so compaction may drop the old versions it
   * kept alive. Releasing twice is harmless.
   */
  release(): void;
}

/** Range and direction of a scan. `prefix` combines with start/end. */
export interface ScanOptions {
  /** Inclusive lower bound. */
  start?: Uint8Array;
  /** Exclusive upper bound. */
  end?: Uint8Array;
  /** Only keys starting with these bytes (narrows start/end). */
  prefix?: Uint8Array;
  /** Descending key order. Default ascending. */
  reverse?: boolean;
  /** Stop after this many items. */
  limit?: number;
  /** Read at this snapshot. Default: a snapshot taken when scan() is called. */
  snapshot?: Snapshot;
}

/**
 * Builds the key of a put from the write's version (seqno); see
 * {@link BatchOp}'s `versionedKey`.
 */
export type VersionedKey = (version: number) => Uint8Array;

/**
 * One operation of an atomic batch. `ifVersion`: a number means the key's
 * current version must equal it; null means the key must not exist.
 *
 * `versionedKey` makes a put's key contain the put's own version (Deno KV's
 * versionstamped keys): once the batch is ordered, and before anything is
 * written, the engine calls it once with the batch's version and stores the
 * put under the key it returns, which must be exactly as long as `key` (a
 * placeholder: checked for length only). Such a put takes no `ifVersion`;
 * two of them with equal placeholders in one batch count as one key (the
 * last wins), and a built key equal to another key of the batch fails the
 * batch. The caller learns the key from the version the batch resolves with.
 */
export type BatchOp =
  | {
    type: "put";
    key: Uint8Array;
    value: Uint8Array;
    expiresAt?: number;
    encoding?: number;
    ifVersion?: number | null;
    versionedKey?: VersionedKey;
  }
  | { type: "delete"; key: Uint8Array; ifVersion?: number | null }
  | { type: "check"; key: Uint8Array; ifVersion: number | null }
  | DeleteRangeOp;

/**
 * Deletes every key of [start, end) at once, with one range tombstone (no
 * key is read): `start` inclusive (omitted or empty: the key space's first
 * key), `end` exclusive (omitted: to the space's last key); or every key
 * starting with `prefix` (instead of start/end). Ops of the batch before it
 * on keys in the range are deleted by it; ops after it apply on top. It
 * takes no condition and cannot share a batch with a `versionedKey` put.
 */
export interface DeleteRangeOp {
  /** Marks a range delete. */
  type: "deleteRange";
  /** Inclusive first key; omitted or empty: the key space's first key. */
  start?: Uint8Array;
  /** Exclusive end; omitted: through the key space's last key. */
  end?: Uint8Array;
  /** Every key starting with these bytes (instead of start/end). */
  prefix?: Uint8Array;
}

/** Options of a single put. */
export interface PutOptions {
  /** When the value expires, in ms since the epoch; 0 or absent: never. */
  expiresAt?: number;
  /** An encoding tag stored with the value and returned with it. */
  encoding?: number;
  /**
   * A condition: the key's current version must equal this number, or the
   * key must not exist (null). Checked atomically with the write.
   */
  ifVersion?: number | null;
  /** Builds the key from the put's version; see {@link BatchOp}. */
  versionedKey?: VersionedKey;
}

/**
 * The data API of one key space. Every stored key is a key-space byte
 * followed by the key the caller gives, so spaces never see each other's
 * keys and each one holds every key of 1..maxKeyBytes bytes. The
 * Db itself is key space {@link USER_KEY_SPACE}; `db.keySpace(id)`
 * returns the same API bound to another space, for data that must stay
 * apart from user keys (the server keeps its KV Connect databases in one).
 * Snapshots and versions are shared by all spaces of a store.
 */
export interface KeySpace {
  /** The newest visible value of `key`, or undefined. */
  get(key: Uint8Array, opts?: { snapshot?: Snapshot }): ReadResult | undefined;
  /** The version of `key`'s latest accepted write, or null. */
  version(key: Uint8Array): number | null;
  /** Writes `value` under `key`; resolves with the write's version. */
  put(key: Uint8Array, value: Uint8Array, opts?: PutOptions): Promise<number>;
  /** Deletes `key`; resolves with the delete's version. */
  delete(
    key: Uint8Array,
    opts?: { ifVersion?: number | null },
  ): Promise<number>;
  /** Applies every op atomically with one version, or none. */
  batch(ops: readonly BatchOp[]): Promise<number>;
  /**
   * Deletes every key of [start, end) (end omitted: to the space's end)
   * with one range tombstone; resolves with its version.
   */
  deleteRange(start: Uint8Array, end?: Uint8Array): Promise<number>;
  /** Scans this space's keys in order (or reverse) at one snapshot. */
  scan(opts?: ScanOptions): Generator<ScanItem>;
  /** A snapshot at the newest visible write (of the whole store). */
  snapshot(): Snapshot;
}

/** The key space of the Db's own methods: every user key lives here. */
export const USER_KEY_SPACE = 0;
/** Key-space ids are one byte. */
export const MAX_KEY_SPACE = 255;

/** What a scan yields: the newest visible version of one key. */
export interface ScanItem {
  /** The key, as the caller wrote it. */
  key: Uint8Array;
  /** Its newest visible value. */
  value: Uint8Array;
  /** The version (seqno) of the write that stored the value. */
  version: number;
  /** The caller's encoding tag of the value (`ENCODING_RAW` by default). */
  encoding: number;
  /** When the value expires, in ms since the epoch; 0 for never. */
  expiresAt: number;
}

/** What recovery found and did. */
export interface RecoveryInfo {
  /** How long open() took to recover, in ms. */
  ms: number;
  /** WAL segments replayed. */
  walFiles: number;
  /** WAL records replayed. */
  walRecords: number;
  /** Incomplete records cut off a WAL's end (a crash mid-append). */
  tornTails: { file: string; offset: number; bytes: number; reason: string }[];
  /** Damaged WAL stretches skipped, with why. */
  skipped: { file: string; offset: number; reason: string }[];
  /** Files no manifest referenced (leftovers of a crash), removed. */
  removedFiles: string[];
  /**
   * Things the operator should fix that do not stop the store, e.g. a data
   * directory other users can read. The server logs each one at start.
   */
  warnings: string[];
}

/** One key's change inside a group. */
export interface Change {
  /** The key space written (`USER_KEY_SPACE`, 0, for the Db's own methods). */
  space: number;
  /** The key within its space, as the writer gave it. Treat as read-only. */
  key: Uint8Array;
  /**
   * Whether the write stored a value, a tombstone, or a range tombstone
   * (then `key` is the range's inclusive start, `end` its end).
   */
  type: "put" | "delete" | "delete_range";
  /**
   * A range delete's exclusive end within the space; absent: to the end
   * of the space. Treat as read-only.
   */
  end?: Uint8Array;
  /** The value written (empty for a delete). Treat as read-only. */
  value: Uint8Array;
  /** The value's encoding tag (0 for plain bytes). */
  encoding: number;
  /** Expiry in ms since the epoch; 0 = never. */
  expiresAt: number;
}

/** All changes of one write (a single put/delete or an atomic batch). */
export interface ChangeGroup {
  /** The seqno every change of the group shares. */
  version: number;
  /** The group's changes, one per key, in the order the writer gave them. */
  changes: readonly Change[];
  /** Bytes this group counts against the history's budget. */
  bytes: number;
}

/**
 * Told of each group right after it became visible, on the commit path:
 * must be quick and must not block. One that throws is unsubscribed.
 */
export type ChangeListener = (group: ChangeGroup) => void;
