/**
 * The memtable's hash index: for each key, the node of its newest version.
 * A point read starts there instead of walking the skip list from the
 * head, which would touch dozens of scattered nodes (memtable.ts).
 *
 * It lives apart from the skip list because it is a different structure
 * with its own invariants (open addressing, linear probing, at most half
 * full, doubled when it gets there) that a test can check alone. A slot is
 * two 32-bit words, a node number (0 marks an empty slot: node 0 is the
 * skip list's head and is never indexed) and its key's hash, so an entry
 * costs two words at least twice over. The hash sits in the slot, not in
 * the node record, so that probing past other keys and doubling read only
 * the slots, never the scattered nodes (measured: reading the hash from
 * the node cost an insert a cache miss per occupied slot passed, and each
 * doubling one per entry). Keys and seqnos stay in the node records, read
 * through {@link IndexedNodes} only when hashes match.
 *
 * @module
 */
import { fmix32 } from "./hash.ts";

/** What the index asks of the nodes it holds when their hashes match. */
export interface IndexedNodes {
  /**
   * Whether node n's key is the key in hand (the one being added or
   * sought), which is `klen` bytes long.
   */
  isKey(n: number, klen: number): boolean;
  /** Node n's seqno. */
  seqOf(n: number): number;
}

/**
 * The hash the index places a key by, over the key as the memtable holds
 * it (big-endian words from `at`, zero-padded; `klen` bytes), so that it
 * costs a multiply per word rather than per byte. The final mix spreads
 * every word's bits into the low bits, which pick the slot.
 */
export function hashWords(
  words: Uint32Array,
  at: number,
  klen: number,
): number {
  let h = 0x811c9dc5 ^ klen;
  for (let i = at, end = at + ((klen + 3) >>> 2); i < end; i++) {
    h = Math.imul(h ^ words[i], 0x9e3779b1);
    h = (h << 13) | (h >>> 19);
  }
  return fmix32(h);
}

/** Slots a new index starts with (a power of two). */
const INITIAL_SLOTS = 1024;

/** Key -> newest node, by open addressing over (node, hash) slots. */
export class NewestIndex {
  /** Slot i is words 2i (node) and 2i + 1 (hash). */
  #slots = new Uint32Array(2 * INITIAL_SLOTS);
  #used = 0;
  #nodes: IndexedNodes;

  constructor(nodes: IndexedNodes) {
    this.#nodes = nodes;
  }

  /** Number of keys indexed. */
  get size(): number {
    return this.#used;
  }

  /** Number of slots (a power of two, at least twice {@link size}). */
  get capacity(): number {
    return this.#slots.length >>> 1;
  }

  /**
   * Records node n, whose key (the key in hand, `klen` bytes) hashes to
   * `h` (unsigned), unless its key already maps to a newer node.
   */
  offer(n: number, h: number, klen: number): void {
    const slots = this.#slots;
    const mask = (slots.length >>> 1) - 1;
    for (let i = h & mask;; i = (i + 1) & mask) {
      const m = slots[2 * i];
      if (m === 0) {
        slots[2 * i] = n;
        slots[2 * i + 1] = h;
        if (++this.#used * 2 > mask + 1) this.#grow();
        return;
      }
      if (slots[2 * i + 1] === h && this.#nodes.isKey(m, klen)) {
        if (this.#nodes.seqOf(m) < this.#nodes.seqOf(n)) slots[2 * i] = n;
        return;
      }
    }
  }

  /**
   * The newest node of the key in hand (`klen` bytes, hashing to `h`,
   * unsigned), or 0 when it has none.
   */
  newest(h: number, klen: number): number {
    const slots = this.#slots;
    const mask = (slots.length >>> 1) - 1;
    for (let i = h & mask;; i = (i + 1) & mask) {
      const m = slots[2 * i];
      if (m === 0) return 0;
      if (slots[2 * i + 1] === h && this.#nodes.isKey(m, klen)) return m;
    }
  }

  /** Doubles the slots and places every node again by its hash. */
  #grow(): void {
    const old = this.#slots;
    const slots = new Uint32Array(old.length * 2);
    const mask = (slots.length >>> 1) - 1;
    for (let j = 0; j < old.length; j += 2) {
      const n = old[j];
      if (n === 0) continue;
      const h = old[j + 1];
      let i = h & mask;
      while (slots[2 * i] !== 0) i = (i + 1) & mask;
      slots[2 * i] = n;
      slots[2 * i + 1] = h;
    }
    this.#slots = slots;
  }
}
