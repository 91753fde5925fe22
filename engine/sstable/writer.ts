/**
 * Streams entries in internal order into a table file (layout in
 * engine/FORMAT.md, "SSTable (NNNNNN.sst)"):
 *
 * ```
 * data blocks... | filter | properties | index | footer
 * ```
 *
 * Memory stays bounded whatever the table size: one data block being built,
 * a 64 KiB output buffer, the index entries (one key per block) and 4 bytes
 * of hash per distinct user key for the bloom filter.
 *
 * Crash safety: bytes go to `NNNNNN.sst.tmp`; finish() fdatasyncs it,
 * renames it to `NNNNNN.sst` and fsyncs the directory, so a table name only
 * ever refers to a complete, durable file. A crash leaves at most a `.tmp`
 * file, which open() removes as unreferenced.
 *
 * @module
 */
import { ByteWriter } from "../coding.ts";
import { BloomFilterBuilder, bloomHashAt } from "../bloom.ts";
import { type Entry, KIND_DELETE } from "../entry.ts";
import { InvalidArgumentError, wrapIoError } from "../errors.ts";
import type { FileSystem, WritableFile } from "../fs.ts";
import { tablePath, tempFileName } from "../filename.ts";
import { BlockBuilder } from "./block.ts";
import {
  CODEC_NONE,
  CODEC_ZSTD,
  compressBlock,
  type Compression,
  typeByte,
  zstdAvailable,
} from "./codec.ts";
import {
  BLOCK_TYPE_DATA,
  BLOCK_TYPE_FILTER,
  BLOCK_TYPE_INDEX,
  BLOCK_TYPE_PROPERTIES,
  type BlockHandle,
  blockTrailer,
  encodeFooter,
  encodeProperties,
  type TableProps,
} from "./format.ts";

export type { TableProps } from "./format.ts";

/** Options of a {@link TableWriter}. */
export interface TableWriterOptions {
  /** Target size of a data block in bytes. Default 4096. */
  blockSize?: number;
  /** Bloom filter bits per distinct user key; 0 writes no filter. Default 10. */
  bloomBitsPerKey?: number;
  /**
   * Codec tried on each data block; a block that would not shrink by an
   * eighth is stored raw. Default "none".
   */
  compression?: Compression;
}

// Output is buffered into writes of about this size; blocks at least this
// big are written straight from the block buffer.
const OUT_CHUNK = 64 * 1024;

/**
 * Writes one table. Call add() for each entry in strictly increasing
 * internal order, then finish(); on any error (or to give up) call
 * abandon(), which removes the temporary file.
 *
 * Empty tables are refused: finish() with no entries removes the temporary
 * file and throws InvalidArgumentError. Check {@link TableWriter.entries}
 * and abandon() instead when a compaction produced nothing.
 */
export class TableWriter {
  readonly fileNumber: number;
  /** Final path (`NNNNNN.sst`). */
  readonly path: string;
  /** Temporary path written until finish() renames it. */
  readonly tmpPath: string;
  readonly #fs: FileSystem;
  readonly #dir: string;
  readonly #blockSize: number;
  readonly #compress: boolean;
  #compressedBlocks = 0;
  #file: WritableFile | undefined;
  #block = new BlockBuilder();
  #out = new ByteWriter(OUT_CHUNK + 1024);
  #offset = 0;
  #bloom: BloomFilterBuilder | undefined;
  // Index entries: last internal key of each data block and its handle.
  #index = new ByteWriter(4096);
  #indexCount = 0;
  #state: "open" | "finishing" | "done" = "open";
  #entries = 0;
  #deletions = 0;
  #smallestKey: Uint8Array | undefined;
  #minSeq = Number.MAX_SAFE_INTEGER;
  #maxSeq = 0;
  #dataBlocks = 0;
  #rawKeyBytes = 0;
  #rawValueBytes = 0;

