/**
 * REST keys and versions on a KV Connect backend.
 *
 * A REST key (bytes) is the Deno KV key `[Uint8Array]`: one tuple element,
 * encoded as `01 <bytes, each 00 written 00 FF> 00`. That encoding keeps byte
 * order (a shorter key ends with 00, which sorts before any escaped 00 FF or
 * other byte), so a REST range `[start, end)` is the backend range
 * `[encode(start), encode(end))`, and all REST keys lie in `[01, 02)`.
 * Keys there with more elements (`[bytes, "x"]`, written by a Deno app) are
 * not REST keys: {@link decodeKey} returns undefined for them.
 *
 * A version is the 80-bit versionstamp read as a big-endian number, in
 * decimal: versionstamps only grow, so ETags do too.
 *
 * @module
 */
import { HttpError } from "../_codec.ts";

/** Tag of a bytes element in Deno KV's key encoding. */
const BYTES_TAG = 0x01;
/** Length of a versionstamp. */
const VERSIONSTAMP_BYTES = 10;

/** Where REST keys start and end on the backend. */
export const ALL_KEYS = {
  start: new Uint8Array([BYTES_TAG]),
  end: new Uint8Array([BYTES_TAG + 1]),
};

/** The backend key of REST key `key`. */
export function encodeKey(key: Uint8Array): Uint8Array {
  let zeros = 0;
  for (const b of key) if (b === 0) zeros++;
  const out = new Uint8Array(key.length + zeros + 2);
  out[0] = BYTES_TAG;
  let at = 1;
  for (const b of key) {
    out[at++] = b;
    if (b === 0) out[at++] = 0xff;
  }
  out[at] = 0;
  return out;
}

/** The REST key of a backend key, or undefined when it is not one bytes element. */
export function decodeKey(encoded: Uint8Array): Uint8Array | undefined {
  if (encoded[0] !== BYTES_TAG) return undefined;
  const out = new Uint8Array(encoded.length);
  let n = 0;
  for (let i = 1; i < encoded.length; i++) {
    const b = encoded[i];
    if (b !== 0) {
      out[n++] = b;
    } else if (encoded[i + 1] === 0xff) {
      out[n++] = 0;
      i++;
    } else {
      return i === encoded.length - 1 ? out.slice(0, n) : undefined;
    }
  }
  return undefined;
}

/** A versionstamp as a decimal string. */
export function versionOf(versionstamp: Uint8Array): string {
  let v = 0n;
  for (const b of versionstamp) v = (v << 8n) | BigInt(b);
  return v.toString();
}

/** A decimal version as a versionstamp (a version past 80 bits is refused). */
export function versionstampOf(version: string): Uint8Array {
  let v = BigInt(version);
  if (v < 0n || v >= 1n << 80n) {
    throw new HttpError(
      400,
      "invalid_version",
      `version ${version} is not an 80-bit versionstamp`,
    );
  }
  const out = new Uint8Array(VERSIONSTAMP_BYTES);
  for (let i = VERSIONSTAMP_BYTES - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}
