/**
 * Open table readers, bounded in number (LRU). A reader in use by an
 * iterator is pinned and never closed under it.
 *
 * With `readMode` "mmap" every table is opened as a memory map (its data
 * blocks bypass the block cache); "pread" reads blocks with positional
 * reads through the block cache. Closing a reader (LRU trim, eviction when
 * its file is deleted, closeAll) unmaps it, which is safe at any time
 * because no view into a map ever leaves the reader (sstable/reader.ts).
 *
 * With a finite `maxMetaBytes` (a memory budget is set), each open reader's
 * index and filter bytes are reserved in the block cache (blocks and table
 * metadata share its capacity), and when they pass `maxMetaBytes` the least
 * recently used idle tables are closed, as when more than `maxOpen` are
 * open: the metadata of open tables stays bounded whatever the size of the
 * dataset (pinned tables excepted).
 *
 * @module
 */
import type { BlockCache } from "./cache.ts";
import type { FileSystem } from "./fs.ts";
import type { ReadMode } from "./types.ts";
import type { TableStats } from "./sstable/reader.ts";
import { newTableStats, TableReader } from "./sstable/reader.ts";
import { tablePath } from "./filename.ts";

interface Slot {
  reader: TableReader;
  pins: number;
  /** Clock tick of the last use; the smallest idle one is closed first. */
  used: number;
}

/** An LRU of open TableReaders keyed by file number. */
export class TableCache {
  #open = new Map<number, Slot>();
  #tick = 0;
  opens = 0;
  /** Bloom and block-read counters summed over every reader. */
  readonly stats: TableStats = newTableStats();

  constructor(
    readonly fs: FileSystem,
    readonly dir: string,
    readonly blockCache: BlockCache,
    readonly maxOpen: number,
    readonly readMode: Exclude<ReadMode, "auto"> = "pread",
    readonly maxMetaBytes = Infinity,
  ) {}

  #metaBytes = 0;

  /** Bytes of index and filter data held by open readers. */
  get metaBytes(): number {
    return this.#metaBytes;
  }

  /** Number of open table files. */
  get size(): number {
    return this.#open.size;
  }

  /** The reader for a table, opening it (and closing the least recent idle one) if needed. */
  get(fileNumber: number): TableReader {
    return this.#acquire(fileNumber, 0);
  }

  /**
   * Finds or opens a table and adds `pins` before trimming, so the table
   * just asked for is never the one closed to make room.
   */
  #acquire(fileNumber: number, pins: number): TableReader {
    let slot = this.#open.get(fileNumber);
    if (slot) {
      // A tick instead of reordering the Map keeps the hit path cheap.
      slot.used = ++this.#tick;
      slot.pins += pins;
      return slot.reader;
    }
    const reader = TableReader.open(
      this.fs,
      tablePath(this.dir, fileNumber),
      fileNumber,
      this.blockCache,
      { stats: this.stats, map: this.readMode === "mmap" },
    );
    this.opens++;
    this.#metaBytes += reader.memoryBytes;
    if (this.#charged()) this.blockCache.reserve(reader.memoryBytes);
    slot = { reader, pins, used: ++this.#tick };
    this.#open.set(fileNumber, slot);
    this.#trim(fileNumber);
    return reader;
  }

  /** Like get(), but keeps the reader open until `unpin`. */
  pin(fileNumber: number): TableReader {
    return this.#acquire(fileNumber, 1);
  }

  unpin(fileNumber: number): void {
    const slot = this.#open.get(fileNumber);
    if (slot && slot.pins > 0) slot.pins--;
    this.#trim();
  }

  /**
   * Closes idle tables beyond maxOpen or maxMetaBytes, least recently used
   * first, never `keep`.
   */
  #trim(keep?: number): void {
    while (
      this.#open.size > this.maxOpen || this.#metaBytes > this.maxMetaBytes
    ) {
      let victim: number | undefined;
      let oldest = Infinity;
      for (const [n, slot] of this.#open) {
        if (slot.pins === 0 && n !== keep && slot.used < oldest) {
          oldest = slot.used;
          victim = n;
        }
      }
      if (victim === undefined) return; // everything is pinned by scans
      this.#close(victim, this.#open.get(victim)!);
    }
  }

  /** Whether metadata is charged to the block cache (a finite bound). */
  #charged(): boolean {
    return Number.isFinite(this.maxMetaBytes);
  }

  #close(fileNumber: number, slot: Slot): void {
    slot.reader.close();
    this.#open.delete(fileNumber);
    this.#metaBytes -= slot.reader.memoryBytes;
    if (this.#charged()) this.blockCache.release(slot.reader.memoryBytes);
  }

  /** Closes a table (its file is being deleted) and drops its cached blocks. */
  evict(fileNumber: number): void {
    const slot = this.#open.get(fileNumber);
    if (slot) this.#close(fileNumber, slot);
    this.blockCache.evictFile(fileNumber);
  }

  closeAll(): void {
    for (const [n, slot] of [...this.#open]) this.#close(n, slot);
  }
}
