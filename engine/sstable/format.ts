/**
 * Table file constants, block handles, block trailers and the footer. The
 * full byte layout is in engine/FORMAT.md, "SSTable (NNNNNN.sst)"; in short:
 *
 * ```
 * [data block 0][trailer] ... [data block n-1][trailer]
 * [filter block][trailer] [properties block][trailer] [index block][trailer]
 * [footer: 3 handles (u64 offset, u64 size) | version u8 | 3 reserved | crc32 | magic "SHALETBL"]
 *
 * trailer = type u8 (kind | codec << 4) | crc32 u32 LE over (block bytes ++ type byte)
 * ```
 *
 * A leaf of the table layer: imports only byte coding, crc and errors.
 *
 * @module
 */
import {
  ByteReader,
  ByteWriter,
  DecodeError,
  readU64,
  writeU32,
  writeU64,
} from "../coding.ts";
import { crc32 } from "../crc.ts";
import { CorruptionError, FormatVersionError } from "../errors.ts";

/** The last 8 bytes of every table file: ASCII "SHALETBL". */
export const TABLE_MAGIC: Uint8Array = new Uint8Array([
  0x53,
  0x48,
  0x41,
  0x4c,
  0x45,
  0x54,
  0x42,
  0x4c,
]);

/**
 * Newest table format version, written into the footer of a table that has
 * a compressed block; readers refuse versions they do not know.
 * 2: every key starts with its key-space byte (version 1 tables are refused
 * with a {@link FormatVersionError}).
 * 3: data blocks may be compressed (the codec is in each trailer's type
 * byte, engine/sstable/codec.ts).
 */
export const TABLE_FORMAT_VERSION = 3;

/**
 * Version written into a table whose blocks are all stored raw: its bytes
 * are exactly those of version 2, so builds from before compression still
 * read it (a store can go back one build as long as it never compressed).
 */
export const TABLE_FORMAT_VERSION_RAW = 2;

/** Fixed size of the footer at the end of every table file. */
export const FOOTER_SIZE = 64;

/** Offset of the version byte inside the footer. */
export const FOOTER_VERSION_OFFSET = 48;
/** Offset of the footer's CRC32 (over footer bytes 0..52) inside the footer. */
export const FOOTER_CRC_OFFSET = 52;
/** Offset of the magic inside the footer. */
export const FOOTER_MAGIC_OFFSET = 56;

/** Bytes after every block: type u8 + CRC32 u32 LE. */
export const BLOCK_TRAILER_SIZE = 5;

/** Block type byte of a data block. */
export const BLOCK_TYPE_DATA = 1;
/** Block type byte of the index block. */
export const BLOCK_TYPE_INDEX = 2;
/** Block type byte of the bloom filter block. */
export const BLOCK_TYPE_FILTER = 3;
/** Block type byte of the properties block. */
export const BLOCK_TYPE_PROPERTIES = 4;

/** Entries between restart points in a data block (LevelDB's default). */
export const RESTART_INTERVAL = 16;

/** Where a block lives: `size` counts the block bytes, not its trailer. */
export interface BlockHandle {
  offset: number;
  size: number;
}

/** The decoded footer. A filter handle of size 0 means "no filter". */
export interface Footer {
  index: BlockHandle;
  filter: BlockHandle;
  properties: BlockHandle;
  version: number;
}

/**
 * A structural check failed inside a block that passed its CRC (a writer
 * bug, or a CRC collision). The table reader turns it into a
 * CorruptionError naming file and block offset. It is a DecodeError, like
 * every error a decoder throws for malformed bytes.
 */
export class TableFormatError extends DecodeError {
  constructor(message: string) {
    super(message);
    this.name = "TableFormatError";
  }
}

/** Appends a handle as two varints (offset, size). */
export function encodeBlockHandle(w: ByteWriter, h: BlockHandle): void {
  w.varint(h.offset);
  w.varint(h.size);
}

/** Reads a handle written by {@link encodeBlockHandle}. */
export function decodeBlockHandle(
  r: ByteReader,
  what = "block handle",
): BlockHandle {
  const offset = r.varint(what + " offset");
  const size = r.varint(what + " size");
  return { offset, size };
}

/** The 5-byte trailer that follows `block` on disk. */
export function blockTrailer(block: Uint8Array, type: number): Uint8Array {
  const t = new Uint8Array(BLOCK_TRAILER_SIZE);
  t[0] = type;
  // CRC continuation equals the CRC of the concatenation, so readers can
  // check block ++ type in one call over the bytes as read.
  writeU32(t, 1, crc32(t.subarray(0, 1), crc32(block)));
  return t;
}

/**
 * Encodes the footer: version {@link TABLE_FORMAT_VERSION} when a block of
 * the table is compressed, else {@link TABLE_FORMAT_VERSION_RAW}.
 */
export function encodeFooter(
  index: BlockHandle,
  filter: BlockHandle,
  properties: BlockHandle,
  compressed: boolean,
): Uint8Array {
  const f = new Uint8Array(FOOTER_SIZE);
  writeU64(f, 0, index.offset);
  writeU64(f, 8, index.size);
  writeU64(f, 16, filter.offset);
  writeU64(f, 24, filter.size);
  writeU64(f, 32, properties.offset);
  writeU64(f, 40, properties.size);
  f[FOOTER_VERSION_OFFSET] = compressed
    ? TABLE_FORMAT_VERSION
    : TABLE_FORMAT_VERSION_RAW;
  writeU32(
    f,
    FOOTER_CRC_OFFSET,
    crc32(f.subarray(0, FOOTER_CRC_OFFSET)),
  );
  f.set(TABLE_MAGIC, FOOTER_MAGIC_OFFSET);
  return f;
}

