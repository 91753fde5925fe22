/**
 * Data blocks: builder and readers. Layout (engine/FORMAT.md, "Data block"):
 *
 * ```
 * entry*  restart u32 LE * n  n u32 LE
 * entry = shared varint | unshared varint | key[shared..] |
 *         seq varint | kind u8 | encoding u8 | expiresAt varint |
 *         valueLen varint | value
 * ```
 *
 * Keys are prefix-compressed against the previous entry; every
 * {@link RESTART_INTERVAL}th entry is a restart point that stores its key
 * whole (shared = 0), so a lookup binary-searches the restart array and
 * scans at most one interval. Entries are in internal order (key asc, seq
 * desc). The block's CRC trailer is added by the writer, not here.
 *
 * @module
 */
import { ByteWriter, putVarint, readU32 } from "../coding.ts";
import type { Entry } from "../entry.ts";
import { RESTART_INTERVAL, TableFormatError } from "./format.ts";

/** Accumulates entries of one data block. */
export class BlockBuilder {
  #w = new ByteWriter(8192);
  #restarts: number[] = [0];
  #counter = 0;
  #entries = 0;
  // The last key added since construction; survives reset() so the table
  // writer can check ordering across blocks without a second copy.
  #last = new Uint8Array(256);
  #lastLen = 0;
  #lastSeq = -1;

  /** Entries in the current block. */
  get entries(): number {
    return this.#entries;
  }

  /** Size the block would have if finished now. */
  get estimatedSize(): number {
    return this.#w.pos + this.#restarts.length * 4 + 4;
  }

  /** Seqno of the last entry added (-1 before any). */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** View of the last key added (valid until the next add). */
  lastKey(): Uint8Array {
    return this.#last.subarray(0, this.#lastLen);
  }

  /** Appends an entry; throws RangeError if it is out of internal order. */
  add(
    key: Uint8Array,
    seq: number,
    kind: number,
    encoding: number,
    expiresAt: number,
    value: Uint8Array,
  ): void {
    const order = this.addAt(
      key,
      0,
      key.length,
      seq,
      kind,
      encoding,
      expiresAt,
      value,
      0,
      value.length,
    );
    if (order < 0) throw new RangeError(`block entry out of order: seq ${seq}`);
  }

