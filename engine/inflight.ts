/**
 * Writes in flight and the conditions decided against them: the rule that
 * keeps conditional writes linearizable (DESIGN.md, write path).
 *
 * A write is in flight from the moment the commit pipeline accepts it
 * (its seqno is taken) until it is visible or has failed. A condition must
 * be decided against the newest accepted write of its key, in flight or
 * not, or two racing conditional writes could both win. But readers cannot
 * see an in-flight write yet, so an answer that depends on one is held back
 * until that write is visible, and decided again if it failed:
 * {@link decideConditions} says which writes to wait for, and
 * {@link settled} waits.
 *
 * {@link InflightIndex} answers "what is the newest in-flight write of this
 * key?". It is built lazily: only a question (a condition, `version()`,
 * `whenSettled()`) indexes the pending writes, so plain writes never pay a
 * map insert and delete per key.
 *
 * Everything here runs on the main thread.
 *
 * @module
 */
import { binaryString } from "./coding.ts";
import type { Entry } from "./entry.ts";
import { KIND_PUT, KIND_RANGE_DELETE } from "./entry.ts";
import { PreconditionFailedError } from "./errors.ts";
import type { RangeTombstone } from "./range_tombstones.ts";
import { covers, tombstoneFromEntry } from "./range_tombstones.ts";
import type { BatchOp } from "./types.ts";

/** A write accepted by the commit pipeline, not yet resolved. */
export interface PendingWrite {
  seq: number;
  entries: Entry[];
  /** The encoded ops the entries view (engine/batch_ops.ts, encodeBatchOps). */
  payload?: Uint8Array;
  /**
   * binaryString() of each entry's key, computed when the write is first
   * indexed: plain writes, never asked about, never pay for them.
   */
  skeys?: string[];
  /** Its keys are in the in-flight map (see {@link InflightIndex}). */
  indexed?: boolean;
  /** Visible or failed: no longer in flight. */
  done?: boolean;
  resolve: (seq: number) => void;
  reject: (err: Error) => void;
  /**
   * Callers whose answer depends on this write (see decideConditions), told
   * once it is visible (true) or has failed (false).
   */
  watchers?: ((visible: boolean) => void)[];
}

/** A write accepted for a key and not yet visible or failed. */
export interface Inflight {
  /** Whether the key exists after this write (a live put). */
  live: boolean;
  write: PendingWrite;
}

/**
 * A condition decision that depends on writes still in flight: answer only
 * once they are visible (then `error`, if any, stands), or re-check when one
 * of them failed.
 */
export interface PendingVerdict {
  waitFor: PendingWrite[];
  error?: PreconditionFailedError;
}

/** The newest in-flight write of each key, indexed on demand. */
export class InflightIndex {
  /** Stored key (binary string) -> its newest indexed in-flight write. */
  #byKey = new Map<string, Inflight>();
  /** Range deletes accepted and not yet visible or failed. */
  #ranges: { t: RangeTombstone; write: PendingWrite }[] = [];
  /** Whether some pending write is not in #byKey yet. */
  #unindexed = false;
  #clock: () => number;
  #pending: () => readonly (readonly PendingWrite[])[];

  /**
   * `pending` lists the writes in flight, oldest first (the group being
   * committed, then the queue); `clock` decides whether a put with a
   * deadline is live.
   */
  constructor(
    clock: () => number,
    pending: () => readonly (readonly PendingWrite[])[],
  ) {
    this.#clock = clock;
    this.#pending = pending;
  }

  /** Notes a newly accepted write (indexed when the next question comes). */
  accepted(write: PendingWrite): void {
    for (const e of write.entries) {
      if (e.kind === KIND_RANGE_DELETE) {
        this.#ranges.push({ t: tombstoneFromEntry(e), write });
      }
    }
    this.#unindexed = true;
  }

