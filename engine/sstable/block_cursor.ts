/**
 * A forward cursor over one data block that decodes an entry at a time in
 * place (layout in engine/sstable/block.ts and engine/FORMAT.md, "Data
 * block"), for the compaction merge: it reads every entry once, in order,
 * and hands each straight to a table writer that copies it.
 *
 * Unlike decodeBlock it makes no Entry per key, no Entry[] per block and
 * no copy of the block: the cursor's one Entry object is rewritten on each
 * step, the key is rebuilt in one buffer of the cursor (only the unshared
 * bytes are written: the shared prefix is already there from the previous
 * key), and the value is a view into the block. Decoding whole blocks (and
 * copying mapped ones first) was 18% of bench/micro/compaction_merge.ts's
 * profile, and 14-17% of the compaction worker's in a 1M-key overwrite
 * (issue #12). The price: the key's bytes and the value are valid only
 * until the next step or reset (and the value only while the block's bytes
 * are: a mapped table's until it closes). Callers that keep a key copy it.
 *
 * @module
 */
import type { Entry } from "../entry.ts";
import { entryTailInto, restartBase, varintAt, varintEnd } from "./block.ts";
import { TableFormatError } from "./format.ts";

const EMPTY = new Uint8Array(0);

/** Decodes the entries of one block in order, one step at a time. */
export class BlockCursor {
  /** The current entry; rewritten in place by every step. */
  readonly entry: Entry = {
    key: EMPTY,
    seq: 0,
    kind: 0,
    encoding: 0,
    expiresAt: 0,
    value: EMPTY,
  };
  #block: Uint8Array = EMPTY;
  #limit = 0;
  #p = 0;
  // The current key is #buf[0..#len); #view is that range, made anew only
  // when the length changes (keys of one length reuse it).
  #buf = new Uint8Array(64);
  #len = 0;
  #view: Uint8Array = EMPTY;

  /**
   * Starts on `block`, positioned at its first entry. Throws
   * TableFormatError when the block is malformed or empty.
   */
  reset(block: Uint8Array): void {
    this.#block = block;
    this.#limit = restartBase(block);
    this.#p = 0;
    this.#len = 0;
    if (!this.next()) throw new TableFormatError("empty data block");
  }

  /**
   * Decodes the next entry into `entry`; false (entry unchanged) when the
   * block has no more. Throws TableFormatError on a malformed entry.
   */
  next(): boolean {
    const block = this.#block;
    const limit = this.#limit;
    let p = this.#p;
    if (p >= limit) return false;
    const shared = varintAt(block, p, limit);
    const unshared = varintAt(block, varintEnd(), limit);
    p = varintEnd();
    if (shared > this.#len || p + unshared > limit) {
      throw new TableFormatError(`entry at ${p} has bad key lengths`);
    }
    const len = shared + unshared;
    let buf = this.#buf;
    if (len > buf.length) {
      const grown = new Uint8Array(Math.max(len, buf.length * 2));
      grown.set(buf.subarray(0, shared));
      this.#buf = buf = grown;
      this.#view = EMPTY;
    }
    if (unshared > 32) buf.set(block.subarray(p, p + unshared), shared);
    else for (let i = 0; i < unshared; i++) buf[shared + i] = block[p + i];
    p += unshared;
    if (len !== this.#view.length) {
      this.#view = buf.subarray(0, len);
    }
    this.#len = len;
    const e = this.entry;
    e.key = this.#view;
    this.#p = entryTailInto(block, p, limit, e);
    return true;
  }
}