  /**
   * Appends the entry with key `kb[ko..ko+kl]` and value `vb[vo..vo+vl]`
   * if it comes after the last one added in internal order; returns 1 (a
   * new user key), 0 (the same key, an older seq) or -1 (out of order:
   * nothing added). The flush and compaction paths call this once per
   * entry, so the order check and the shared-prefix length come from one
   * pass over the key, and no view of the key or value is made.
   */
  addAt(
    kb: Uint8Array,
    ko: number,
    kl: number,
    seq: number,
    kind: number,
    encoding: number,
    expiresAt: number,
    vb: Uint8Array,
    vo: number,
    vl: number,
  ): number {
    const last = this.#last;
    const lastLen = this.#lastLen;
    const n = lastLen < kl ? lastLen : kl;
    let prefix = 0;
    while (prefix < n && last[prefix] === kb[ko + prefix]) prefix++;
    let order = 1;
    if (this.#lastSeq >= 0) {
      const c = prefix < n ? kb[ko + prefix] - last[prefix] : kl - lastLen;
      if (c < 0 || (c === 0 && seq >= this.#lastSeq)) return -1;
      if (c === 0) order = 0;
    }
    const w = this.#w;
    if (this.#counter === RESTART_INTERVAL) {
      this.#restarts.push(w.pos);
      this.#counter = 0;
    }
    const shared = this.#counter > 0 ? prefix : 0;
    const unshared = kl - shared;
    // One bounds check, then bytes straight into the buffer: this runs once
    // per entry of every flush and compaction, where a subarray() per key
    // and a call per field showed up in the compaction worker's profile.
    w.ensure(unshared + vl + 40);
    const buf = w.buf;
    let p = putVarint(buf, w.pos, shared);
    p = putVarint(buf, p, unshared);
    const kEnd = ko + kl;
    if (unshared > 32) {
      buf.set(kb.subarray(ko + shared, kEnd), p);
      p += unshared;
    } else for (let i = ko + shared; i < kEnd; i++) buf[p++] = kb[i];
    p = putVarint(buf, p, seq);
    buf[p++] = kind;
    buf[p++] = encoding;
    p = putVarint(buf, p, expiresAt);
    p = putVarint(buf, p, vl);
    if (vo === 0 && vl === vb.length) buf.set(vb, p);
    else if (vl > 0) buf.set(vb.subarray(vo, vo + vl), p);
    w.pos = p + vl;
    this.#counter++;
    this.#entries++;
    if (kl > last.length) {
      const grown = new Uint8Array(Math.max(kl, last.length * 2));
      grown.set(last.subarray(0, prefix));
      this.#last = grown;
    }
    // The last key shares `prefix` bytes with this one whether or not the
    // block stored them shared.
    const l = this.#last;
    if (kl - prefix > 32) l.set(kb.subarray(ko + prefix, kEnd), prefix);
    else for (let i = prefix; i < kl; i++) l[i] = kb[ko + i];
    this.#lastLen = kl;
    this.#lastSeq = seq;
    return order;
  }

  /** Appends the restart array; returns a view valid until reset(). */
  finish(): Uint8Array {
    const w = this.#w;
    for (const r of this.#restarts) w.u32(r);
    w.u32(this.#restarts.length);
    return w.view_();
  }

  /** Starts a new block (keeps the buffer allocation). */
  reset(): void {
    this.#w.reset();
    this.#restarts = [0];
    this.#counter = 0;
    this.#entries = 0;
  }
}

// Position after the last varint read by varintAt. Module state keeps the
// hot decode loop free of allocations; all decoding is synchronous.
let vpos = 0;

/** Where the last {@link varintAt} read ended (for engine/sstable/block_cursor.ts). */
export function varintEnd(): number {
  return vpos;
}

/**
 * The varint at `b[p]`, which must end before `limit`; sets the position
 * after it ({@link varintEnd}). Throws TableFormatError when it runs past.
 */
export function varintAt(b: Uint8Array, p: number, limit: number): number {
  if (p >= limit) {
    throw new TableFormatError(`varint runs past entry area at ${p}`);
  }
  let x = b[p++];
  if (x < 0x80) {
    vpos = p;
    return x;
  }
  let result = x & 0x7f;
  let mul = 128;
  for (let i = 1; i < 8; i++) {
    if (p >= limit) {
      throw new TableFormatError(`varint runs past entry area at ${p}`);
    }
    x = b[p++];
    result += (x & 0x7f) * mul;
    if (x < 0x80) {
      vpos = p;
      return result;
    }
    mul *= 128;
  }
  throw new TableFormatError(`varint longer than 8 bytes at ${p}`);
}

/** A placeholder value for an Entry whose tail is read next. */
const EMPTY_VALUE = new Uint8Array(0);

/**
 * Reads the part of an entry after its key, from `p`, into `e`: seq, kind,
 * encoding, expiresAt and the value (a view into `block`). Returns the
 * offset after the entry. Throws TableFormatError when it runs past `limit`.
 */
export function entryTailInto(
  block: Uint8Array,
  p: number,
  limit: number,
  e: Entry,
): number {
  e.seq = varintAt(block, p, limit);
  p = vpos;
  if (p + 2 > limit) throw new TableFormatError(`entry at ${p} truncated`);
  e.kind = block[p];
  e.encoding = block[p + 1];
  e.expiresAt = varintAt(block, p + 2, limit);
  const vlen = varintAt(block, vpos, limit);
  p = vpos;
  if (p + vlen > limit) {
    throw new TableFormatError(`value at ${p} runs past entry area`);
  }
  e.value = block.subarray(p, p + vlen);
  return p + vlen;
}

/**
 * Reads the restart array trailer; returns the offset where it starts (the
 * end of the entries).
 */
export function restartBase(block: Uint8Array): number {
  const len = block.length;
  if (len < 4) {
    throw new TableFormatError(`block of ${len} bytes has no restart count`);
  }
  const n = readU32(block, len - 4);
  const base = len - 4 - n * 4;
  if (n === 0 || base < 0) {
    throw new TableFormatError(
      `bad restart count ${n} in block of ${len} bytes`,
    );
  }
  return base;
}

/**
 * Compares `a[0..aLen]` with `b` in unsigned byte order. Returns <0, 0, >0.
 */
function cmp(a: Uint8Array, aOff: number, aLen: number, b: Uint8Array): number {
  const n = aLen < b.length ? aLen : b.length;
  for (let i = 0; i < n; i++) {
    const d = a[aOff + i] - b[i];
    if (d !== 0) return d;
  }
  return aLen - b.length;
}

/**
 * The newest entry for user key `key` with seq <= `seq` in this block, or
 * undefined when the first entry at or after (key, seq) has another key or
 * the block ends first. Allocates only the result: its `key` is the `key`
 * argument itself (equal bytes) and its value is a view into `block` (treat
 * both as read-only: the block may be cached).
 */
export function blockGet(
  block: Uint8Array,
  key: Uint8Array,
  seq: number,
): Entry | undefined {
  const limit = restartBase(block);
  const numRestarts = (block.length - 4 - limit) >>> 2;

  // Last restart point whose key is strictly before (key, seq).
  let lo = 0;
  let hi = numRestarts - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    let p = readU32(block, limit + mid * 4);
    if (p >= limit) throw new TableFormatError(`restart ${mid} out of range`);
    const shared = varintAt(block, p, limit);
    const unshared = varintAt(block, vpos, limit);
    p = vpos;
    if (shared !== 0 || p + unshared > limit) {
      throw new TableFormatError(`restart ${mid} entry malformed`);
    }
    let c = cmp(block, p, unshared, key);
    if (c === 0) c = seq - varintAt(block, p + unshared, limit);
    if (c < 0) lo = mid;
    else hi = mid - 1;
  }

  // Scan forward without materialising keys. `match` is the length of the
  // common prefix of the previous entry's key and `key`, and `c` their
  // comparison; we only continue while the previous key was <= `key`. An
  // entry sharing more than `match` bytes with its predecessor therefore
  // compares exactly like it; one sharing at most `match` bytes agrees with
  // `key` on its first `shared` bytes, so comparing resumes there.
  let p = readU32(block, limit + lo * 4);
  const tlen = key.length;
  let keyLen = 0;
  let match = 0;
  let c = -1;
  while (p < limit) {
    const shared = varintAt(block, p, limit);
    const unshared = varintAt(block, vpos, limit);
    p = vpos;
    if (shared > keyLen || p + unshared > limit) {
      throw new TableFormatError(`entry at ${p} has bad key lengths`);
    }
    keyLen = shared + unshared;
    if (shared <= match) {
      // Compare block[p .. p+unshared) with key[shared ..).
      let i = 0;
      const n = tlen - shared < unshared ? tlen - shared : unshared;
      while (i < n && block[p + i] === key[shared + i]) i++;
      match = shared + i;
      c = i < n ? block[p + i] - key[shared + i] : keyLen - tlen;
    }
    p += unshared;
    if (c > 0) return undefined;
    // The entry's tail is read inline, not through entryTailInto: a shared
    // reader cost blockGet 15-17% (block_bench.ts's block, 2026-12-01).
    const eSeq = varintAt(block, p, limit);
    p = vpos;
    if (p + 2 > limit) throw new TableFormatError(`entry at ${p} truncated`);
    const kind = block[p];
    const encoding = block[p + 1];
    const expiresAt = varintAt(block, p + 2, limit);
    const vlen = varintAt(block, vpos, limit);
    p = vpos;
    if (p + vlen > limit) {
      throw new TableFormatError(`value at ${p} runs past entry area`);
    }
    if (c === 0 && eSeq <= seq) {
      return {
        key,
        seq: eSeq,
        kind,
        encoding,
        expiresAt,
        value: block.subarray(p, p + vlen),
      };
    }
    p += vlen;
  }
  return undefined;
}

/**
 * Decodes every entry of a block, in order. Keys are views into a per-block
 * copy (not into `block`), values views into `block`; both read-only. Throws TableFormatError on any structural problem,
 * including an empty block (the writer never emits one).
 */
export function decodeBlock(block: Uint8Array): Entry[] {
  const limit = restartBase(block);
  const out: Entry[] = [];
  // Keys are views into one arena per block (a fresh ArrayBuffer per key
  // costs about a microsecond in V8). Prefix compression means the keys can
  // outgrow the block, so the arena is replaced when full; earlier views
  // keep the old one alive.
  let arena = new Uint8Array(limit + 64);
  let apos = 0;
  let prev = arena.subarray(0, 0);
  let p = 0;
  while (p < limit) {
    const shared = varintAt(block, p, limit);
    const unshared = varintAt(block, vpos, limit);
    p = vpos;
    if (shared > prev.length || p + unshared > limit) {
      throw new TableFormatError(`entry at ${p} has bad key lengths`);
    }
    const keyLen = shared + unshared;
    if (apos + keyLen > arena.length) {
      arena = new Uint8Array(Math.max(keyLen, limit) + 64);
      apos = 0;
    }
    for (let i = 0; i < shared; i++) arena[apos + i] = prev[i];
    for (let i = 0; i < unshared; i++) arena[apos + shared + i] = block[p + i];
    const key = arena.subarray(apos, apos + keyLen);
    apos += keyLen;
    p += unshared;
    const e: Entry = {
      key,
      seq: 0,
      kind: 0,
      encoding: 0,
      expiresAt: 0,
      value: EMPTY_VALUE,
    };
    p = entryTailInto(block, p, limit, e);
    out.push(e);
    prev = key;
  }
  if (out.length === 0) throw new TableFormatError("empty data block");
  return out;
}
