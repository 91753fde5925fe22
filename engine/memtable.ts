/**
 * The memtable: a skip list of entries in internal order (user key
 * ascending, seqno descending), bounded by an approximate byte size.
 *
 * Only the main thread touches a memtable. Entries are applied after they
 * are durable, in seqno order, and never removed: a frozen memtable stays
 * readable until its table is installed.
 *
 * @module
 */
import { binaryString } from "./coding.ts";
import type { Entry, EntryIterator } from "./entry.ts";
import { MAX_SEQ } from "./entry.ts";

const MAX_HEIGHT = 12;
/**
 * Per-entry memory beyond the key and value bytes, counted against the
 * memtable's byte budget so that the budget is real memory: node object,
 * next-pointer array, hash-index slot, string key header, batch buffer
 * framing (measured with a heap snapshot diff: ~300 bytes on V8 15).
 */
const ENTRY_OVERHEAD = 300;

/**
 * A skip-list node. Key and value bytes stay in the write's batch buffer
 * (`buf` at the given offsets): views are made only when an entry is read,
 * since two retained Uint8Array views would cost more than the data.
 */
interface Node {
  /** The key as a binary string: compared natively, see binaryString(). */
  skey: string;
  seq: number;
  kind: number;
  encoding: number;
  expiresAt: number;
  buf: ArrayBufferLike;
  koff: number;
  klen: number;
  voff: number;
  vlen: number;
  next: (Node | null)[];
}

function makeNode(e: Entry, skey: string, height: number): Node {
  return {
    skey,
    seq: e.seq,
    kind: e.kind,
    encoding: e.encoding,
    expiresAt: e.expiresAt,
    buf: e.key.buffer,
    koff: e.key.byteOffset,
    klen: e.key.length,
    // A value in another buffer than its key (only possible for callers
    // outside the write path) is kept by copying it next to nothing else.
    voff: e.value.buffer === e.key.buffer ? e.value.byteOffset : -1,
    vlen: e.value.length,
    next: new Array<Node | null>(height).fill(null),
  };
}

const EMPTY = new Uint8Array(0);

/** The node as an Entry (fresh views); `key` may be supplied by the caller. */
function toEntry(
  n: Node,
  key?: Uint8Array,
  values?: WeakMap<Node, Uint8Array>,
): Entry {
  let value: Uint8Array = EMPTY;
  if (n.vlen > 0) {
    value = n.voff >= 0
      ? new Uint8Array(n.buf, n.voff, n.vlen)
      : values!.get(n)!;
  }
  return {
    key: key ?? new Uint8Array(n.buf, n.koff, n.klen),
    seq: n.seq,
    kind: n.kind,
    encoding: n.encoding,
    expiresAt: n.expiresAt,
    value,
  };
}

/** True when node n sorts before (skey, seq) in internal order. */
function before(n: Node, skey: string, seq: number): boolean {
  return n.skey < skey || (n.skey === skey && n.seq > seq);
}

/** A skip list memtable. */
export class Memtable {
  #head: Node;
  /**
   * Newest node of each key. Point reads start here instead of walking the
   * skip list: a hash probe touches one node, a skip-list search dozens of
   * scattered ones (cache misses dominate at this size).
   */
  #newest = new Map<string, Node>();
  /** Values that did not share their key's buffer (rare; see makeNode). */
  #values = new WeakMap<Node, Uint8Array>();
  #height = 1;
  /** Scratch for add(): the last node before the new one at each level. */
  #prev: Node[];
  #rand = 0x9e3779b9;
  #bytes = 0;
  #count = 0;
  /** Smallest and largest seqno applied (0 when empty). */
  minSeq = 0;
  maxSeq = 0;

  constructor() {
    this.#head = makeNode(
      {
        key: new Uint8Array(0),
        seq: MAX_SEQ,
        kind: 0,
        encoding: 0,
        expiresAt: 0,
        value: new Uint8Array(0),
      },
      "",
      MAX_HEIGHT,
    );
    this.#prev = new Array<Node>(MAX_HEIGHT).fill(this.#head);
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

