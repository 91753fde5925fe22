/**
 * Iterates one table in internal order, a decoded data block at a time
 * (a whole block is decoded when the cursor enters it, which keeps
 * next()/prev() trivial). Reads only through the reader's public methods.
 *
 * @module
 */
import {
  compareEntries,
  type Entry,
  type EntryIterator,
  MAX_SEQ,
} from "../entry.ts";
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
