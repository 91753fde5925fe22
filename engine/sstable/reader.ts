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
 * A reader opened with `map: true` reads footer, filter, properties and
 * index as above, then maps the file (engine/mmap.ts) at the size it had
 * when opened, and serves data blocks from the map without the block
 * cache (the page cache does that job). Each data block's CRC is checked
 * the first time the reader touches it (a bit per block remembers it: the
 * file is immutable). Nothing that leaves the reader views the map: get()
 * copies the value it returns and iterators decode a copy of the block, so
 * close() may unmap at once; every method checks `closed` before touching
 * the map.
 *
 * @module
 */
import { compareBytes, readU32 } from "../coding.ts";
import { crc32 } from "../crc.ts";
import { bloomMayContain } from "../bloom.ts";
import type { BlockCache } from "../cache.ts";
import {
  compareEntries,
  type Entry,
  type EntryIterator,
  MAX_SEQ,
} from "../entry.ts";
import { CorruptionError, ShaleError, wrapIoError } from "../errors.ts";
import type { FileSystem, ReadableFile } from "../fs.ts";
import { type FileMap, mapFile } from "../mmap.ts";
import { blockGet, decodeBlock } from "./block.ts";
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
  // Index, one slot per data block: last internal key (views into the index
  // block) and the block's handle.
  readonly #idxKeys: Uint8Array[];
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
    const n = index.length >= 4 ? readU32(index, index.length - 4) : -1;
    // Every index entry takes at least 4 bytes, which bounds a sane count.
    if (n < 0 || n * 4 > index.length) {
      throw this.#corrupt(
        footer.index.offset,
        `index block has bad entry count ${n}`,
      );
    }
    this.#idxKeys = new Array<Uint8Array>(n);
    this.#idxSeqs = new Float64Array(n);
    this.#idxOffsets = new Float64Array(n);
    this.#idxSizes = new Float64Array(n);
    this.#decodeIndex(index, n, footer.index.offset);
    this.#metaBytes = index.byteLength + this.#filter.byteLength + n * 120;
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
    this.#verified = new Uint8Array(this.#idxKeys.length);
  }

  /** True when data blocks come from a memory map. */
  get mapped(): boolean {
    return this.#map !== undefined;
  }

  /** Number of data blocks. */
  get blockCount(): number {
    return this.#idxKeys.length;
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
   * view into a cached block: read-only.
   */
  get(key: Uint8Array, snapshotSeq: number): Entry | undefined {
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
    if (i < this.#idxKeys.length) {
      const block = this.readDataBlock(i);
      try {
        e = blockGet(block, key, snapshotSeq);
      } catch (err) {
        throw this.#corrupt(
          this.#idxOffsets[i],
          `data block malformed: ${(err as Error).message}`,
        );
      }
      // Never hand out a view into the map: it dies with close().
      if (e !== undefined && this.#map !== undefined) e.value = e.value.slice();
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
    const keys = this.#idxKeys;
    const seqs = this.#idxSeqs;
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      let c = compareBytes(keys[mid], key);
      if (c === 0) c = seq - seqs[mid];
      if (c < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * The verified bytes of data block `i`, from the cache or from disk (then
   * cached); on a mapped reader a view into the map, valid only until
   * close(): use it before returning to the event loop and copy what you keep.
   */
  readDataBlock(i: number): Uint8Array {
    if (this.#map !== undefined) return this.#mappedBlock(i);
    const offset = this.#idxOffsets[i];
    let block = this.#cache.get(this.fileNumber, offset);
    if (block === undefined) {
      if (this.#closed) this.#throwClosed();
      block = this.#readBlock(
        { offset, size: this.#idxSizes[i] },
        BLOCK_TYPE_DATA,
        "data",
      );
      this.stats.blockReads++;
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
      throw this.#corrupt(
        this.#idxOffsets[i],
        `data block malformed: ${(err as Error).message}`,
      );
    }
  }

  /** A bidirectional iterator over every entry, in internal order. */
  iterator(): EntryIterator {
    if (this.#closed) this.#throwClosed();
    return new TableIterator(this);
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

  /** Reads a block plus trailer, checks length, CRC and type; returns the block bytes. */
  #readBlock(h: BlockHandle, type: number, what: string): Uint8Array {
    const n = h.size + BLOCK_TRAILER_SIZE;
    const buf = this.#file.readAt(h.offset, n);
    this.#checkBlock(buf, h, type, what);
    return buf.subarray(0, h.size);
  }

  /** Checks a block plus trailer read into `buf`: length, CRC and type. */
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
    if (buf[h.size] !== type) {
      throw this.#corrupt(
        h.offset,
        `${what} block has type ${buf[h.size]}, expected ${type}`,
      );
    }
  }

  #decodeIndex(index: Uint8Array, n: number, at: number): void {
    const end = index.length - 4;
    let p = 0;
    let expectOffset = 0;
    const varint = (what: string): number => {
      let result = 0;
      let mul = 1;
      for (let i = 0; i < 8; i++) {
        if (p >= end) break;
        const b = index[p++];
        result += (b & 0x7f) * mul;
        if (b < 0x80) return result;
        mul *= 128;
      }
      throw this.#corrupt(at, `index entry ${what} malformed at ${p}`);
    };
    for (let i = 0; i < n; i++) {
      const klen = varint("key length");
      if (p + klen > end) {
        throw this.#corrupt(at, `index entry ${i} key runs past block`);
      }
      const key = index.subarray(p, p + klen);
      p += klen;
      const seq = varint("seq");
      const offset = varint("offset");
      const size = varint("size");
      if (offset !== expectOffset) {
        throw this.#corrupt(
          at,
          `index entry ${i} points at offset ${offset}, expected ${expectOffset}`,
        );
      }
      if (
        i > 0 &&
        compareEntries(this.#idxKeys[i - 1], this.#idxSeqs[i - 1], key, seq) >=
          0
      ) {
        throw this.#corrupt(at, `index entry ${i} is out of order`);
      }
      this.#idxKeys[i] = key;
      this.#idxSeqs[i] = seq;
      this.#idxOffsets[i] = offset;
      this.#idxSizes[i] = size;
      expectOffset = offset + size + BLOCK_TRAILER_SIZE;
    }
    if (p !== end) {
      throw this.#corrupt(at, `index block has ${end - p} trailing bytes`);
    }
  }
}

/**
 * Iterates a table one decoded block at a time (a whole block is decoded
 * when the cursor enters it, which keeps next()/prev() trivial).
 */
class TableIterator implements EntryIterator {
  readonly #t: TableReader;
  #block = -1;
  #entries: Entry[] = [];
  #pos = 0;
  #valid = false;

  constructor(t: TableReader) {
    this.#t = t;
  }

  #load(i: number): void {
    if (this.#block !== i) {
      this.#entries = this.#t.decodeDataBlock(i);
      this.#block = i;
    }
  }

  seek(key: Uint8Array, seq: number = MAX_SEQ): void {
    const t = this.#t;
    const i = t.findBlock(key, seq);
    if (i >= t.blockCount) {
      this.#valid = false;
      return;
    }
    this.#load(i);
    const es = this.#entries;
    let lo = 0;
    let hi = es.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareEntries(es[mid].key, es[mid].seq, key, seq) < 0) lo = mid + 1;
      else hi = mid;
    }
    this.#pos = lo;
    this.#valid = true;
    // The index promised an entry at or after the target in this block; if
    // the block disagrees, continue with the next one rather than stop.
    if (lo === es.length) {
      this.#pos = lo - 1;
      this.next();
    }
  }

  seekToFirst(): void {
    if (this.#t.blockCount === 0) {
      this.#valid = false;
      return;
    }
    this.#load(0);
    this.#pos = 0;
    this.#valid = true;
  }

  seekToLast(): void {
    const n = this.#t.blockCount;
    if (n === 0) {
      this.#valid = false;
      return;
    }
    this.#load(n - 1);
    this.#pos = this.#entries.length - 1;
    this.#valid = true;
  }

  seekBefore(key: Uint8Array): void {
    this.seek(key, MAX_SEQ);
    if (this.#valid) this.prev();
    else this.seekToLast();
  }

  valid(): boolean {
    return this.#valid;
  }

  next(): void {
    if (!this.#valid) return;
    if (++this.#pos < this.#entries.length) return;
    if (this.#block + 1 < this.#t.blockCount) {
      this.#load(this.#block + 1);
      this.#pos = 0;
    } else {
      this.#valid = false;
    }
  }

  prev(): void {
    if (!this.#valid) return;
    if (--this.#pos >= 0) return;
    if (this.#block > 0) {
      this.#load(this.#block - 1);
      this.#pos = this.#entries.length - 1;
    } else {
      this.#valid = false;
    }
  }

  entry(): Entry {
    return this.#entries[this.#pos];
  }
}
