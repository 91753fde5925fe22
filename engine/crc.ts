/**
 * CRC32 (IEEE, the zlib polynomial) over bytes, computed natively by
 * node:zlib. Every WAL record, manifest record, table block and footer
 * carries one.
 *
 * @module
 */
import { crc32 as zlibCrc32 } from "node:zlib";

/** CRC32 of `data` (optionally continuing from `initial`), as an unsigned 32-bit number. */
export function crc32(data: Uint8Array, initial = 0): number {
  return zlibCrc32(data, initial) >>> 0;
}
