/**
 * The memtable: a skip list of entries in internal order (user key
 * ascending, seqno descending), bounded by an approximate byte size.
 *
 * Only the main thread touches a memtable. Entries are applied after they
 * are durable, in seqno order, and never removed: a frozen memtable stays
 * readable until its table is installed.
 *
 * The list is stored the way LevelDB's arena stores it, without a JS object
 * per entry: a node is an index into parallel typed arrays (seqno, expiry,
 * kind, where its key and value bytes are) and its forward links are a run
 * of a shared `Int32Array`. Key and value bytes stay in the buffers the
 * write path encoded the batch into (a few large slabs), so an insert
 * allocates nothing but amortised array growth, and the collector has no
 * per-entry objects to trace or move. Node 0 is the head; a link of 0 means
 * "none" (nothing links back to the head). The record's layout is in
 * memtable_layout.ts, the search in memtable_search.ts, and the order a
 * commit group is inserted in (internal order, each insert starting from
 * the previous one's splice) in memtable_order.ts.
 *
 * @module
 */
import type { Entry, EntryIterator } from "./entry.ts";
import { KIND_RANGE_DELETE } from "./entry.ts";
import type { RangeTombstone } from "./range_tombstones.ts";
import { tombstoneFromEntry } from "./range_tombstones.ts";
import { MAX_SEQ } from "./entry.ts";
import { MemtableIterator } from "./memtable_iterator.ts";
import { bigEndianWords } from "./coding.ts";
import { BufferTable } from "./memtable_buffers.ts";
import { hashWords, NewestIndex } from "./memtable_index.ts";
import { internalOrder } from "./memtable_order.ts";
import {
  BUF,
  EXPIRES,
  keyAt,
  KLEN,
  KOFF,
  LINKS,
  MAX_HEIGHT,
  type MemtableImage,
  META,
  SEQ,
  VLEN,
  VOFF,
} from "./memtable_layout.ts";
import { findFromSplice, findLast, findLessThan } from "./memtable_search.ts";

/**
 * Per-entry memory beyond the key and value bytes, counted against the
 * memtable's byte budget so that the budget is real memory: the node record
 * (10 words, 4/3 links on average, the key again as words), the hash
 * index's slots (node and hash), the slack of arrays that grow by
 * doubling, and the batch framing around the bytes in the write path's
 * buffers. Measured with `bench/micro/memtable_memory.ts` (heap +
 * external memory after a forced GC): 104-174 bytes per entry for 20k-100k db_bench entries, depending on
 * where the last doubling fell, about 147 on average (bench/README.md);
 * 113-163 with the hash beside the node in the index's slots (2026-12-01).
 * The skip list of JS objects it replaced measured 273-288.
 */
const ENTRY_OVERHEAD = 150;
/** 32-bit words the node pool starts with; it doubles when full. */
const INITIAL_WORDS = 4096;

const EMPTY = new Uint8Array(0);

/** A skip list memtable. */
export class Memtable {
  /** The node pool: records as 32-bit words, with a float64 view over them. */
  #u32: Uint32Array;
  #f64: Float64Array;
  /** First free word of the pool. */
  #top: number;
  /** The buffers holding key and value bytes, numbered for the nodes. */
  #buffers = new BufferTable();
  /** The key being sought, as words (see the record layout). */
  #probe = new Uint32Array(64);
  /**
   * Where the key in hand is as words, for the index's key checks: #probe
   * (a read) or the new node's own record (an insert).
   */
  #hand: Uint32Array = this.#probe;
  #handAt = 0;
  /** The newest node of each key, where point reads start (memtable_index.ts). */
  #index: NewestIndex;
  #count = 0;
  #height = 1;
  /**
   * The splice: at each level, the last node before the key being inserted
   * and the node after it (0: none). Within addMany it is kept exact
   * between inserts: `#next[i]` is `#prev[i]`'s level-i link.
   */
  #prev = new Uint32Array(MAX_HEIGHT);
  #next = new Uint32Array(MAX_HEIGHT);
  #rand = 0x9e3779b9;
  #bytes = 0;
  /**
   * The range tombstones of the writes applied here, in seqno order: kept
   * beside the skip list, never in it (engine/range_tombstones.ts). A
   * flush moves them into the manifest.
   */
  readonly rangeDels: RangeTombstone[] = [];
  /** Smallest and largest seqno applied (0 when empty). */
  minSeq = 0;
  maxSeq = 0;