  /**
   * The newest in-flight write to a stored key, if any: a write of the key
   * itself, or a range delete covering it.
   */
  find(storedKey: Uint8Array): Inflight | undefined {
    if (this.#unindexed) this.#index();
    let p = this.#byKey.size > 0
      ? this.#byKey.get(binaryString(storedKey))
      : undefined;
    for (const r of this.#ranges) {
      // A write of the key in the same batch (same seqno) comes after it.
      if (covers(r.t, storedKey) && (!p || r.write.seq > p.write.seq)) {
        p = { live: false, write: r.write };
      }
    }
    return p;
  }

  /** A write is visible or failed: it leaves the index. */
  drop(w: PendingWrite): void {
    w.done = true;
    if (this.#ranges.length > 0) {
      this.#ranges = this.#ranges.filter((r) => r.write !== w);
    }
    if (!w.indexed) return;
    for (const id of w.skeys!) {
      if (this.#byKey.get(id)?.write === w) this.#byKey.delete(id);
    }
  }

  /**
   * Adds the keys of every pending write not yet indexed, oldest first, so
   * each key maps to its newest write. Each write is indexed at most once.
   */
  #index(): void {
    const now = this.#clock();
    for (const list of this.#pending()) {
      for (const w of list) {
        if (w.indexed || w.done) continue;
        w.indexed = true;
        const skeys = w.skeys = w.entries.map((e) => binaryString(e.key));
        for (let i = 0; i < w.entries.length; i++) {
          const e = w.entries[i];
          if (e.kind === KIND_RANGE_DELETE) continue; // in #ranges
          this.#byKey.set(skeys[i], {
            live: e.kind === KIND_PUT &&
              (e.expiresAt === 0 || e.expiresAt > now),
            write: w,
          });
        }
      }
    }
    this.#unindexed = false;
  }
}

/** What {@link decideConditions} reads besides the in-flight index. */
export interface ConditionEnv {
  /** The stored form of `key` in key space `space` (valid until the next call). */
  storedKey(space: number, key: Uint8Array): Uint8Array;
  /** The version of a stored key's newest visible write; null when absent. */
  visibleVersion(storedKey: Uint8Array): number | null;
  counters: { preconditionFailures: number };
}

/**
 * Decides a batch's conditions against every accepted write, in-flight
 * ones included, so two racing conditional writes can never both win.
 * Returns undefined when they hold and the batch may be enqueued now (its
 * own fsync then covers every write it was checked against). Throws when
 * one fails against visible state. Otherwise the answer depends on writes
 * readers cannot see yet, and revealing it now would not be linearizable:
 * the caller waits for them (see {@link PendingVerdict}). That is the case
 * for a failed condition whose key has a write in flight, and for a
 * check-only batch (it writes nothing, so no fsync of its own orders it)
 * that read any in-flight write.
 */
export function decideConditions(
  index: InflightIndex,
  env: ConditionEnv,
  space: number,
  ops: readonly BatchOp[],
  writes: boolean,
): PendingVerdict | undefined {
  let read: PendingWrite[] | undefined;
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i];
    if (op.type === "deleteRange" || op.ifVersion === undefined) continue;
    const want = op.ifVersion;
    const key = env.storedKey(space, op.key);
    const p = index.find(key);
    const have = p ? (p.live ? p.write.seq : null) : env.visibleVersion(key);
    if (want === null ? have !== null : have !== want) {
      const error = new PreconditionFailedError(
        want === null
          ? `op ${i}: key exists (version ${have})`
          : `op ${i}: expected version ${want}, found ${have ?? "none"}`,
        i,
      );
      if (p) return { waitFor: [p.write], error };
      env.counters.preconditionFailures++;
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
export function settled(writes: readonly PendingWrite[]): Promise<boolean> {
  return Promise.all(
    writes.map((w) => new Promise<boolean>((r) => (w.watchers ??= []).push(r))),
  ).then((all) => all.every((v) => v));
}
