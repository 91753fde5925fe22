/**
 * The group-commit pipeline: the write queue, the appends of each group's
 * WAL records (framed by wal_group.ts), the in-flight writes (indexed in engine/inflight.ts), the visible
 * seqno, interval sync, and the sticky failure state (read-only after a failed sync, disk full after a
 * failed append). The Db hands it a log and a memtable through a
 * {@link CommitEnv}, so it runs (and is tested) without a Db, as Pebble's
 * `commit.go` does with its `commitEnv`.
 *
 * A write goes: {@link CommitPipeline.enqueue} assigns the next seqno,
 * frames the record into the WAL buffer and marks its keys in flight; the
 * commit loop takes every queued write as one group, led by a sync point
 * that says how far the log is already durable (engine/wal.ts
 * RECORD_SYNC_POINT: replay tells a group torn by a power cut from damage
 * with it), appends the buffer to the log with one write and (sync
 * "always") one fdatasync, applies the group to the memtable, makes it
 * visible, and resolves it. The log is preallocated ahead of the group
 * (engine/wal.ts reserveLogSpace).
 *
 * What gathers a group (as in LevelDB's and Pebble's writers, where the
 * writes arriving while a leader writes go as the next group): with sync
 * "always", the writes that arrive during the previous group's fdatasync.
 * With no fsync to wait for (sync "none" or "interval") the loop waits one
 * event-loop turn (an immediate) after each group instead, still holding
 * the slot, and the writes that arrived meanwhile go as the next group; an
 * HTTP request reaches the store from its own I/O callback, so without this
 * turn every request was a group of its own. A lone write is not delayed:
 * its group is written and acknowledged before the turn; a write arriving
 * during the turn waits at most that turn. The first group of a burst also
 * waits one microtask, for the rest of its own tick.
 *
 * Steady writes never keep a flush or a close waiting: a waiting
 * {@link CommitPipeline.exclusive} (a flush's rotation) gets the slot after
 * the group in progress, queued writes following its task; and
 * {@link CommitPipeline.stop} (close) refuses new writes at its call, so
 * the queue it waits for only shrinks.
 *
 * Invariants (the tests in tests/engine/commit_test.ts check them):
 * - The WAL holds records in seqno order: seqnos are handed out and framed
 *   into the one buffer in the same synchronous step, and the buffer is
 *   appended whole, one group after the other.
 * - The visible seqno only moves up: groups are applied in seqno order, and
 *   a write is visible only once every earlier write is.
 * - A write is acknowledged (its promise resolves, readers see it) only
 *   after its group's append and, with sync "always", its fdatasync. A
 *   rejected write changed nothing readers can see.
 * - A condition decided from an in-flight write waits for that write: a
 *   failed check is answered only once the write it saw is visible, and is
 *   decided again if that write failed (see {@link CommitPipeline.checkConditions}).
 * - After a failed fdatasync the store is read-only until reopened (the log
 *   is in doubt); a failed append is cut off and only its group is rejected
 *   (disk full), unless the cut fails too.
 *
 * Everything here runs on the main thread.
 *
 * @module
 */
import { setImmediate } from "node:timers";
import type { Entry } from "./entry.ts";
import { KIND_PUT } from "./entry.ts";
import {
  ClosedError,
  ReadOnlyError,
  type ShaleError,
  wrapIoError,
} from "./errors.ts";
import type { CommitEnv } from "./commit_env.ts";
import type { WritableFile } from "./fs.ts";
import {
  decideConditions,
  type Inflight,
  InflightIndex,
  type PendingVerdict,
  type PendingWrite,
  settled,
} from "./inflight.ts";
import { unrefTimer } from "./runtime.ts";
import type { BatchOp } from "./types.ts";
import { appendCloseMarker, reserveLogSpace } from "./wal.ts";
import { WalGroupBuffer } from "./wal_group.ts";

/**
 * Resolves in the next event-loop turn, after the I/O callbacks that are
 * ready (new requests, request bodies). Not `setTimeout(0)`: Deno and Bun
 * wait a millisecond or more for that; an immediate takes a few µs.
 */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** The group-commit pipeline; see the module comment for its invariants. */
