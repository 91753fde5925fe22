/**
 * The small subset of the POSIX ustar format that backups use: regular files
 * with short names, each a 512-byte header, the data, and zero padding to a
 * 512-byte boundary; the archive ends with two zero blocks. Any `tar`
 * program can list and extract it. Layout of a backup: engine/FORMAT.md
 * ("Backup archive").
 *
 * @module
 */

/** Size of a tar block: headers and the padding unit. */
export const TAR_BLOCK = 512;
/** Largest member size the 11 octal digits of a ustar header can hold. */
export const TAR_MAX_SIZE = 8 ** 11 - 1;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One member as its header describes it. */
export interface TarHeader {
  name: string;
  size: number;
}

/** The 512-byte ustar header of a regular file `name` of `size` bytes. */
export function tarHeader(name: string, size: number, mtime = 0): Uint8Array {
  const nameBytes = encoder.encode(name);
  if (nameBytes.length === 0 || nameBytes.length > 100) {
    throw new RangeError(`tar member name must be 1 to 100 bytes: ${name}`);
  }
  if (!Number.isSafeInteger(size) || size < 0 || size > TAR_MAX_SIZE) {
    throw new RangeError(`tar member ${name} is too large (${size} bytes)`);
  }
  const h = new Uint8Array(TAR_BLOCK);
  h.set(nameBytes, 0);
  octal(h, 100, 8, 0o600); // mode
  octal(h, 108, 8, 0); // uid
  octal(h, 116, 8, 0); // gid
  octal(h, 124, 12, size);
  octal(h, 136, 12, Math.floor(mtime / 1000));
  h.fill(0x20, 148, 156); // checksum field counts as spaces while summing
  h[156] = 0x30; // typeflag '0': regular file
  h.set(encoder.encode("ustar\u000000"), 257); // magic and version
  const sum = h.reduce((a, b) => a + b, 0);
  octal(h, 148, 7, sum); // six digits, NUL; the eighth byte stays a space
  return h;
}

/** Zero bytes that pad a member of `size` bytes to a whole block. */
export function tarPadding(size: number): number {
  return (TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK;
}

/** True when `block` is all zero bytes (the end-of-archive marker). */
export function isZeroBlock(block: Uint8Array): boolean {
  for (const b of block) if (b !== 0) return false;
  return true;
}

/**
 * Parses a header block; throws RangeError saying what is wrong (bad
 * checksum, not ustar, not a regular file).
 */
export function parseTarHeader(h: Uint8Array): TarHeader {
  if (h.length !== TAR_BLOCK) throw new RangeError("short tar header");
  let sum = 0;
  for (let i = 0; i < TAR_BLOCK; i++) {
    sum += i >= 148 && i < 156 ? 0x20 : h[i];
  }
  const stored = readOctal(h, 148, 8);
  if (stored !== sum) {
    throw new RangeError(
      `tar header checksum mismatch (stored ${stored}, computed ${sum})`,
    );
  }
  if (decoder.decode(h.subarray(257, 262)) !== "ustar") {
    throw new RangeError("not a ustar header");
  }
  const type = h[156];
  if (type !== 0x30 && type !== 0) {
    throw new RangeError(
      `tar member type ${String.fromCharCode(type)} is not a regular file`,
    );
  }
  const end = h.indexOf(0);
  const name = decoder.decode(h.subarray(0, end < 0 || end > 100 ? 100 : end));
  const size = readOctal(h, 124, 12);
  if (size === undefined) throw new RangeError("bad tar member size");
  return { name, size };
}

function octal(h: Uint8Array, at: number, width: number, n: number): void {
  const s = n.toString(8).padStart(width - 1, "0");
  h.set(encoder.encode(s), at);
  h[at + width - 1] = 0;
}

function readOctal(
  h: Uint8Array,
  at: number,
  width: number,
): number | undefined {
  const s = decoder.decode(h.subarray(at, at + width)).replace(/[\0 ]+$/, "")
    .replace(/^ +/, "");
  return /^[0-7]+$/.test(s) ? parseInt(s, 8) : undefined;
}
