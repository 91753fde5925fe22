/**
 * Byte coding shared by every on-disk format: LEB128 varints, fixed-width
 * little-endian integers, byte comparison. A leaf module: imports nothing.
 *
 * Numbers up to 2^53 are handled as JS numbers (seqnos, offsets, expiry
 * times all stay below that), so no BigInt on hot paths.
 *
 * @module
 */

/** Compares two byte strings in unsigned lexicographic order. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    const d = a[i] - b[i];
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/**
 * The bytes as a "binary string" (one UTF-16 code unit per byte, 0..255).
 * JS compares such strings natively in unsigned byte order, on the V8 heap,
 * which is several times faster than comparing scattered Uint8Arrays; the
 * memtable keys its skip list with them.
 */
export function binaryString(b: Uint8Array): string {
  // One flat string in one call for short keys (a concatenated cons-string
  // would be flattened again when hashed or compared); chunks beyond that.
  if (b.length <= 1024) {
    return String.fromCharCode.apply(null, b as unknown as number[]);
  }
  let s = "";
  for (let i = 0; i < b.length; i += 1024) {
    s += String.fromCharCode.apply(
      null,
      b.subarray(i, i + 1024) as unknown as number[],
    );
  }
  return s;
}

/** True when the two byte strings are equal. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** True when `key` starts with `prefix`. */
export function hasPrefix(key: Uint8Array, prefix: Uint8Array): boolean {
  if (key.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) {
    if (key[i] !== prefix[i]) return false;
  }
  return true;
}

/**
 * The smallest key greater than every key with this prefix, or undefined when
 * there is none (the prefix is empty or all 0xFF).
 */
export function prefixEnd(prefix: Uint8Array): Uint8Array | undefined {
  let i = prefix.length - 1;
  while (i >= 0 && prefix[i] === 0xff) i--;
  if (i < 0) return undefined;
  const end = prefix.slice(0, i + 1);
  end[i]++;
  return end;
}