  constructor() {
    const pool = new ArrayBuffer(INITIAL_WORDS * 4);
    this.#u32 = new Uint32Array(pool);
    this.#f64 = new Float64Array(pool);
    // The head (node 0): every level, links all 0 (none), an empty key.
    this.#f64[SEQ] = MAX_SEQ;
    this.#u32[META] = MAX_HEIGHT << 16;
    this.#top = (LINKS + MAX_HEIGHT + 1) & ~1;
    this.#index = new NewestIndex({
      isKey: (n, klen) => this.#sameKey(n, klen),
      seqOf: (n) => this.#f64[(n >>> 1) + SEQ],
    });
  }

  /** Approximate memory used, in bytes. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Number of entries (versions). */
  get count(): number {
    return this.#count;
  }

  #randomHeight(): number {
    // xorshift32; a branching factor of 4 like LevelDB.
    let h = 1;
    let x = this.#rand;
    for (;;) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      if (h >= MAX_HEIGHT || (x & 3) !== 0) break;
      h++;
    }
    this.#rand = x >>> 0 || 1;
    return h;
  }

  /** Writes `key` as words into #probe (grown if needed); returns it. */
  #setProbe(key: Uint8Array): Uint32Array {
    const words = (key.length + 3) >>> 2;
    if (words > this.#probe.length) {
      this.#probe = new Uint32Array(Math.max(words, 2 * this.#probe.length));
    }
    bigEndianWords(key, this.#probe);
    return this.#probe;
  }

  /** Node n's key equals the key in hand (`klen` bytes; see #hand). */
  #sameKey(n: number, klen: number): boolean {
    const u = this.#u32;
    if (u[n + KLEN] !== klen) return false;
    const k = keyAt(this.#u32, n);
    const p = this.#hand;
    const at = this.#handAt;
    for (let i = 0, words = (klen + 3) >>> 2; i < words; i++) {
      if (u[k + i] !== p[at + i]) return false;
    }
    return true;
  }

  /**
   * Inserts one entry. (key, seq) pairs are unique: seqnos never repeat for
   * a key. `_skey` (the key as a binary string) is accepted for callers of
   * the former string-keyed list and not needed.
   */
  add(e: Entry, _skey?: string): void {
    if (e.kind === KIND_RANGE_DELETE) return this.#addRangeDel(e);
    const at = this.#place(e);
    const u = this.#u32;
    findLessThan(
      u,
      this.#f64,
      this.#height,
      u,
      at,
      e.key.length,
      e.seq,
      this.#prev,
    );
    this.#link(e, at);
  }

  /**
   * Inserts many entries (a commit group): in internal order
   * (memtable_order.ts), each found from the previous one's splice, which
   * takes a fraction of the comparisons of independent searches from the
   * head.
   */
  addMany(entries: readonly Entry[]): void {
    let ranges = false;
    for (let i = 0; i < entries.length; i++) {
      if (entries[i].kind === KIND_RANGE_DELETE) ranges = true;
    }
    if (entries.length < 8 || ranges) {
      for (let i = 0; i < entries.length; i++) this.add(entries[i]);
      return;
    }
    const order = internalOrder(entries);
    // The splice before the first key: the head at every level.
    const u = this.#u32;
    for (let i = 0; i < this.#height; i++) {
      this.#prev[i] = 0;
      this.#next[i] = u[LINKS + i];
    }
    for (let i = 0; i < order.length; i++) {
      const e = entries[order[i]];
      const at = this.#place(e);
      findFromSplice(
        this.#u32,
        this.#f64,
        this.#height,
        this.#prev,
        this.#next,
        at,
        e.key.length,
        e.seq,
      );
      this.#link(e, at);
    }
  }

  /** Keeps a range delete beside the list; it counts as one entry. */
  #addRangeDel(e: Entry): void {
    const t = tombstoneFromEntry(e);
    this.rangeDels.push(t);
    this.#count++;
    this.#bytes += t.start.length + t.end.length + ENTRY_OVERHEAD;
    if (this.minSeq === 0 || e.seq < this.minSeq) this.minSeq = e.seq;
    if (e.seq > this.maxSeq) this.maxSeq = e.seq;
  }

  /**
   * Makes an unlinked node for `e` at #top with a random height and its
   * key as words (compared in place by the search that follows: no copy
   * through #probe), raising the list's height if needed; returns the word
   * offset of its key. Its other fields are set by #link.
   */
  #place(e: Entry): number {
    const height = this.#randomHeight();
    if (height > this.#height) {
      // New levels: the splice there is the head and nothing after it.
      for (let i = this.#height; i < height; i++) {
        this.#prev[i] = 0;
        this.#next[i] = 0;
      }
      this.#height = height;
    }
    const key = e.key;
    const n = this.#top;
    const at = n + LINKS + height;
    const end = at + ((key.length + 3) >>> 2);
    if (end > this.#u32.length) {
      let size = this.#u32.length * 2;
      while (size < end) size *= 2;
      const pool = new ArrayBuffer(size * 4);
      const u32 = new Uint32Array(pool);
      u32.set(this.#u32.subarray(0, this.#top));
      this.#u32 = u32;
      this.#f64 = new Float64Array(pool);
    }
    const u = this.#u32;
    u[n + META] = height << 16;
    bigEndianWords(key, u, at);
    return at;
  }

  /**
   * Links the node #place made for `e` (key words at `at`) after the
   * predecessors in #prev, leaving the splice around it for a following,
   * larger insert.
   */
  #link(e: Entry, at: number): void {
    const prev = this.#prev;
    const next = this.#next;
    const u = this.#u32;
    const n = this.#top;
    const height = u[n + META] >>> 16;
    const key = e.key;
    this.#top = (at + ((key.length + 3) >>> 2) + 1) & ~1;

    let value = e.value;
    if (value.length > 0 && value.buffer !== key.buffer) {
      // Only callers outside the write path hand a value in another buffer
      // than its key: copy both into one, so a node names one buffer.
      const both = new Uint8Array(key.length + value.length);
      both.set(key);
      both.set(value, key.length);
      u[n + BUF] = this.#buffers.numberOf(both.buffer);
      u[n + KOFF] = 0;
      u[n + VOFF] = key.length;
    } else {
      u[n + BUF] = this.#buffers.numberOf(key.buffer);
      u[n + KOFF] = key.byteOffset;
      u[n + VOFF] = value.length > 0 ? value.byteOffset : 0;
      if (value.length === 0) value = EMPTY;
    }
    this.#f64[(n >>> 1) + SEQ] = e.seq;
    this.#f64[(n >>> 1) + EXPIRES] = e.expiresAt;
    u[n + KLEN] = key.length;
    u[n + VLEN] = value.length;
    u[n + META] = e.kind | (e.encoding << 8) | (height << 16);
    for (let i = 0; i < height; i++) {
      const p = prev[i] + LINKS + i;
      const nx = u[p];
      u[n + LINKS + i] = nx;
      u[p] = n;
      prev[i] = n;
      next[i] = nx;
    }
    this.#hand = u;
    this.#handAt = at;
    this.#index.offer(n, hashWords(u, at, key.length), key.length);

    this.#count++;
    this.#bytes += key.length + value.length + ENTRY_OVERHEAD;
    if (this.minSeq === 0 || e.seq < this.minSeq) this.minSeq = e.seq;
    if (e.seq > this.maxSeq) this.maxSeq = e.seq;
  }

  /**
   * The newest entry for `key` with seq <= `snapshotSeq`, tombstones
   * included, or undefined. `_skey` (the key as a binary string, which the
   * former string-keyed list used) is accepted and not needed.
   */
  get(
    key: Uint8Array,
    snapshotSeq: number,
    _skey?: string,
  ): Entry | undefined {
    // A key's versions are adjacent, newest first, so walk down from the
    // newest to the first one the snapshot may see.
    const probe = this.#setProbe(key);
    this.#hand = probe;
    this.#handAt = 0;
    const h = hashWords(probe, 0, key.length);
    let n = this.#index.newest(h, key.length);
    while (n !== 0 && this.#f64[(n >>> 1) + SEQ] > snapshotSeq) {
      n = this.#u32[n + LINKS];
      if (n !== 0 && !this.#sameKey(n, key.length)) return undefined;
    }
    return n !== 0 ? this.#toEntry(n, key) : undefined;
  }

  /** Node n as an Entry (fresh views); `key` may be supplied by the caller. */
  #toEntry(n: number, key?: Uint8Array): Entry {
    const u = this.#u32;
    const b = this.#buffers.buffers[u[n + BUF]];
    const vlen = u[n + VLEN];
    const voff = u[n + VOFF];
    const meta = u[n + META];
    return {
      // new Uint8Array(buffer, ...) costs less than subarray() here.
      key: key ?? new Uint8Array(b, u[n + KOFF], u[n + KLEN]),
      seq: this.#f64[(n >>> 1) + SEQ],
      kind: meta & 0xff,
      encoding: (meta >>> 8) & 0xff,
      expiresAt: this.#f64[(n >>> 1) + EXPIRES],
      value: vlen > 0 ? new Uint8Array(b, voff, vlen) : EMPTY,
    };
  }

  /**
   * This memtable's sorted contents for a flush (range tombstones, kept
   * beside the list, are not in it). The list is already in internal order,
   * so the flush needs neither to decode the WAL nor to sort; the main
   * thread pays one copy of the memtable's buffers here (about 1 ms for an
   * 8 MiB memtable: bench/micro/flush_handoff.ts, bench/README.md).
   */
  image(): MemtableImage {
    return {
      pool: this.#u32.buffer.slice(0, this.#top * 4) as ArrayBuffer,
      bufs: this.#buffers.buffers.map((b) => b.slice(0) as ArrayBuffer),
      height: this.#height,
    };
  }

  /**
   * A cursor over a memtable {@link image}, in internal order. The
   * memtable behind it has no hash index, so it stays private: only
   * iteration is offered.
   */
  static imageIterator(img: MemtableImage): EntryIterator {
    const m = new Memtable();
    m.#u32 = new Uint32Array(img.pool);
    m.#f64 = new Float64Array(img.pool);
    m.#top = img.pool.byteLength >>> 2;
    for (const b of img.bufs) m.#buffers.numberOf(b);
    m.#height = img.height;
    return m.iterator();
  }

  /** A cursor over the memtable; stays valid while entries are added. */
  iterator(): EntryIterator {
    return new MemtableIterator(this);
  }

  /** @internal the entry at node n, for the iterator. */
  _entry(n: number): Entry {
    return this.#toEntry(n);
  }
  /** @internal the node after n at level 0 (0: none). */
  _next(n: number): number {
    return this.#u32[n + LINKS];
  }
  /** @internal the first node >= (key, seq), 0 if none. */
  _seek(key: Uint8Array, seq: number): number {
    const probe = this.#setProbe(key);
    const u = this.#u32;
    const f = this.#f64;
    return u[
      findLessThan(u, f, this.#height, probe, 0, key.length, seq) + LINKS
    ];
  }
  /** @internal */
  _first(): number {
    return this.#u32[LINKS];
  }
  /** @internal */
  _last(): number {
    return findLast(this.#u32, this.#height);
  }
  /** @internal the last node < (key, seq), 0 if none. */
  _before(key: Uint8Array, seq: number): number {
    const probe = this.#setProbe(key);
    return findLessThan(
      this.#u32,
      this.#f64,
      this.#height,
      probe,
      0,
      key.length,
      seq,
    );
  }
  /** @internal the last node before node n, 0 if none. */
  _prev(n: number): number {
    const u = this.#u32;
    const f = this.#f64;
    return findLessThan(
      u,
      f,
      this.#height,
      u,
      keyAt(u, n),
      u[n + KLEN],
      f[(n >>> 1) + SEQ],
    );
  }
}