  private constructor(
    fs: FileSystem,
    dir: string,
    fileNumber: number,
    opts: TableWriterOptions,
  ) {
    this.#fs = fs;
    this.#dir = dir;
    this.fileNumber = fileNumber;
    this.path = tablePath(dir, fileNumber);
    this.tmpPath = tempFileName(this.path);
    this.#blockSize = opts.blockSize ?? 4096;
    const bits = opts.bloomBitsPerKey ?? 10;
    if (!(this.#blockSize > 0)) {
      throw new InvalidArgumentError(
        `blockSize must be positive, got ${this.#blockSize}`,
      );
    }
    if (!(bits >= 0)) {
      throw new InvalidArgumentError(
        `bloomBitsPerKey must be >= 0, got ${bits}`,
      );
    }
    this.#bloom = bits > 0 ? new BloomFilterBuilder(bits) : undefined;
    const compression = opts.compression ?? "none";
    if (compression !== "none" && compression !== "zstd") {
      throw new InvalidArgumentError(
        `compression must be none or zstd, got ${String(compression)}`,
      );
    }
    if (compression === "zstd" && !zstdAvailable()) {
      throw new InvalidArgumentError(
        "compression zstd needs node:zlib's zstd, which this runtime lacks",
      );
    }
    this.#compress = compression === "zstd";
    // A leftover (or a planted symlink) is unlinked, never written through.
    fs.remove(this.tmpPath);
    this.#file = fs.openWritable(this.tmpPath, { exclusive: true });
  }

  /** Creates `<dir>/NNNNNN.sst.tmp` (replacing any leftover) and returns a writer for it. */
  static create(
    fs: FileSystem,
    dir: string,
    fileNumber: number,
    opts: TableWriterOptions = {},
  ): TableWriter {
    return new TableWriter(fs, dir, fileNumber, opts);
  }

  /** Data blocks written compressed so far. */
  get compressedBlocks(): number {
    return this.#compressedBlocks;
  }

  /** Entries added so far. */
  get entries(): number {
    return this.#entries;
  }

  /** Bytes written to the file so far plus the block being built: a size estimate for splitting outputs. */
  get estimatedSize(): number {
    return this.#offset + this.#out.pos + this.#block.estimatedSize;
  }

  /**
   * Adds an entry. Entries must come in strictly increasing internal order
   * (key ascending, then seq descending); anything else throws.
   */
  add(e: Entry): void {
    this.addAt(
      e.key,
      0,
      e.key.length,
      e.seq,
      e.kind,
      e.encoding,
      e.expiresAt,
      e.value,
      0,
      e.value.length,
    );
  }

  /**
   * {@link add} for an entry given as key `kb[ko..ko+kl]` and value
   * `vb[vo..vo+vl]`: the flush path (engine/jobs.ts) passes offsets into a
   * memtable image's buffers rather than making an Entry and two views per
   * key. The bytes are copied; the caller may reuse them afterwards.
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
  ): void {
    if (this.#state !== "open") {
      throw new InvalidArgumentError(
        `table writer for ${this.path} is finished`,
      );
    }
    const block = this.#block;
    const prevSeq = block.lastSeq;
    // The block checks the order (against the last key of the table, which
    // it keeps across blocks) in the same pass that finds the shared prefix.
    const order = block.addAt(
      kb,
      ko,
      kl,
      seq,
      kind,
      encoding,
      expiresAt,
      vb,
      vo,
      vl,
    );
    if (order < 0) {
      throw new InvalidArgumentError(
        `table entries out of order in ${this.path}: seq ${seq} after seq ${prevSeq}`,
      );
    }
    if (this.#entries === 0) this.#smallestKey = kb.slice(ko, ko + kl);
    if (order > 0 && this.#bloom !== undefined) {
      this.#bloom.addHash(bloomHashAt(kb, ko, kl));
    }
    this.#entries++;
    if (kind === KIND_DELETE) this.#deletions++;
    if (seq < this.#minSeq) this.#minSeq = seq;
    if (seq > this.#maxSeq) this.#maxSeq = seq;
    this.#rawKeyBytes += kl;
    this.#rawValueBytes += vl;
    if (block.estimatedSize >= this.#blockSize) this.#flushDataBlock();
  }

  /**
   * Writes filter, properties, index and footer, fdatasyncs, renames the
   * file into place and fsyncs the directory. On failure the partial file
   * is removed and the error rethrown.
   */
  async finish(): Promise<TableProps> {
    if (this.#state !== "open") {
      throw new InvalidArgumentError(
        `table writer for ${this.path} is already finished`,
      );
    }
    if (this.#entries === 0) {
      this.abandon();
      throw new InvalidArgumentError(
        `refusing to write an empty table ${this.path}`,
      );
    }
    this.#state = "finishing";
    let renamed = false;
    try {
      if (this.#block.entries > 0) this.#flushDataBlock();
      const dataSize = this.#offset + this.#out.pos;
      const largestKey = this.#block.lastKey().slice();
      const filter = this.#writeBlock(
        this.#bloom ? this.#bloom.finish() : new Uint8Array(0),
        BLOCK_TYPE_FILTER,
      );
      const props: TableProps = {
        fileNumber: this.fileNumber,
        fileSize: 0,
        entries: this.#entries,
        deletions: this.#deletions,
        smallestKey: this.#smallestKey!,
        largestKey,
        minSeq: this.#minSeq,
        maxSeq: this.#maxSeq,
        dataSize,
        dataBlocks: this.#dataBlocks,
        rawKeyBytes: this.#rawKeyBytes,
        rawValueBytes: this.#rawValueBytes,
      };
      const properties = this.#writeBlock(
        encodeProperties(props),
        BLOCK_TYPE_PROPERTIES,
      );
      this.#index.u32(this.#indexCount);
      const index = this.#writeBlock(this.#index.view_(), BLOCK_TYPE_INDEX);
      this.#out.bytes(
        encodeFooter(index, filter, properties, this.#compressedBlocks > 0),
      );
      this.#flushOut();
      props.fileSize = this.#offset;
      const file = this.#file!;
      await file.sync();
      file.close();
      this.#file = undefined;
      this.#fs.rename(this.tmpPath, this.path);
      renamed = true;
      await this.#fs.syncDir(this.#dir);
      this.#state = "done";
      return props;
    } catch (err) {
      this.abandon();
      // The directory entry may not be durable; an unreferenced table is
      // garbage either way, so do not leave it behind.
      if (renamed) this.#fs.remove(this.path);
      throw wrapIoError(err, `write table ${this.path}`);
    }
  }

