/**
 * Reads a table file: footer -> index (decoded, kept in memory) -> bloom
 * filter (bytes kept) -> data blocks (through the BlockCache). Layout in
 * engine/FORMAT.md, "SSTable (NNNNNN.sst)".
 *
 * Every block read from disk has its CRC checked before use; blocks in the
 * cache were checked when they were read. Any failed check throws
 * CorruptionError naming the file, the offset and what failed. Reads are
 * synchronous positional reads, so a reader belongs to one thread and its
 * handle must not be shared with async reads.
 *
 * Data blocks may be compressed (engine/sstable/codec.ts, the codec is in
 * each block's trailer); the block cache holds them decompressed, so a hit
 * costs no inflating.
 *
 * A reader opened with `map: true` reads footer, filter, properties and
 * index as above, then maps the file (engine/mmap.ts) at the size it had
 * when opened, and serves raw data blocks from the map without the block
 * cache (the page cache does that job); compressed ones are inflated from
 * the map into the block cache. Each data block's CRC is checked
 * the first time the reader touches it (a bit per block remembers it: the
 * file is immutable). Nothing that leaves the reader views the map: get()
 * copies the value it returns and iterators decode a copy of the block, so
 * close() may unmap at once; every method checks `closed` before touching
 * the map. The one exception is forwardIterator(), for the compaction merge:
 * its current value views the map until it steps, and the merge writes each
 * entry before stepping and closes a table only once it has left it.
 *
 * @module
 */
import { readU32 } from "../coding.ts";
import { crc32 } from "../crc.ts";
import { bloomMayContain } from "../bloom.ts";
import type { BlockCache } from "../cache.ts";
import type { Entry, EntryIterator } from "../entry.ts";
import { CorruptionError, ShaleError, wrapIoError } from "../errors.ts";
import type { FileSystem, ReadableFile } from "../fs.ts";
import { type FileMap, mapFile } from "../mmap.ts";
import { blockGet, decodeBlock } from "./block.ts";
import { CODEC_NONE, codecOf, decompressBlock, typeOf } from "./codec.ts";
import {
  type BlockIndex,
  compareIndexKey,
  decodeIndexBlock,
  indexMemoryBytes,
} from "./index_block.ts";
import { TableForwardIterator, TableIterator } from "./iterator.ts";
import {
  BLOCK_TRAILER_SIZE,
  BLOCK_TYPE_DATA,
  BLOCK_TYPE_FILTER,
  BLOCK_TYPE_INDEX,
  BLOCK_TYPE_PROPERTIES,
  type BlockHandle,
  decodeFooter,
  decodeProperties,
  FOOTER_SIZE,
  type TableProps,
} from "./format.ts";

/**
 * Read-path counters. Pass one object to many readers to aggregate them.
 * A bloom false positive is a get() whose filter said "maybe" but that found
 * no version of the key visible at its snapshot.
 */
export interface TableStats {
  /** get() calls that consulted a filter. */
  bloomChecks: number;
  /** Filter said "absent": the table was skipped without reading a block. */
  bloomNegatives: number;
  /** Filter said "maybe" and the table held nothing for the key at that snapshot. */
  bloomFalsePositives: number;
  /** Data blocks read from disk (cache misses). */
  blockReads: number;
}

/** A zeroed {@link TableStats}. */
export function newTableStats(): TableStats {
  return {
    bloomChecks: 0,
    bloomNegatives: 0,
    bloomFalsePositives: 0,
    blockReads: 0,
  };
}

/** Options of {@link TableReader.open}. */
export interface TableReaderOptions {
  /** Counters to add to (shared between readers); a fresh object by default. */
  stats?: TableStats;
  /**
   * Serve data blocks from a read-only memory map of the file instead of
   * positional reads through the block cache. Throws when mapping fails.
   */
  map?: boolean;
}

