/**
 * The memtable's hash index: for each key, the node of its newest version.
 * A point read starts there instead of walking the skip list from the
 * head, which would touch dozens of scattered nodes (memtable.ts).
 *
 * It lives apart from the skip list because it is a different structure
 * with its own invariants (open addressing, linear probing, at most half
 * full, doubled when it gets there) that a test can check alone. It keeps
 * nothing but node numbers (0 marks an empty slot: node 0 is the skip
 * list's head and is never indexed), so an entry costs one 32-bit slot at
 * least twice over; hashes, keys and seqnos stay in the node records. The
 * hash is read from the node pool directly (every probe compares it), the
 * key and seqno through {@link IndexedNodes} (only when hashes match).
 *
 * @module
 */

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

/** Slots a new index starts with (a power of two). */
const INITIAL_SLOTS = 1024;

/** Key -> newest node, by open addressing over node numbers. */
export class NewestIndex {
  #slots = new Uint32Array(INITIAL_SLOTS);
  #used = 0;
  #nodes: IndexedNodes;
  #hashAt: number;

  /**
   * `hashAt`: where in a node's record its key's hash is (the pool holds
   * node n's hash at `pool[n + hashAt]`); every method that reads hashes
   * takes the pool, which the memtable reallocates as it grows.
   */
  constructor(nodes: IndexedNodes, hashAt: number) {
    this.#nodes = nodes;
    this.#hashAt = hashAt;
  }

  /** Number of keys indexed. */
  get size(): number {
    return this.#used;
  }

  /** Number of slots (a power of two, at least twice {@link size}). */
  get capacity(): number {
    return this.#slots.length;
  }

  /**
   * Records node n, whose key (the key in hand, `klen` bytes) hashes to
   * `h` (unsigned, also at `pool[n + hashAt]`), unless its key already
   * maps to a newer node.
   */
  offer(pool: Uint32Array, n: number, h: number, klen: number): void {
    const slots = this.#slots;
    const at = this.#hashAt;
    const mask = slots.length - 1;
    for (let i = h & mask;; i = (i + 1) & mask) {
      const m = slots[i];
      if (m === 0) {
        slots[i] = n;
        if (++this.#used * 2 > slots.length) this.#grow(pool);
        return;
      }
      if (pool[m + at] === h && this.#nodes.isKey(m, klen)) {
        if (this.#nodes.seqOf(m) < this.#nodes.seqOf(n)) slots[i] = n;
        return;
      }
    }
  }

  /**
   * The newest node of the key in hand (`klen` bytes, hashing to `h`,
   * unsigned), or 0 when it has none. `pool` as for {@link offer}.
   */
  newest(pool: Uint32Array, h: number, klen: number): number {
    const slots = this.#slots;
    const at = this.#hashAt;
    const mask = slots.length - 1;
    for (let i = h & mask;; i = (i + 1) & mask) {
      const m = slots[i];
      if (m === 0) return 0;
      if (pool[m + at] === h && this.#nodes.isKey(m, klen)) return m;
    }
  }

  /** Doubles the slots and places every node again by its hash. */
  #grow(pool: Uint32Array): void {
    const slots = new Uint32Array(this.#slots.length * 2);
    const at = this.#hashAt;
    const mask = slots.length - 1;
    for (const n of this.#slots) {
      if (n === 0) continue;
      let i = pool[n + at] & mask;
      while (slots[i] !== 0) i = (i + 1) & mask;
      slots[i] = n;
    }
    this.#slots = slots;
  }
}
