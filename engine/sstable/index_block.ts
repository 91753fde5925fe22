/**
 * The index block of a table: one entry per data block, its last internal
 * key and its handle (layout in engine/FORMAT.md, "Index block"). A reader
 * decodes it once at open and keeps it as parallel typed arrays over the
 * block's own bytes: no object per data block, so the memory an open table
 * holds is the index block plus 32 bytes a block, all of it counted.
 *
 * @module
 */
import { readU32 } from "../coding.ts";
import { compareEntries } from "../entry.ts";
import { BLOCK_TRAILER_SIZE, TableFormatError } from "./format.ts";

/** A decoded index: slot i describes data block i. */
export interface BlockIndex {
  /** The index block the keys live in. */
  bytes: Uint8Array;
  /** Where the last stored key of each block starts in `bytes`. */
  keyStarts: Uint32Array;
  /** Where it ends (exclusive). */
  keyEnds: Uint32Array;
  /** Seq of that last entry. */
  seqs: Float64Array;
  offsets: Float64Array;
  /** Block sizes, without trailers. */
  sizes: Float64Array;
}

/**
 * Decodes an index block, checking that its entries are in order and that
 * the data blocks they point at lie back to back from offset 0. Throws
 * TableFormatError naming what failed.
 */
export function decodeIndexBlock(index: Uint8Array): BlockIndex {
  const n = index.length >= 4 ? readU32(index, index.length - 4) : -1;
  // Every index entry takes at least 4 bytes, which bounds a sane count.
  if (n < 0 || n * 4 > index.length) {
    throw new TableFormatError(`index block has bad entry count ${n}`);
  }
  const keyStarts = new Uint32Array(n);
  const keyEnds = new Uint32Array(n);
  let prevKey: Uint8Array = new Uint8Array(0);
  const seqs = new Float64Array(n);
  const offsets = new Float64Array(n);
  const sizes = new Float64Array(n);
  const end = index.length - 4;
  let p = 0;
  let expectOffset = 0;
  const varint = (what: string): number => {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      if (p >= end) break;
      const b = index[p++];
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 128;
    }
    throw new TableFormatError(`index entry ${what} malformed at ${p}`);
  };
  for (let i = 0; i < n; i++) {
    const klen = varint("key length");
    if (p + klen > end) {
      throw new TableFormatError(`index entry ${i} key runs past block`);
    }
    const key = index.subarray(p, p + klen);
    keyStarts[i] = p;
    keyEnds[i] = p + klen;
    p += klen;
    const seq = varint("seq");
    const offset = varint("offset");
    const size = varint("size");
    if (offset !== expectOffset) {
      throw new TableFormatError(
        `index entry ${i} points at offset ${offset}, expected ${expectOffset}`,
      );
    }
    if (
      i > 0 &&
      compareEntries(prevKey, seqs[i - 1], key, seq) >= 0
    ) {
      throw new TableFormatError(`index entry ${i} is out of order`);
    }
    prevKey = key;
    seqs[i] = seq;
    offsets[i] = offset;
    sizes[i] = size;
    expectOffset = offset + size + BLOCK_TRAILER_SIZE;
  }
  if (p !== end) {
    throw new TableFormatError(`index block has ${end - p} trailing bytes`);
  }
  return { bytes: index, keyStarts, keyEnds, seqs, offsets, sizes };
}

/** Bytes a decoded index holds in memory: the block and its typed arrays. */
export function indexMemoryBytes(idx: BlockIndex): number {
  return idx.bytes.byteLength +
    idx.keyStarts.length * (4 + 4 + 8 + 8 + 8);
}

/**
 * Compares `key` with the index key of slot `i` in unsigned byte order
 * (negative when the slot's key sorts first), without making a view.
 */
export function compareIndexKey(
  idx: BlockIndex,
  i: number,
  key: Uint8Array,
): number {
  const b = idx.bytes;
  const start = idx.keyStarts[i];
  const len = idx.keyEnds[i] - start;
  const n = len < key.length ? len : key.length;
  for (let j = 0; j < n; j++) {
    const d = b[start + j] - key[j];
    if (d !== 0) return d;
  }
  return len - key.length;
}