/** An open, immutable table file. */
export class TableReader {
  readonly path: string;
  readonly fileNumber: number;
  /** Properties stored in the table, plus file number and size. */
  readonly props: TableProps;
  /** Read-path counters (possibly shared with other readers). */
  readonly stats: TableStats;
  readonly #file: ReadableFile;
  readonly #cache: BlockCache;
  // Empty when the table was written without a filter.
  readonly #filter: Uint8Array;
  // Index, one slot per data block: last internal key (a range of the index
  // block) and the block's handle.
  readonly #idx: BlockIndex;
  readonly #idxSeqs: Float64Array;
  readonly #idxOffsets: Float64Array;
  readonly #idxSizes: Float64Array;
  readonly #metaBytes: number;
  // The mapped file and a bit per data block whose CRC has been checked;
  // undefined when the reader uses positional reads.
  #map: FileMap | undefined;
  #mapped: Uint8Array = new Uint8Array(0);
  #verified: Uint8Array = new Uint8Array(0);
  #closed = false;

  private constructor(
    path: string,
    fileNumber: number,
    file: ReadableFile,
    cache: BlockCache,
    stats: TableStats,
  ) {
    this.path = path;
    this.fileNumber = fileNumber;
    this.#file = file;
    this.#cache = cache;
    this.stats = stats;
    const size = file.size;
    const footer = decodeFooter(
      file.readAt(Math.max(size - FOOTER_SIZE, 0), FOOTER_SIZE),
      path,
      size,
    );

    this.#filter = this.#readBlock(footer.filter, BLOCK_TYPE_FILTER, "filter");

    const propsBlock = this.#readBlock(
      footer.properties,
      BLOCK_TYPE_PROPERTIES,
      "properties",
    );
    try {
      this.props = decodeProperties(propsBlock, fileNumber, size);
    } catch (err) {
      throw this.#corrupt(
        footer.properties.offset,
        `properties block malformed: ${(err as Error).message}`,
      );
    }

    const index = this.#readBlock(footer.index, BLOCK_TYPE_INDEX, "index");
    let idx: BlockIndex;
    try {
      idx = decodeIndexBlock(index);
    } catch (err) {
      throw this.#corrupt(footer.index.offset, (err as Error).message);
    }
    const n = idx.keyStarts.length;
    this.#idx = idx;
    this.#idxSeqs = idx.seqs;
    this.#idxOffsets = idx.offsets;
    this.#idxSizes = idx.sizes;
    this.#metaBytes = indexMemoryBytes(idx) + this.#filter.byteLength;
    const dataEnd = n === 0
      ? 0
      : this.#idxOffsets[n - 1] + this.#idxSizes[n - 1] + BLOCK_TRAILER_SIZE;
    if (
      n !== this.props.dataBlocks || dataEnd !== this.props.dataSize ||
      dataEnd > footer.filter.offset
    ) {
      throw this.#corrupt(
        footer.index.offset,
        `index (${n} blocks ending at ${dataEnd}) disagrees with properties (${this.props.dataBlocks} blocks, ${this.props.dataSize} bytes)`,
      );
    }
  }

  /**
   * Opens `path` (table number `fileNumber`), reading and verifying footer,
   * filter, properties and index. Throws CorruptionError when any of them is
   * damaged; the file is closed again on failure.
   */
  static open(
    fs: FileSystem,
    path: string,
    fileNumber: number,
    cache: BlockCache,
    opts: TableReaderOptions = {},
  ): TableReader {
    let file: ReadableFile;
    try {
      file = fs.openReadable(path);
    } catch (err) {
      throw wrapIoError(err, `open table ${path}`);
    }
    try {
      const reader = new TableReader(
        path,
        fileNumber,
        file,
        cache,
        opts.stats ?? newTableStats(),
      );
      // Mapped only now that the footer and index proved the file whole:
      // every data block lies below the filter, inside the mapped size.
      if (opts.map) reader.#mapFile();
      return reader;
    } catch (err) {
      file.close();
      throw err;
    }
  }

  #mapFile(): void {
    const size = this.#file.size;
    try {
      this.#map = mapFile(this.path, size);
    } catch (err) {
      throw wrapIoError(err, `map table ${this.path}`);
    }
    this.#mapped = this.#map.bytes;
    this.#verified = new Uint8Array(this.#idxSeqs.length);
  }

  /** True when data blocks come from a memory map. */
  get mapped(): boolean {
    return this.#map !== undefined;
  }

  /** Number of data blocks. */
  get blockCount(): number {
    return this.#idxSeqs.length;
  }

  /** Bytes of memory held for index and filter (for the memory budget). */
  get memoryBytes(): number {
    return this.#metaBytes;
  }

  /** True unless the filter proves `key` absent (always true without a filter). */
  mayContain(key: Uint8Array): boolean {
    return this.#filter.length === 0 || bloomMayContain(this.#filter, key);
  }

  /**
   * The newest entry for `key` with seq <= `snapshotSeq`, tombstones and
   * expired entries included (the caller decides what they mean), or
   * undefined when the table holds no such version. The returned value is a
   * view into a cached block: read-only. With `borrow`, a mapped table's
   * value is a view into the map instead of a copy: valid only until the
   * caller returns to the event loop (engine/value_view.ts).
   */
  get(key: Uint8Array, snapshotSeq: number, borrow = false): Entry | undefined {
    if (this.#closed) this.#throwClosed();
    const stats = this.stats;
    if (this.#filter.length !== 0) {
      stats.bloomChecks++;
      if (!bloomMayContain(this.#filter, key)) {
        stats.bloomNegatives++;
        return undefined;
      }
    }
    const i = this.findBlock(key, snapshotSeq);
    let e: Entry | undefined;
    if (i < this.#idxSeqs.length) {
      const block = this.readDataBlock(i);
      try {
        e = blockGet(block, key, snapshotSeq);
      } catch (err) {
        throw this.#corrupt(
          this.#idxOffsets[i],
          `data block malformed: ${(err as Error).message}`,
        );
      }
      // Never hand out a view into the map unless borrowed: the map dies
      // with close().
      if (e !== undefined && this.#map !== undefined && !borrow) {
        e.value = e.value.slice();
      }
    }
    if (e === undefined && this.#filter.length !== 0) {
      stats.bloomFalsePositives++;
    }
    return e;
  }

  /**
   * Index of the first data block whose last entry is at or after (key, seq)
   * in internal order; blockCount when every entry is before it.
   */
  findBlock(key: Uint8Array, seq: number): number {
    const idx = this.#idx;
    const seqs = this.#idxSeqs;
    let lo = 0;
    let hi = seqs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      let c = compareIndexKey(idx, mid, key);
      if (c === 0) c = seq - seqs[mid];
      if (c < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * The verified (and inflated) bytes of data block `i`, from the cache or
   * from disk (then cached); for a raw block of a mapped reader a view into
   * the map, valid only until close(): use it before returning to the event
   * loop and copy what you keep.
   */
  readDataBlock(i: number): Uint8Array {
    const offset = this.#idxOffsets[i];
    const size = this.#idxSizes[i];
    const mapped = this.#map !== undefined;
    // A mapped table serves raw blocks from the map (the page cache holds
    // them); compressed ones are inflated once into the block cache, like
    // every block of a table read with pread.
    if (mapped && codecOf(this.#mapped[offset + size]) === CODEC_NONE) {
      return this.#mappedBlock(i);
    }
    let block = this.#cache.get(this.fileNumber, offset);
    if (block === undefined) {
      if (this.#closed) this.#throwClosed();
      const h = { offset, size };
      if (mapped) {
        const codec = codecOf(this.#mapped[offset + size]);
        block = this.#inflate(this.#mappedBlock(i), codec, h, "data");
      } else {
        block = this.#readBlock(h, BLOCK_TYPE_DATA, "data");
        this.stats.blockReads++;
      }
      this.#cache.insert(this.fileNumber, offset, block);
    }
    return block;
  }

  /**
   * Every entry of data block `i`, decoded (keys copied, values viewing the
   * block, which is a private copy on a mapped reader).
   */
  decodeDataBlock(i: number): Entry[] {
    let block = this.readDataBlock(i);
    if (this.#map !== undefined) block = block.slice();
    try {
      return decodeBlock(block);
    } catch (err) {
      throw this.dataBlockError(i, err);
    }
  }

  /** The CorruptionError for data block `i`, which failed to decode with `err`. */
  dataBlockError(i: number, err: unknown): CorruptionError {
    return this.#corrupt(
      this.#idxOffsets[i],
      `data block malformed: ${(err as Error).message}`,
    );
  }

  /** A bidirectional iterator over every entry, in internal order. */
  iterator(): EntryIterator {
    if (this.#closed) this.#throwClosed();
    return new TableIterator(this);
  }

  /**
   * A forward-only iterator over every entry, decoding in place (see
   * TableForwardIterator): for the compaction merge, which copies what it
   * keeps.
   */
  forwardIterator(): EntryIterator {
    if (this.#closed) this.#throwClosed();
    return new TableForwardIterator(this);
  }

  /**
   * Closes the file. Cached blocks stay (they are still correct); whoever
   * deletes the file calls `cache.evictFile(fileNumber)`.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#file.close();
    this.#mapped = new Uint8Array(0);
    this.#map?.unmap();
  }

  /** Data block `i` as a view into the map, its CRC checked on first use. */
  #mappedBlock(i: number): Uint8Array {
    if (this.#closed) this.#throwClosed();
    const offset = this.#idxOffsets[i];
    const size = this.#idxSizes[i];
    if (this.#verified[i] === 0) {
      this.#checkBlock(
        this.#mapped.subarray(offset, offset + size + BLOCK_TRAILER_SIZE),
        { offset, size },
        BLOCK_TYPE_DATA,
        "data",
      );
      this.#verified[i] = 1;
      this.stats.blockReads++;
    }
    return this.#mapped.subarray(offset, offset + size);
  }

  #throwClosed(): never {
    throw new ShaleError("closed", `table ${this.path} is closed`);
  }

  #corrupt(offset: number, what: string): CorruptionError {
    return new CorruptionError(this.path, offset, what);
  }

  /**
   * Reads a block plus trailer, checks length, CRC and type; returns the
   * block's bytes, decompressed when its trailer names a codec.
   */
  #readBlock(h: BlockHandle, type: number, what: string): Uint8Array {
    const n = h.size + BLOCK_TRAILER_SIZE;
    const buf = this.#file.readAt(h.offset, n);
    this.#checkBlock(buf, h, type, what);
    return this.#inflate(
      buf.subarray(0, h.size),
      codecOf(buf[h.size]),
      h,
      what,
    );
  }

  /** The raw bytes of a verified stored block; a damaged frame is corruption. */
  #inflate(
    stored: Uint8Array,
    codec: number,
    h: BlockHandle,
    what: string,
  ): Uint8Array {
    try {
      return decompressBlock(stored, codec);
    } catch (err) {
      throw this.#corrupt(
        h.offset,
        `${what} block malformed: ${(err as Error).message}`,
      );
    }
  }

  /**
   * Checks a block plus trailer read into `buf`: length, CRC and block
   * kind (the codec half of the type byte is checked when inflating).
   */
  #checkBlock(
    buf: Uint8Array,
    h: BlockHandle,
    type: number,
    what: string,
  ): void {
    const n = h.size + BLOCK_TRAILER_SIZE;
    if (buf.length !== n) {
      throw this.#corrupt(
        h.offset,
        `${what} block runs past end of file (short read: ${buf.length} of ${n} bytes)`,
      );
    }
    if (crc32(buf.subarray(0, h.size + 1)) !== readU32(buf, h.size + 1)) {
      throw this.#corrupt(h.offset, `${what} block checksum mismatch`);
    }
    if (typeOf(buf[h.size]) !== type) {
      throw this.#corrupt(
        h.offset,
        `${what} block has type ${buf[h.size]}, expected ${type}`,
      );
    }
  }
}
