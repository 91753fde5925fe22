/**
 * Open table readers, bounded in number (LRU). A reader in use by an
 * iterator is pinned and never closed under it.
 *
 * @module
 */
import type { BlockCache } from "./cache.ts";
import type { FileSystem } from "./fs.ts";
import type { TableStats } from "./sstable/reader.ts";
import { newTableStats, TableReader } from "./sstable/reader.ts";
import { tableFileName } from "./sstable/writer.ts";

interface Slot {
  reader: TableReader;
  pins: number;
}

/** An LRU of open TableReaders keyed by file number. */
export class TableCache {
  #open = new Map<number, Slot>();
  opens = 0;
  /** Bloom and block-read counters summed over every reader. */
  readonly stats: TableStats = newTableStats();

  constructor(
    readonly fs: FileSystem,
    readonly dir: string,
    readonly blockCache: BlockCache,
    readonly maxOpen: number,
  ) {}

  /** Number of open table files. */
  get size(): number {
    return this.#open.size;
  }

  /** The reader for a table, opening it (and closing the least recent idle one) if needed. */
  get(fileNumber: number): TableReader {
    let slot = this.#open.get(fileNumber);
    if (slot) {
      // Move to the back: Map iteration order is the LRU order.
      this.#open.delete(fileNumber);
      this.#open.set(fileNumber, slot);
      return slot.reader;
    }
    const reader = TableReader.open(
      this.fs,
      tableFileName(this.dir, fileNumber),
      fileNumber,
      this.blockCache,
      { stats: this.stats },
    );
    this.opens++;
    slot = { reader, pins: 0 };
    this.#open.set(fileNumber, slot);
    this.#trim();
    return reader;
  }

  /** Like get(), but keeps the reader open until `unpin`. */
  pin(fileNumber: number): TableReader {
    const r = this.get(fileNumber);
    this.#open.get(fileNumber)!.pins++;
    return r;
  }

  unpin(fileNumber: number): void {
    const slot = this.#open.get(fileNumber);
    if (slot && slot.pins > 0) slot.pins--;
    this.#trim();
  }

  #trim(): void {
    if (this.#open.size <= this.maxOpen) return;
    for (const [n, slot] of this.#open) {
      if (this.#open.size <= this.maxOpen) break;
      if (slot.pins > 0) continue;
      slot.reader.close();
      this.#open.delete(n);
    }
  }

  /** Closes a table (its file is being deleted) and drops its cached blocks. */
  evict(fileNumber: number): void {
    const slot = this.#open.get(fileNumber);
    if (slot) {
      slot.reader.close();
      this.#open.delete(fileNumber);
    }
    this.blockCache.evictFile(fileNumber);
  }

  closeAll(): void {
    for (const slot of this.#open.values()) slot.reader.close();
    this.#open.clear();
  }
}