export class CommitPipeline {
  #env: CommitEnv;
  #log: WritableFile;
  /** The WAL records of the writes queued for the next group. */
  #records = new WalGroupBuffer();
  #queue: PendingWrite[] = [];
  /** The group being appended and applied, taken off #queue. */
  #group: PendingWrite[] = [];
  #committing = false;
  /**
   * Set while {@link exclusive} waits: the loop hands it the slot between
   * two groups even with writes queued (exclusive restarts the loop after
   * its task), and waits no turn for more writes. Under steady writes the
   * queue may never be empty when a group ends, and a flush's rotation
   * would wait for ever.
   */
  #exclusiveWanted = false;
  #done: Promise<void> = Promise.resolve();
  /** The newest in-flight write of each key, for conditions (inflight.ts). */
  #inflight = new InflightIndex(
    () => this.#env.clock(),
    () => [this.#group, this.#queue],
  );
  #lastSeq: number;
  #visibleSeq: number;
  #logDirty = false;
  /**
   * How far the log is known durable (fdatasync'd): each group's sync point
   * says so. A fresh log's header is synced by createLog.
   */
  #durable: number;
  #intervalTimer: ReturnType<typeof setInterval> | undefined;
  #stopped = false;
  /** {@link stop} was called: no new write is taken, queued ones drain. */
  #stopping = false;
  #failure: ShaleError | undefined;
  /**
   * Set while the disk is full: the failing write was undone and rejected,
   * and writes are retried as they come; cleared by the next success.
   */
  diskFull: ShaleError | undefined;

  /** Appends to `log`; `lastSeq` is the newest seqno already written (and visible). */
  constructor(env: CommitEnv, log: WritableFile, lastSeq: number) {
    this.#env = env;
    this.#log = log;
    this.#lastSeq = lastSeq;
    this.#visibleSeq = lastSeq;
    this.#durable = log.size;
    if (env.sync === "interval") this.#startIntervalSync();
  }

  /** The log being appended to. */
  get log(): WritableFile {
    return this.#log;
  }

  /** The last seqno handed out. */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** The newest seqno visible to readers. */
  get visibleSeq(): number {
    return this.#visibleSeq;
  }

  /** Set after a failed fsync or manifest write: read-only until reopened. */
  get failure(): ShaleError | undefined {
    return this.#failure;
  }

  /** Whether writes are taken, and why not (read-only, or the disk is full). */
  health(): { ok: boolean; reason?: string; code?: string } {
    const problem = this.#failure ?? this.diskFull;
    if (problem) {
      return { ok: false, reason: problem.message, code: problem.code };
    }
    return { ok: true };
  }

