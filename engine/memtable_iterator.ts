/**
 * A cursor over a {@link Memtable}: a node of its skip list, moved through
 * the memtable's internal accessors. It stays valid while entries are
 * added (nodes are never removed).
 *
 * @module
 */
import type { Entry, EntryIterator } from "./entry.ts";
import { MAX_SEQ } from "./entry.ts";
import type { Memtable } from "./memtable.ts";

/** A cursor over a memtable, in internal order (key, then newest first). */
export class MemtableIterator implements EntryIterator {
  /** The current node; 0 (the head) when not valid. */
  #node = 0;
  /** entry() of #node, built once per position (the merge heap asks often). */
  #entry: Entry | undefined;
  #entryOf = 0;
  constructor(readonly mem: Memtable) {}
  seek(key: Uint8Array, seq = MAX_SEQ): void {
    this.#node = this.mem._seek(key, seq);
  }
  seekToFirst(): void {
    this.#node = this.mem._first();
  }
  seekToLast(): void {
    this.#node = this.mem._last();
  }
  seekBefore(key: Uint8Array): void {
    this.#node = this.mem._before(key, MAX_SEQ);
  }
  valid(): boolean {
    return this.#node !== 0;
  }
  next(): void {
    this.#node = this.mem._next(this.#node);
  }
  prev(): void {
    this.#node = this.mem._prev(this.#node);
  }
  entry(): Entry {
    const n = this.#node;
    if (this.#entry === undefined || this.#entryOf !== n) {
      this.#entry = this.mem._entry(n);
      this.#entryOf = n;
    }
    return this.#entry;
  }
}