  /** Closes and removes the temporary file. Safe to call more than once. */
  abandon(): void {
    this.#state = "done";
    if (this.#file !== undefined) {
      this.#file.close();
      this.#file = undefined;
    }
    try {
      this.#fs.remove(this.tmpPath);
    } catch {
      // Best effort: a leftover .tmp is removed as unreferenced on open.
    }
  }

  #flushDataBlock(): void {
    const block = this.#block;
    const raw = block.finish();
    const packed = this.#compress ? compressBlock(raw) : undefined;
    if (packed !== undefined) this.#compressedBlocks++;
    const h = this.#writeBlock(
      packed ?? raw,
      typeByte(BLOCK_TYPE_DATA, packed ? CODEC_ZSTD : CODEC_NONE),
    );
    const idx = this.#index;
    const lastKey = block.lastKey();
    idx.varint(lastKey.length);
    idx.bytes(lastKey);
    idx.varint(block.lastSeq);
    idx.varint(h.offset);
    idx.varint(h.size);
    this.#indexCount++;
    this.#dataBlocks++;
    block.reset();
  }

  /** Queues `content` plus its trailer (type byte `type`) for output; returns its handle. */
  #writeBlock(content: Uint8Array, type: number): BlockHandle {
    const out = this.#out;
    const h = { offset: this.#offset + out.pos, size: content.length };
    if (content.length >= OUT_CHUNK) {
      this.#flushOut();
      this.#append(content);
      this.#offset += content.length;
    } else {
      out.bytes(content);
    }
    out.bytes(blockTrailer(content, type));
    if (out.pos >= OUT_CHUNK) this.#flushOut();
    return h;
  }

  #flushOut(): void {
    const out = this.#out;
    if (out.pos === 0) return;
    this.#append(out.view_());
    this.#offset += out.pos;
    out.reset();
  }

  #append(bytes: Uint8Array): void {
    if (this.#file === undefined) {
      throw new InvalidArgumentError(`table writer for ${this.path} is closed`);
    }
    this.#file.append(bytes);
  }
}
