/**
 * What the group-commit pipeline (engine/commit.ts) needs from its
 * surroundings, as Pebble's `commitEnv`: the sync mode, the memtable to
 * apply groups to, room-making, the change feed's hook, the disk-full
 * state, and the counters. The Db supplies it; tests supply a fake
 * (tests/engine/_commit_harness.ts), so the pipeline runs without a Db.
 *
 * @module
 */
import type { Entry } from "./entry.ts";
import type { ShaleError } from "./errors.ts";

/** Where a group goes once durable: the current memtable. */
export interface CommitMemtable {
  addMany(entries: readonly Entry[]): void;
}

/** The counters the pipeline keeps (the Db's stats object has them all). */
export interface CommitCounters {
  puts: number;
  deletes: number;
  batches: number;
  userBytes: number;
  writeGroups: number;
  walSyncs: number;
  walBytes: number;
  preconditionFailures: number;
}

/** What the pipeline needs from its surroundings (the Db, or a test). */
export interface CommitEnv {
  /** "always": fdatasync every group; "interval": on a timer; "none": never. */
  sync: "always" | "interval" | "none";
  /** The interval timer's period (sync "interval"). */
  syncIntervalMs: number;
  /** Milliseconds since the epoch: whether a put with a deadline is live. */
  clock(): number;
  /** The memtable groups are applied to (it changes on rotation). */
  memtable(): CommitMemtable;
  /**
   * Called before each group: rotates a full memtable (and the log, through
   * {@link CommitPipeline.replaceLog}). Returns a promise only when it has
   * work to do, so a group with nothing to rotate takes no extra tick.
   */
  makeRoom(): Promise<void> | undefined;
  /**
   * A group became visible: the change feed's hook. `payload` is the
   * write's encoded ops, which the entries' bytes view.
   */
  published(
    seq: number,
    entries: readonly Entry[],
    payload?: Uint8Array,
  ): void;
  /** The state turned disk full (wake stalled writers, arrange retries). */
  diskFull(err: ShaleError): void;
  /** Background work is blocked on a full disk: a good append does not clear it. */
  backgroundBlocked(): boolean;
  /** The stored form of `key` in key space `space` (valid until the next call). */
  storedKey(space: number, key: Uint8Array): Uint8Array;
  /** The version of a stored key's newest visible write; null when absent. */
  visibleVersion(storedKey: Uint8Array): number | null;
  counters: CommitCounters;
}