  /**
   * The last node before (key, seq) at each level in `prev`, and returns the
   * first node >= (key, seq).
   */
  #findGreaterOrEqual(
    skey: string,
    seq: number,
    prev: Node[] | null,
  ): Node | null {
    let x = this.#head;
    for (let level = this.#height - 1; level >= 0; level--) {
      for (;;) {
        const next = x.next[level];
        if (next !== null && before(next, skey, seq)) x = next;
        else break;
      }
      if (prev) prev[level] = x;
    }
    return x.next[0];
  }

  /** The last node < (key, seq), or the head. */
  #findLessThan(skey: string, seq: number): Node {
    let x = this.#head;
    for (let level = this.#height - 1; level >= 0; level--) {
      for (;;) {
        const next = x.next[level];
        if (next !== null && before(next, skey, seq)) x = next;
        else break;
      }
    }
    return x;
  }

  #findLast(): Node {
    let x = this.#head;
    for (let level = this.#height - 1; level >= 0; level--) {
      for (;;) {
        const next = x.next[level];
        if (next !== null) x = next;
        else break;
      }
    }
    return x;
  }

  /**
   * Like #findGreaterOrEqual, but starts from `prev` as left by the previous
   * insert of a smaller (key, seq): a finger search. Each level begins at
   * the later of where the level above stopped and the previous insert's
   * predecessor there, so sorted inserts walk only the gap between keys.
   */
  #findFromFinger(skey: string, seq: number, prev: Node[]): void {
    const head = this.#head;
    let x = head;
    for (let level = this.#height - 1; level >= 0; level--) {
      const p = prev[level];
      if (x === head || (p !== head && before(x, p.skey, p.seq))) x = p;
      for (;;) {
        const next = x.next[level];
        if (next !== null && before(next, skey, seq)) x = next;
        else break;
      }
      prev[level] = x;
    }
  }

  /** Inserts one entry. (key, seq) pairs are unique: seqnos never repeat for a key. */
  add(e: Entry, skey: string = binaryString(e.key)): void {
    this.#findGreaterOrEqual(skey, e.seq, this.#prev);
    this.#link(e, skey);
  }

  /**
   * Inserts many entries (a commit group): sorted first, then each found
   * from the previous one's position, which takes a fraction of the
   * comparisons of independent searches from the head.
   */
  addMany(entries: readonly Entry[], skeys: readonly string[]): void {
    if (entries.length < 8) {
      for (let i = 0; i < entries.length; i++) this.add(entries[i], skeys[i]);
      return;
    }
    const order = Array.from(entries.keys());
    order.sort((a, b) => {
      const x = skeys[a];
      const y = skeys[b];
      return x < y ? -1 : x > y ? 1 : entries[b].seq - entries[a].seq;
    });
    const prev = this.#prev;
    prev.fill(this.#head);
    for (const i of order) {
      this.#findFromFinger(skeys[i], entries[i].seq, prev);
      this.#link(entries[i], skeys[i]);
    }
  }

  /** Links a new node after the predecessors in #prev. */
  #link(e: Entry, skey: string): void {
    const prev = this.#prev;
    const height = this.#randomHeight();
    if (height > this.#height) {
      for (let i = this.#height; i < height; i++) prev[i] = this.#head;
      this.#height = height;
    }
    const node = makeNode(e, skey, height);
    if (node.voff < 0 && node.vlen > 0) this.#values.set(node, e.value);
    for (let i = 0; i < height; i++) {
      node.next[i] = prev[i].next[i];
      prev[i].next[i] = node;
      prev[i] = node; // the finger for a following, larger insert
    }
    const newest = this.#newest.get(skey);
    if (newest === undefined || newest.seq < node.seq) {
      this.#newest.set(skey, node);
    }
    this.#bytes += 2 * e.key.length + e.value.length + ENTRY_OVERHEAD;
    this.#count++;
    if (this.minSeq === 0 || e.seq < this.minSeq) this.minSeq = e.seq;
    if (e.seq > this.maxSeq) this.maxSeq = e.seq;
  }

  /**
   * The newest entry for `key` with seq <= `snapshotSeq`, tombstones
   * included, or undefined. Pass `skey` (binaryString(key)) when the caller
   * already has it, to convert once for several memtables.
   */
  get(
    key: Uint8Array,
    snapshotSeq: number,
    skey: string = binaryString(key),
  ): Entry | undefined {
    // A key's versions are adjacent, newest first, so walk down from the
    // newest to the first one the snapshot may see.
    let n: Node | null | undefined = this.#newest.get(skey);
    while (n && n.seq > snapshotSeq) {
      n = n.next[0];
      if (n !== null && n.skey !== skey) return undefined;
    }
    return n ? toEntry(n, key, this.#values) : undefined;
  }

  /** @internal the entry at a node, for the iterator. */
  _entry(n: Node): Entry {
    return toEntry(n, undefined, this.#values);
  }

  /** A cursor over the memtable; stays valid while entries are added. */
  iterator(): EntryIterator {
    return new MemtableIterator(this);
  }

  /** @internal used by the iterator. */
  _seek(key: Uint8Array, seq: number): Node | null {
    return this.#findGreaterOrEqual(binaryString(key), seq, null);
  }
  /** @internal */
  _first(): Node | null {
    return this.#head.next[0];
  }
  /** @internal */
  _last(): Node | null {
    const n = this.#findLast();
    return n === this.#head ? null : n;
  }
  /** @internal */
  _before(skey: string, seq: number): Node | null {
    const n = this.#findLessThan(skey, seq);
    return n === this.#head ? null : n;
  }
}

class MemtableIterator implements EntryIterator {
  #node: Node | null = null;
  /** entry() of #node, built once per position (the merge heap asks often). */
  #entry: Entry | undefined;
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
    this.#node = this.mem._before(binaryString(key), MAX_SEQ);
  }
  valid(): boolean {
    return this.#node !== null;
  }
  next(): void {
    this.#node = this.#node!.next[0];
  }
  prev(): void {
    const n = this.#node!;
    this.#node = this.mem._before(n.skey, n.seq);
  }
  entry(): Entry {
    const n = this.#node!;
    if (this.#entry === undefined || this.#entryOf !== n) {
      this.#entry = this.mem._entry(n);
      this.#entryOf = n;
    }
    return this.#entry;
  }
  #entryOf: Node | undefined;
}
