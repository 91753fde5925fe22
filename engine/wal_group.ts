/**
 * The WAL bytes of the commit group being gathered (engine/commit.ts): a
 * sync point (engine/wal.ts RECORD_SYNC_POINT, filled in when the group is
 * taken), then each accepted write's batch record, framed in seqno order as
 * it is accepted; taken whole by the commit loop, which appends the parts
 * in order with one write each.
 *
 * Small records are framed into one reusable buffer. A large batch is not
 * copied: its record is its head followed by the ops as they are (nothing
 * writes to the ops any more; the memtable keeps views into them), after
 * the earlier records copied out of the buffer.
 *
 * @module
 */
import { ByteWriter } from "./coding.ts";
import {
  batchRecordHead,
  frameBatch,
  LARGE_BATCH_BYTES,
  SYNC_POINT_BYTES,
  writeSyncPoint,
} from "./wal.ts";

/** The next group's WAL records; see the module comment. */
export class WalGroupBuffer {
  #buf = new ByteWriter(64 * 1024);
  /**
   * Set when the group holds a large batch: earlier records (copied out of
   * `#buf`), then the large record's head and its ops by reference, in
   * order; `#buf` holds what follows.
   */
  #parts: Uint8Array[] = [];

  /** Whether a record was framed since the last take() or clear(). */
  #open = false;

  /**
   * Frames the batch record of write `seq` with ops `opsPayload`. The
   * group's first record is its sync point, reserved here and written by
   * {@link take}.
   */
  add(seq: number, opsPayload: Uint8Array): void {
    if (!this.#open) {
      this.#open = true;
      this.#buf.ensure(SYNC_POINT_BYTES);
      this.#buf.pos += SYNC_POINT_BYTES;
    }
    if (opsPayload.length >= LARGE_BATCH_BYTES) {
      this.#flushBuffer();
      this.#parts.push(batchRecordHead(seq, opsPayload), opsPayload);
    } else {
      frameBatch(this.#buf, seq, opsPayload);
    }
  }

  /**
   * Every record framed so far, in order, after the group's sync point
   * saying the log is durable up to `durable`; the buffer starts the next
   * group.
   */
  take(durable: number): Uint8Array[] {
    this.#flushBuffer();
    const parts = this.#parts;
    // The reserved bytes lead the first part: a copy out of the buffer.
    if (this.#open) writeSyncPoint(parts[0], 0, durable);
    this.#parts = [];
    this.#open = false;
    return parts;
  }

  /** Drops every record framed so far (their writes were rejected). */
  clear(): void {
    this.#buf.reset();
    this.#parts = [];
    this.#open = false;
  }

  #flushBuffer(): void {
    if (this.#buf.pos > 0) this.#parts.push(this.#buf.finish());
    this.#buf.reset();
  }
}
