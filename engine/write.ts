/**
 * The front of the write path, as read.ts is the front of the read path: a
 * batch is validated and copied, waits for room (backpressure), has its
 * conditions decided, and is handed to the commit pipeline (commit.ts),
 * which makes it durable, then visible. LevelDB's DBImpl::Write does the
 * same up to its writer queue.
 *
 * It is a module of its own for the conditional-write rule
 * (engine/inflight.ts): a condition decided from a write still in flight
 * is answered only once that write is visible, and decided again if it
 * failed. That wait loop, and the two questions callers ask about writes
 * in flight ({@link WritePath.version}, {@link WritePath.whenSettled}),
 * live here, beside the one place that enqueues.
 *
 * Everything here runs on the main thread.
 *
 * @module
 */
import { Arena } from "./coding.ts";
import type { CommitPipeline } from "./commit.ts";
import type { BatchLimits } from "./batch.ts";
import { checkKey, keyStamps, stampKeys, validateBatch } from "./batch.ts";
import type { BatchOp } from "./types.ts";
import { USER_KEY_SPACE } from "./types.ts";
import { encodeBatchOps } from "./batch_ops.ts";

/** What the write path reaches: the commit pipeline and the Db's state. */
export interface WriteSinks {
  limits: BatchLimits;
  commit: CommitPipeline;
  /** Resolves once the memtables and level 0 leave room (scheduler.ts). */
  waitForRoom(): Promise<void>;
  /** Throws when the store is closed, read-only or out of disk. */
  checkWritable(): void;
  /** The stored form of `key` in key space `space` (read.ts). */
  storedKey(space: number, key: Uint8Array): Uint8Array;
  /** The version of a stored key's newest visible write; null when absent. */
  visibleVersion(storedKey: Uint8Array): number | null;
  counters: { preconditionFailures: number };
}

/** Batches in, seqnos out; one per Db. */
export class WritePath {
  #out: WriteSinks;
  /**
   * Where write batches are copied to. Entries of one memtable come from
   * neighbouring slabs, so slabs are freed together when it is flushed.
   */
  #arena = new Arena();

  constructor(out: WriteSinks) {
    this.#out = out;
  }

  /** Db.batch (and put, delete) in key space `space`. */
  async batch(space: number, ops: readonly BatchOp[]): Promise<number> {
    const out = this.#out;
    out.checkWritable();
    // Validate and copy synchronously: the caller may reuse its buffers as
    // soon as this call returns its promise.
    const { entries, versioned } = validateBatch(ops, out.limits);
    const encoded = encodeBatchOps(entries, this.#arena, space);
    const stamps = versioned &&
      keyStamps(ops, entries, encoded.entries, versioned);
    await out.waitForRoom();
    for (;;) {
      out.checkWritable();
      // Decided and enqueued in one synchronous stretch: no other write can
      // be accepted between the check and this write's seqno.
      const pending = out.commit.checkConditions(
        space,
        ops,
        entries.length > 0,
      );
      if (pending === undefined) break;
      if (await out.commit.settled(pending.waitFor)) {
        if (pending.error) {
          out.counters.preconditionFailures++;
          throw pending.error;
        }
        out.checkWritable();
        return out.commit.visibleSeq;
      }
      // A write the answer depended on failed: decide again.
    }
    if (entries.length === 0) return out.commit.visibleSeq;
    const stamp = stamps &&
      ((seq: number) => stampKeys(encoded.entries, stamps, seq));
    return out.commit.enqueue(
      encoded.entries,
      encoded.payload,
      ops.length > 1,
      stamp,
    );
  }

  /**
   * Db.version in key space `space`: the version of the key's latest
   * accepted write, in flight or visible; null when absent.
   */
  version(space: number, userKey: Uint8Array): number | null {
    checkKey(this.#out.limits, userKey);
    const key = this.#out.storedKey(space, userKey);
    const p = this.#out.commit.inflight(key);
    if (p) return p.live ? p.write.seq : null;
    return this.#out.visibleVersion(key);
  }

  /** See {@link Db.whenSettled}. */
  whenSettled(key: Uint8Array): Promise<boolean> | undefined {
    checkKey(this.#out.limits, key);
    const commit = this.#out.commit;
    const p = commit.inflight(this.#out.storedKey(USER_KEY_SPACE, key));
    return p ? commit.settled([p.write]) : undefined;
  }
}