/** Number of bytes the varint encoding of `v` takes. */
export function varintLength(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/**
 * Writes `v` (below 2^53) as a varint at `p` of `buf`, which must have room
 * (up to 8 bytes); returns the position after it. For loops that write
 * several fields after one bounds check (sstable/block.ts).
 */
export function putVarint(buf: Uint8Array, p: number, v: number): number {
  while (v >= 0x80) {
    buf[p++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  buf[p++] = v;
  return p;
}

/**
 * Hands out small byte arrays carved from shared slabs. In this runtime a
 * `new Uint8Array(n)` costs about 1.3 us whatever its size (each gets its
 * own backing store), while a view into an existing buffer costs about
 * 40 ns; hot paths that make many small, similarly long-lived arrays (write
 * batches, decoded request keys) take them from an arena instead. A slab is
 * freed when nothing references any array carved from it, so arrays that
 * live together (a memtable's entries) should share an arena.
 */
export class Arena {
  #slab: Uint8Array;
  #pos = 0;
  /** `slabBytes`: the size of each slab arrays are carved from. */
  constructor(readonly slabBytes = 256 * 1024) {
    this.#slab = new Uint8Array(slabBytes);
  }

  /** `n` zeroed bytes; larger requests than a slab's eighth get their own buffer. */
  alloc(n: number): Uint8Array {
    if (n > this.slabBytes >>> 3) return new Uint8Array(n);
    if (this.#pos + n > this.#slab.length) {
      this.#slab = new Uint8Array(this.slabBytes);
      this.#pos = 0;
    }
    const out = this.#slab.subarray(this.#pos, this.#pos + n);
    // Keep 8-byte alignment: DataView and typed-array users stay fast.
    this.#pos = (this.#pos + n + 7) & ~7;
    return out;
  }
}

/** A growable byte buffer with append helpers; `finish()` returns the bytes. */
export class ByteWriter {
  buf: Uint8Array;
  pos = 0;

  /** Starts with `initial` bytes, or with the given buffer (e.g. from an Arena). */
  constructor(initial: number | Uint8Array = 256) {
    this.buf = typeof initial === "number" ? new Uint8Array(initial) : initial;
  }

  /** Makes room for `n` more bytes. */
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }

  u32(v: number): void {
    this.ensure(4);
    writeU32(this.buf, this.pos, v);
    this.pos += 4;
  }

  /** Writes a non-negative integer below 2^53 as 8 little-endian bytes. */
  u64(v: number): void {
    this.ensure(8);
    writeU64(this.buf, this.pos, v);
    this.pos += 8;
  }

  varint(v: number): void {
    // Exactly its length: an exactly-sized buffer (encodeBatchOps) must
    // not grow for a varint that fits.
    this.ensure(v < 0x80 ? 1 : varintLength(v));
    this.pos = putVarint(this.buf, this.pos, v);
  }

  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** A varint length followed by the bytes. */
  lengthPrefixed(b: Uint8Array): void {
    this.varint(b.length);
    this.bytes(b);
  }

  /** Drops everything written so far, keeping the allocation. */
  reset(): void {
    this.pos = 0;
  }

  /** The bytes written so far (a view, valid until the next write). */
  view_(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }

  /** A copy of the bytes written so far. */
  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

/**
 * Encoded bytes are malformed: what a decoder throws so its caller can turn
 * it into a CorruptionError with file and offset. Decoders throw only this
 * for bad input, so any other error (a RangeError from a bad typed-array
 * length, a TypeError) is a bug and passes through as itself.
 */
export class DecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DecodeError";
  }
}

/**
 * A cursor over bytes. Every read checks bounds and throws a DecodeError
 * naming the field; callers turn that into a CorruptionError with file and
 * offset.
 */
export class ByteReader {
  pos: number;
  readonly end: number;
  constructor(readonly buf: Uint8Array, start = 0, end = buf.length) {
    this.pos = start;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number, what: string): void {
    if (this.pos + n > this.end) {
      throw new DecodeError(`${what} runs past the end at offset ${this.pos}`);
    }
  }

  u8(what = "byte"): number {
    this.need(1, what);
    return this.buf[this.pos++];
  }

  u32(what = "u32"): number {
    this.need(4, what);
    const v = readU32(this.buf, this.pos);
    this.pos += 4;
    return v;
  }

  u64(what = "u64"): number {
    this.need(8, what);
    const v = readU64(this.buf, this.pos);
    this.pos += 8;
    return v;
  }

  varint(what = "varint"): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      this.need(1, what);
      const b = this.buf[this.pos++];
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 128;
    }
    throw new DecodeError(
      `${what} is longer than 8 bytes at offset ${this.pos}`,
    );
  }

  /** A view (no copy) of the next `n` bytes. */
  bytes(n: number, what = "bytes"): Uint8Array {
    this.need(n, what);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  lengthPrefixed(what = "length-prefixed bytes"): Uint8Array {
    const n = this.varint(what + " length");
    return this.bytes(n, what);
  }
}

/** Reads a little-endian u32. */
export function readU32(b: Uint8Array, off: number): number {
  return (b[off] | (b[off + 1] << 8) | (b[off + 2] << 16) |
    (b[off + 3] << 24)) >>> 0;
}

/** Writes a little-endian u32. */
export function writeU32(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
  b[off + 2] = (v >>> 16) & 0xff;
  b[off + 3] = (v >>> 24) & 0xff;
}

/** Reads a little-endian u64 that is known to stay below 2^53. */
export function readU64(b: Uint8Array, off: number): number {
  return readU32(b, off) + readU32(b, off + 4) * 0x100000000;
}

/** Writes a non-negative integer below 2^53 as a little-endian u64. */
export function writeU64(b: Uint8Array, off: number, v: number): void {
  writeU32(b, off, v % 0x100000000);
  writeU32(b, off + 4, Math.floor(v / 0x100000000));
}

/**
 * FNV-1a over the bytes, as a signed 32-bit integer: the hash of the
 * memtable's key index and of a batch's duplicate-key check.
 */
export function fnv1a(b: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i], 0x01000193);
  return h | 0;
}

/**
 * Writes `b` into `out` from word `at` as big-endian 32-bit words, the last
 * one padded with zero bytes, so that word runs compare as unsigned
 * integers in the bytes' order (how the memtable compares keys). `out`
 * must hold at least ceil(b.length / 4) words from `at`.
 */
export function bigEndianWords(b: Uint8Array, out: Uint32Array, at = 0): void {
  const full = b.length >>> 2;
  for (let w = at, i = 0; i < full * 4; w++, i += 4) {
    out[w] = (b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3];
  }
  if (full * 4 < b.length) {
    let v = 0;
    for (let i = full * 4, shift = 24; i < b.length; i++, shift -= 8) {
      v |= b[i] << shift;
    }
    out[at + full] = v;
  }
}
