/**
 * Iterates one table in internal order. TableIterator goes both ways, a
 * decoded data block at a time (a whole block is decoded when the cursor
 * enters it, which keeps next()/prev() trivial, and its keys stay valid
 * after it moves); TableForwardIterator goes forward only, decoding one
 * entry at a time in place (engine/sstable/block_cursor.ts), for the
 * compaction merge. Both read only through the reader's public methods.
 *
 * @module
 */
import {
  compareEntries,
  type Entry,
  type EntryIterator,
  MAX_SEQ,
} from "../entry.ts";
import { TableFormatError } from "./format.ts";
import { BlockCursor } from "./block_cursor.ts";
import type { TableReader } from "./reader.ts";

/** A bidirectional iterator over every entry of `t`. */
export class TableIterator implements EntryIterator {
  readonly #t: TableReader;
  #block = -1;
  #entries: Entry[] = [];
  #pos = 0;
  #valid = false;

  constructor(t: TableReader) {
    this.#t = t;
  }

  #load(i: number): void {
    if (this.#block !== i) {
      this.#entries = this.#t.decodeDataBlock(i);
      this.#block = i;
    }
  }

  seek(key: Uint8Array, seq: number = MAX_SEQ): void {
    const t = this.#t;
    const i = t.findBlock(key, seq);
    if (i >= t.blockCount) {
      this.#valid = false;
      return;
    }
    this.#load(i);
    const es = this.#entries;
    let lo = 0;
    let hi = es.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareEntries(es[mid].key, es[mid].seq, key, seq) < 0) lo = mid + 1;
      else hi = mid;
    }
    this.#pos = lo;
    this.#valid = true;
    // The index promised an entry at or after the target in this block; if
    // the block disagrees, continue with the next one rather than stop.
    if (lo === es.length) {
      this.#pos = lo - 1;
      this.next();
    }
  }

  seekToFirst(): void {
    if (this.#t.blockCount === 0) {
      this.#valid = false;
      return;
    }
    this.#load(0);
    this.#pos = 0;
    this.#valid = true;
  }

  seekToLast(): void {
    const n = this.#t.blockCount;
    if (n === 0) {
      this.#valid = false;
      return;
    }
    this.#load(n - 1);
    this.#pos = this.#entries.length - 1;
    this.#valid = true;
  }

  seekBefore(key: Uint8Array): void {
    this.seek(key, MAX_SEQ);
    if (this.#valid) this.prev();
    else this.seekToLast();
  }

  valid(): boolean {
    return this.#valid;
  }

  next(): void {
    if (!this.#valid) return;
    if (++this.#pos < this.#entries.length) return;
    if (this.#block + 1 < this.#t.blockCount) {
      this.#load(this.#block + 1);
      this.#pos = 0;
    } else {
      this.#valid = false;
    }
  }

  prev(): void {
    if (!this.#valid) return;
    if (--this.#pos >= 0) return;
    if (this.#block > 0) {
      this.#load(this.#block - 1);
      this.#pos = this.#entries.length - 1;
    } else {
      this.#valid = false;
    }
  }

  entry(): Entry {
    return this.#entries[this.#pos];
  }
}

/**
 * A forward-only iterator over every entry of `t`, decoding each entry in
 * place (engine/sstable/block_cursor.ts): entry() returns the same object
 * every time, and its key bytes and value are valid only until the next
 * move (and, on a mapped reader, the value only until the reader closes).
 * seekToLast(), seekBefore() and prev() throw: nothing that goes backwards
 * may use it.
 */
export class TableForwardIterator implements EntryIterator {
  readonly #t: TableReader;
  readonly #cur = new BlockCursor();
  #block = -1;
  #valid = false;

  constructor(t: TableReader) {
    this.#t = t;
  }

  /** Positions at the first entry of block `i` or, past the end, invalid. */
  #enter(i: number): void {
    this.#block = i;
    this.#valid = i < this.#t.blockCount;
    if (!this.#valid) return;
    try {
      this.#cur.reset(this.#t.readDataBlock(i));
    } catch (err) {
      throw this.#wrap(err);
    }
  }

  #wrap(err: unknown): unknown {
    return err instanceof TableFormatError
      ? this.#t.dataBlockError(this.#block, err)
      : err;
  }

  seek(key: Uint8Array, seq: number = MAX_SEQ): void {
    this.#enter(this.#t.findBlock(key, seq));
    // A linear walk from the block's start: the merge seeks once, if at all.
    while (this.#valid) {
      const e = this.#cur.entry;
      if (compareEntries(e.key, e.seq, key, seq) >= 0) return;
      this.next();
    }
  }

  seekToFirst(): void {
    this.#enter(0);
  }

  seekToLast(): void {
    throw new Error("TableForwardIterator moves forward only");
  }

  seekBefore(_key: Uint8Array): void {
    throw new Error("TableForwardIterator moves forward only");
  }

  valid(): boolean {
    return this.#valid;
  }

  next(): void {
    if (!this.#valid) return;
    let more: boolean;
    try {
      more = this.#cur.next();
    } catch (err) {
      throw this.#wrap(err);
    }
    if (!more) this.#enter(this.#block + 1);
  }

  prev(): void {
    throw new Error("TableForwardIterator moves forward only");
  }

  entry(): Entry {
    return this.#cur.entry;
  }
}
