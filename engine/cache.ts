/**
 * The block cache: a byte-bounded LRU of verified table blocks, keyed by
 * (file number, block offset). Shared by every open table on one thread.
 *
 * Blocks in the cache have already passed their CRC check, so a hit is
 * returned without re-verifying. Table files are immutable and file numbers
 * are never reused, so an entry can only go stale when its file is deleted;
 * whoever deletes a table calls {@link BlockCache.evictFile}.
 *
 * Memory held elsewhere can be charged to the cache with {@link
 * BlockCache.reserve}: open tables' index and filter data are (engine/
 * table_cache.ts), so blocks and table metadata share one capacity.
 *
 * Lookup is a Map per file (so evictFile touches only that file's blocks);
 * recency is an intrusive doubly linked list, so a hit moves one node
 * without any Map churn.
 *
 * @module
 */

interface Node {
  file: number;
  offset: number;
  block: Uint8Array;
  prev: Node;
  next: Node;
}

/** Counters of a {@link BlockCache}. */
export interface CacheStats {
  hits: number;
  misses: number;
  evictions: number;
  /** Blocks currently cached. */
  blocks: number;
  /** Bytes currently charged (sum of cached block lengths). */
  bytes: number;
  /** Bytes reserved by memory held outside the cache (table metadata). */
  reserved: number;
  capacity: number;
}

/**
 * Byte-bounded LRU of table blocks. A capacity of 0 disables caching (every
 * lookup is a miss, inserts are dropped). A block larger than the whole
 * capacity is not cached, since it would only flush everything else.
 */
export class BlockCache {
  /** Capacity in bytes. */
  readonly capacity: number;
  /** Lookups that found a block. */
  hits = 0;
  /** Lookups that found nothing. */
  misses = 0;
  /** Blocks dropped to make room (not counting evictFile or clear). */
  evictions = 0;
  #bytes = 0;
  #reserved = 0;
  #count = 0;
  #files = new Map<number, Map<number, Node>>();
  // Sentinel of the circular list: head.next is the most recently used node,
  // head.prev the least recently used.
  #head: Node;

  constructor(capacityBytes: number) {
    if (!(capacityBytes >= 0)) {
      throw new RangeError(
        `block cache capacity must be >= 0, got ${capacityBytes}`,
      );
    }
    this.capacity = capacityBytes;
    const head = {
      file: -1,
      offset: -1,
      block: new Uint8Array(0),
    } as unknown as Node;
    head.prev = head;
    head.next = head;
    this.#head = head;
  }

  /** Bytes currently charged. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Bytes reserved through {@link BlockCache.reserve}. */
  get reserved(): number {
    return this.#reserved;
  }

  /**
   * Charges `bytes` held outside the cache against its capacity, evicting
   * blocks until blocks and reservations fit. Reservations are never
   * refused: whoever holds them bounds them (and gives them back with
   * {@link BlockCache.release}).
   */
  reserve(bytes: number): void {
    this.#reserved += bytes;
    this.#evictToFit();
  }

  /** Gives back bytes charged with {@link BlockCache.reserve}. */
  release(bytes: number): void {
    this.#reserved = Math.max(0, this.#reserved - bytes);
  }

  /** Number of cached blocks. */
  get size(): number {
    return this.#count;
  }

  /** The cached block, marking it most recently used; undefined on a miss. */
  get(file: number, offset: number): Uint8Array | undefined {
    const node = this.#files.get(file)?.get(offset);
    if (node === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    const head = this.#head;
    if (head.next !== node) {
      node.prev.next = node.next;
      node.next.prev = node.prev;
      node.next = head.next;
      node.prev = head;
      head.next.prev = node;
      head.next = node;
    }
    return node.block;
  }

  /**
   * Caches a verified block as most recently used, evicting the least
   * recently used blocks until the total fits. The cache keeps a reference:
   * callers must not mutate `block` afterwards.
   */
  insert(file: number, offset: number, block: Uint8Array): void {
    const charge = block.length;
    if (charge > this.capacity - this.#reserved || this.capacity === 0) return;
    let perFile = this.#files.get(file);
    if (perFile === undefined) {
      perFile = new Map();
      this.#files.set(file, perFile);
    } else {
      const old = perFile.get(offset);
      if (old !== undefined) {
        this.#unlink(old);
        perFile.delete(offset);
      }
    }
    const head = this.#head;
    const node: Node = {
      file,
      offset,
      block,
      prev: head,
      next: head.next,
    };
    head.next.prev = node;
    head.next = node;
    perFile.set(offset, node);
    this.#bytes += charge;
    this.#count++;
    this.#evictToFit();
  }

  /** Drops least recently used blocks until blocks + reservations fit. */
  #evictToFit(): void {
    const head = this.#head;
    while (this.#bytes + this.#reserved > this.capacity && head.prev !== head) {
      const lru = head.prev;
      this.#remove(lru, this.#files.get(lru.file)!);
      this.evictions++;
    }
  }

  /** Drops every block of one file (call when the table file is deleted). */
  evictFile(file: number): void {
    const perFile = this.#files.get(file);
    if (perFile === undefined) return;
    for (const node of perFile.values()) {
      this.#unlink(node);
    }
    this.#files.delete(file);
  }

  /** Drops every block. Counters are kept. */
  clear(): void {
    this.#files.clear();
    this.#head.next = this.#head;
    this.#head.prev = this.#head;
    this.#bytes = 0;
    this.#count = 0;
  }

  /** A snapshot of the counters. */
  stats(): CacheStats {
    return {
      hits: this.hits,
      misses: this.misses,
      evictions: this.evictions,
      blocks: this.#count,
      bytes: this.#bytes,
      reserved: this.#reserved,
      capacity: this.capacity,
    };
  }

  #unlink(node: Node): void {
    node.prev.next = node.next;
    node.next.prev = node.prev;
    this.#bytes -= node.block.length;
    this.#count--;
  }

  #remove(node: Node, perFile: Map<number, Node>): void {
    this.#unlink(node);
    perFile.delete(node.offset);
    if (perFile.size === 0) this.#files.delete(node.file);
  }
}