/**
 * Decodes and validates the footer read from the last {@link FOOTER_SIZE}
 * bytes of `file` (a name for messages) of `fileSize` bytes: magic, CRC,
 * version, and that every handle (plus trailer) lies before the footer.
 * Throws CorruptionError naming the failed field.
 */
export function decodeFooter(
  buf: Uint8Array,
  file: string,
  fileSize: number,
): Footer {
  const at = fileSize - FOOTER_SIZE;
  if (buf.length !== FOOTER_SIZE || at < 0) {
    throw new CorruptionError(
      file,
      Math.max(at, 0),
      `file too short for a table footer (${fileSize} bytes, need ${FOOTER_SIZE})`,
    );
  }
  for (let i = 0; i < TABLE_MAGIC.length; i++) {
    if (buf[FOOTER_MAGIC_OFFSET + i] !== TABLE_MAGIC[i]) {
      throw new CorruptionError(
        file,
        at + FOOTER_MAGIC_OFFSET,
        "bad table magic in footer (not a table, or truncated)",
      );
    }
  }
  const want = buf[FOOTER_CRC_OFFSET] | (buf[FOOTER_CRC_OFFSET + 1] << 8) |
    (buf[FOOTER_CRC_OFFSET + 2] << 16) | (buf[FOOTER_CRC_OFFSET + 3] << 24);
  if (crc32(buf.subarray(0, FOOTER_CRC_OFFSET)) !== want >>> 0) {
    throw new CorruptionError(file, at, "footer checksum mismatch");
  }
  const version = buf[FOOTER_VERSION_OFFSET];
  if (version === 1) {
    throw new FormatVersionError(file, version, TABLE_FORMAT_VERSION_RAW);
  }
  if (
    version !== TABLE_FORMAT_VERSION_RAW && version !== TABLE_FORMAT_VERSION
  ) {
    throw new CorruptionError(
      file,
      at + FOOTER_VERSION_OFFSET,
      `unsupported table format version ${version} (this build reads ${TABLE_FORMAT_VERSION_RAW} and ${TABLE_FORMAT_VERSION})`,
    );
  }
  const handle = (off: number, what: string): BlockHandle => {
    const h = { offset: readU64(buf, off), size: readU64(buf, off + 8) };
    if (h.offset + h.size + BLOCK_TRAILER_SIZE > at) {
      throw new CorruptionError(
        file,
        at + off,
        `footer ${what} handle runs past the footer (offset ${h.offset}, size ${h.size})`,
      );
    }
    return h;
  };
  const index = handle(0, "index");
  const filter = handle(16, "filter");
  const properties = handle(32, "properties");
  return { index, filter, properties, version };
}

/** What a finished table holds; stored in its properties block. */
export interface TableProps {
  fileNumber: number;
  /** Size of the whole file in bytes. */
  fileSize: number;
  entries: number;
  /** Entries of kind DELETE (tombstones). */
  deletions: number;
  /** Smallest user key. */
  smallestKey: Uint8Array;
  /** Largest user key. */
  largestKey: Uint8Array;
  minSeq: number;
  maxSeq: number;
  /** Bytes of data blocks including their trailers. */
  dataSize: number;
  dataBlocks: number;
  /** Sum of user key lengths over all entries. */
  rawKeyBytes: number;
  /** Sum of value lengths over all entries. */
  rawValueBytes: number;
}

/** Encodes the properties block (field order is the format; see FORMAT.md). */
export function encodeProperties(p: TableProps): Uint8Array {
  const w = new ByteWriter(64 + p.smallestKey.length + p.largestKey.length);
  w.varint(p.entries);
  w.varint(p.deletions);
  w.varint(p.minSeq);
  w.varint(p.maxSeq);
  w.varint(p.dataSize);
  w.varint(p.dataBlocks);
  w.varint(p.rawKeyBytes);
  w.varint(p.rawValueBytes);
  w.lengthPrefixed(p.smallestKey);
  w.lengthPrefixed(p.largestKey);
  return w.finish();
}

/**
 * Decodes a properties block. `fileNumber` and `fileSize` are not stored
 * (the file name and its length say them) and are filled from the arguments.
 * Throws DecodeError (TableFormatError is one) on malformed bytes.
 */
export function decodeProperties(
  block: Uint8Array,
  fileNumber: number,
  fileSize: number,
): TableProps {
  const r = new ByteReader(block);
  const p: TableProps = {
    fileNumber,
    fileSize,
    entries: r.varint("entries"),
    deletions: r.varint("deletions"),
    minSeq: r.varint("minSeq"),
    maxSeq: r.varint("maxSeq"),
    dataSize: r.varint("dataSize"),
    dataBlocks: r.varint("dataBlocks"),
    rawKeyBytes: r.varint("rawKeyBytes"),
    rawValueBytes: r.varint("rawValueBytes"),
    smallestKey: r.lengthPrefixed("smallestKey").slice(),
    largestKey: r.lengthPrefixed("largestKey").slice(),
  };
  if (r.remaining !== 0) {
    throw new TableFormatError(
      `${r.remaining} unexpected bytes after the last property`,
    );
  }
  return p;
}
