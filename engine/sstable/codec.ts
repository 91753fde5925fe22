/**
 * Block compression: which codec a stored block went through, and the two
 * directions. The codec of each block sits in the high four bits of its
 * trailer's type byte (the low four say what the block is), as LevelDB
 * records a compression type per block; layout in engine/FORMAT.md,
 * "Block trailer" and "Compressed data block".
 *
 * A compressed block is `raw length varint | zstd frame`. Storing the raw
 * length bounds decompression (a damaged frame can never allocate more than
 * the block it claims to be) and gives one more check: the frame must
 * inflate to exactly that many bytes.
 *
 * zstd comes from `node:zlib` (`zstdCompressSync` / `zstdDecompressSync`),
 * which Deno 2.9 and Bun 1.4 both provide. A runtime without it can still
 * read and write uncompressed tables: `compression: "zstd"` is refused when
 * the store opens, and a compressed block is reported as unreadable by this
 * build instead of being guessed at.
 *
 * @module
 */
import * as zlib from "node:zlib";
import { ByteReader, ByteWriter } from "../coding.ts";
import { TableFormatError } from "./format.ts";

/** How blocks are stored: the option `compression`. */
export type { Compression } from "../types.ts";

/** Codec number of a block stored as is. */
export const CODEC_NONE = 0;
/** Codec number of a zstd-compressed block. */
export const CODEC_ZSTD = 1;

/** The trailer type byte of a block of kind `type` stored with `codec`. */
export function typeByte(type: number, codec: number): number {
  return type | (codec << 4);
}

/** The block kind in a trailer type byte. */
export function typeOf(byte: number): number {
  return byte & 0x0f;
}

/** The codec in a trailer type byte. */
export function codecOf(byte: number): number {
  return byte >> 4;
}

// zstd's own default level.
const ZSTD_LEVEL = 3;

type ZstdFns = {
  zstdCompressSync(
    b: Uint8Array,
    o?: { params?: Record<number, number> },
  ): Uint8Array;
  zstdDecompressSync(
    b: Uint8Array,
    o?: { maxOutputLength?: number },
  ): Uint8Array;
};
const zstd = zlib as unknown as Partial<ZstdFns>;

/** True when this runtime's `node:zlib` has zstd. */
export function zstdAvailable(): boolean {
  return typeof zstd.zstdCompressSync === "function" &&
    typeof zstd.zstdDecompressSync === "function";
}

/**
 * `raw` compressed with zstd, framed with its length, or undefined when it
 * would not shrink by at least an eighth (LevelDB's rule): such a block is
 * stored raw, since decompressing it on every read would cost more than the
 * few bytes it saves.
 */
export function compressBlock(raw: Uint8Array): Uint8Array | undefined {
  const frame = zstd.zstdCompressSync!(raw, {
    params: { [zlib.constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL },
  });
  const w = new ByteWriter(frame.length + 8);
  w.varint(raw.length);
  w.bytes(frame);
  if (w.pos > raw.length - (raw.length >>> 3)) return undefined;
  return w.finish();
}

/**
 * The raw bytes of a block stored with `codec`. Throws TableFormatError
 * (the reader names file and offset) when the frame is damaged or does not
 * inflate to the length it declares, and when this runtime cannot
 * decompress it.
 */
export function decompressBlock(
  stored: Uint8Array,
  codec: number,
): Uint8Array {
  if (codec === CODEC_NONE) return stored;
  if (codec !== CODEC_ZSTD) {
    throw new TableFormatError(`unknown block codec ${codec}`);
  }
  if (!zstdAvailable()) {
    throw new TableFormatError(
      "block is zstd-compressed, but this runtime's node:zlib has no zstd",
    );
  }
  const r = new ByteReader(stored);
  const rawLength = r.varint("raw length");
  let raw: Uint8Array;
  try {
    raw = zstd.zstdDecompressSync!(stored.subarray(r.pos), {
      maxOutputLength: Math.max(rawLength, 1),
    });
  } catch (err) {
    throw new TableFormatError(
      `zstd frame does not decompress to ${rawLength} bytes: ${
        (err as Error).message
      }`,
    );
  }
  if (raw.length !== rawLength) {
    throw new TableFormatError(
      `zstd frame inflates to ${raw.length} bytes, block says ${rawLength}`,
    );
  }
  // A plain view, not node's Buffer (whose slice() would not copy).
  return new Uint8Array(raw.buffer, raw.byteOffset, raw.length);
}
