/**
 * The buffers a memtable's entries live in, numbered. A node record is
 * typed-array words, so it cannot hold a reference to the ArrayBuffer its
 * key and value bytes sit in; it holds that buffer's number here instead.
 * The write path encodes each commit group into a few large slabs, so the
 * table stays short and consecutive adds mostly name the same buffer,
 * which is remembered to skip the map lookup.
 *
 * @module
 */

/** ArrayBuffers numbered 0, 1, ... in the order first seen. */
export class BufferTable {
  /** Buffer number -> buffer. */
  readonly buffers: ArrayBufferLike[] = [];
  #numbers = new Map<ArrayBufferLike, number>();
  #last: ArrayBufferLike | null = null;
  #lastNumber = -1;

  /** The number of `buffer`, assigned when it is new. */
  numberOf(buffer: ArrayBufferLike): number {
    if (buffer === this.#last) return this.#lastNumber;
    let i = this.#numbers.get(buffer);
    if (i === undefined) {
      i = this.buffers.length;
      this.buffers.push(buffer);
      this.#numbers.set(buffer, i);
    }
    this.#last = buffer;
    this.#lastNumber = i;
    return i;
  }
}