  /** Turns the store read-only (the first failure sticks). */
  fail(err: ShaleError): void {
    if (this.#failure) return;
    this.#failure = new ReadOnlyError(err.message, { cause: err });
  }

  /** Records a full disk and tells the env (which arranges the retries). */
  noteDiskFull(err: ShaleError): void {
    this.diskFull = err;
    this.#env.diskFull(err);
  }

  /**
   * Switches to a new log segment and closes the old one. Only while no
   * group is being appended: from {@link CommitEnv.makeRoom} or inside
   * {@link exclusive}.
   */
  replaceLog(next: WritableFile): void {
    this.#log.close();
    this.#log = next;
    this.#durable = next.size;
  }

  /**
   * Cuts the log's preallocated zeros off and makes it durable, so that it
   * ends at its last record: before a newer segment takes records
   * (recovery reads a bad or zero tail in an older segment as corruption).
   * Only while no group is being appended, as {@link replaceLog}.
   */
  async sealLog(): Promise<void> {
    const log = this.#log;
    const size = log.size;
    log.truncate(size);
    await log.sync();
    this.#durable = size;
  }

  /** Whether a group (or an {@link exclusive} task) is in progress. */
  get busy(): boolean {
    return this.#committing;
  }

  /** Resolves once no group is in progress or queued. Never rejects. */
  async idle(): Promise<void> {
    while (this.#committing) await this.#done;
  }

  /**
   * Runs `task` holding the commit slot (no group is appended meanwhile);
   * writes queued while it runs commit after it. Throws ClosedError after
   * {@link stop}.
   */
  async exclusive(task: () => Promise<void>): Promise<void> {
    // Inline, not idle(): the slot is taken in the same tick as the check.
    while (this.#committing) {
      this.#exclusiveWanted = true;
      await this.#done;
    }
    this.#exclusiveWanted = false;
    if (this.#stopped) throw new ClosedError();
    this.#committing = true;
    const run = task().finally(() => {
      this.#committing = false;
      if (this.#queue.length > 0) this.#startLoop();
    });
    this.#done = run.catch(() => {});
    await run;
  }

  /**
   * Takes no more writes from now on ({@link enqueue} throws ClosedError),
   * waits until the queued ones are committed, and stops the interval
   * timer. Refusing first is what bounds the wait: under steady writes the
   * queue would otherwise never be empty when a group ends.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    while (this.#committing) await this.#done;
    this.#stopped = true;
    if (this.#intervalTimer !== undefined) clearInterval(this.#intervalTimer);
  }

  /** Stops the timer and closes the log, waiting for nothing. */
  close(): void {
    this.#stopped = true;
    if (this.#intervalTimer !== undefined) clearInterval(this.#intervalTimer);
    this.#log.close();
  }

  /**
   * The newest in-flight write to a stored key (accepted, not yet visible
   * or failed), if any: a write of the key itself, or a range delete
   * covering it.
   */
  inflight(storedKey: Uint8Array): Inflight | undefined {
    return this.#inflight.find(storedKey);
  }

  /**
   * Decides a batch's conditions against every accepted write, in-flight
   * ones included (see {@link decideConditions}): undefined when they hold,
   * a {@link PendingVerdict} to wait on when the answer depends on writes in
   * flight; throws when one fails against visible state.
   */
  checkConditions(
    space: number,
    ops: readonly BatchOp[],
    writes: boolean,
  ): PendingVerdict | undefined {
    return decideConditions(this.#inflight, this.#env, space, ops, writes);
  }

  /**
   * Resolves once every write in `writes` is visible (true) or once one of
   * them failed (false). Never rejects.
   */
  settled(writes: PendingWrite[]): Promise<boolean> {
    return settled(writes);
  }

  /**
   * Accepts a write: the entries (stored keys) get the next seqno and the
   * record `opsPayload` is framed into the WAL buffer. `stamp`, when given,
   * runs first with that seqno and may throw (the write then fails before
   * the seqno is used up). Resolves with the seqno once visible.
   */
  enqueue(
    entries: Entry[],
    opsPayload: Uint8Array,
    isBatch: boolean,
    stamp?: (seq: number) => void,
  ): Promise<number> {
    if (this.#stopping) throw new ClosedError();
    const c = this.#env.counters;
    const seq = this.#lastSeq + 1;
    if (stamp !== undefined) stamp(seq);
    this.#lastSeq = seq;
    for (const e of entries) {
      e.seq = seq;
      if (e.kind === KIND_PUT) c.puts++;
      else c.deletes++;
      c.userBytes += e.key.length - 1 + e.value.length;
    }
    if (isBatch) c.batches++;
    this.#records.add(seq, opsPayload);
    return new Promise<number>((resolve, reject) => {
      const write: PendingWrite = {
        seq,
        entries,
        payload: opsPayload,
        resolve,
        reject,
      };
      this.#queue.push(write);
      this.#inflight.accepted(write);
      if (!this.#committing) this.#startLoop();
    });
  }

  /**
   * Makes every write durable, then ends the log with a clean-close marker,
   * so the next open knows the segment is complete: a damaged record in it
   * is then corruption, never a torn write. Without the marker (a crash, or
   * this failing) the next open treats a bad tail of the newest segment as
   * torn, as before. Call after {@link stop}.
   */
  async markCleanClose(): Promise<void> {
    const log = this.#log;
    try {
      if (this.#env.sync !== "always") await log.sync();
    } catch (err) {
      this.fail(wrapIoError(err, "WAL sync on close"));
      return;
    }
    await appendCloseMarker(log, this.#lastSeq);
  }

  #startLoop(): void {
    this.#committing = true;
    this.#done = this.#commitLoop();
  }

  #startIntervalSync(): void {
    this.#intervalTimer = setInterval(() => {
      if (!this.#logDirty || this.#failure) return;
      this.#logDirty = false;
      const log = this.#log;
      const size = log.size;
      log.sync().then(
        () => {
          this.#env.counters.walSyncs++;
          // Only if that log still takes writes (not replaced meanwhile).
          if (this.#log === log && size > this.#durable) this.#durable = size;
        },
        (err) => this.fail(wrapIoError(err, "interval WAL sync")),
      );
    }, this.#env.syncIntervalMs);
    unrefTimer(this.#intervalTimer);
  }

  /**
   * Group commit: while writes are queued, take all of them, write their
   * records with one write and one fdatasync, apply them to the memtable and
   * resolve them. Writes arriving during the fsync form the next group; with
   * no fsync (sync "none" or "interval"), writes arriving during the one
   * event-loop turn the loop waits after each group do.
   */
  async #commitLoop(): Promise<void> {
    const env = this.#env;
    const c = env.counters;
    await Promise.resolve(); // let writes of this tick join the first group
    try {
      while (
        this.#queue.length > 0 && !this.#failure &&
        // A stop drains the queue first (no write joins it any more).
        (!this.#exclusiveWanted || this.#stopping)
      ) {
        const room = env.makeRoom();
        if (room !== undefined) {
          await room;
          if (this.#failure) break;
        }
        const group = this.#queue;
        this.#group = group;
        this.#queue = [];
        const parts = this.#records.take(this.#durable);
        let dataBytes = 0;
        for (const part of parts) dataBytes += part.length;
        const log = this.#log;
        const logSize = log.size;
        reserveLogSpace(log, logSize + dataBytes);
        try {
          for (const part of parts) log.append(part);
        } catch (err) {
          // A failed append (typically ENOSPC) wrote nothing durable: cut
          // the partial record off and reject just this group. Only if the
          // cut fails is the log in doubt, and the store turns read-only.
          const e = wrapIoError(err, "WAL write");
          try {
            log.truncate(logSize);
          } catch {
            this.fail(e);
          }
          if (!this.#failure) this.noteDiskFull(e);
          for (const w of group) this.#reject(w, this.#failure ?? e);
          continue;
        }
        if (!env.backgroundBlocked()) this.diskFull = undefined;
        try {
          c.walBytes += dataBytes;
          if (env.sync === "always") {
            await log.sync();
            this.#durable = logSize + dataBytes;
            c.walSyncs++;
          } else {
            this.#logDirty = true;
          }
        } catch (err) {
          this.fail(wrapIoError(err, "WAL write"));
          for (const w of group) this.#reject(w, this.#failure!);
          break;
        }
        c.writeGroups++;
        this.#apply(group);
        for (const w of group) {
          this.#visibleSeq = w.seq;
          this.#inflight.drop(w);
          env.published(w.seq, w.entries, w.payload); // the change feed's hook
        }
        for (const w of group) {
          w.resolve(w.seq);
          if (w.watchers) { for (const f of w.watchers) f(true); }
        }
        if (
          env.sync !== "always" && this.#queue.length === 0 &&
          !this.#exclusiveWanted && !this.#stopping
        ) {
          // No fsync to gather the next group during: hold the slot for one
          // event-loop turn instead, so that writes arriving meanwhile (each
          // HTTP request comes in its own I/O callback) go as one group
          // rather than one each. This group is acknowledged already.
          await nextTurn();
        }
      }
    } catch (err) {
      // Nothing above should throw; if something does, fail loudly rather
      // than leave queued writers waiting forever.
      this.fail(wrapIoError(err, "commit loop"));
    } finally {
      if (this.#failure) {
        for (const w of this.#queue) this.#reject(w, this.#failure);
        this.#queue = [];
        this.#records.clear();
      }
      this.#group = [];
      this.#committing = false;
    }
  }

  /** Adds a durable group to the memtable, in seqno order. */
  #apply(group: PendingWrite[]): void {
    const mem = this.#env.memtable();
    if (group.length === 1) {
      mem.addMany(group[0].entries);
      return;
    }
    const entries: Entry[] = [];
    for (const w of group) {
      for (let i = 0; i < w.entries.length; i++) entries.push(w.entries[i]);
    }
    mem.addMany(entries);
  }

  /** Rejects a write's caller and tells whoever waits on its outcome. */
  #reject(w: PendingWrite, err: Error): void {
    this.#inflight.drop(w);
    w.reject(err);
    if (w.watchers) { for (const f of w.watchers) f(false); }
  }
}
