/**
 * A minimal protobuf writer for KV Connect requests (denokv
 * `proto/schema/datapath.proto`), for tests that must send what Deno's client
 * never would: oversized values, too many watches, huge reads.
 *
 * @module
 */

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

/** A length-delimited field. */
export function field(n: number, bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array([
    ...varint((n << 3) | 2),
    ...varint(bytes.length),
    ...bytes,
  ]);
}

/** A varint field. */
export function num(n: number, v: number): Uint8Array<ArrayBuffer> {
  return new Uint8Array([...varint(n << 3), ...varint(v)]);
}

/** Concatenation. */
export function cat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** One `Mutation` M_SET of raw bytes (VE_BYTES) at `key`. */
export function setMutation(
  key: Uint8Array,
  value: Uint8Array,
): Uint8Array<ArrayBuffer> {
  return field(
    2,
    cat(field(1, key), field(2, cat(field(1, value), num(2, 3))), num(3, 1)),
  );
}

/** A `Watch` over `keys`. */
export function watchOf(...keys: Uint8Array[]): Uint8Array<ArrayBuffer> {
  return cat(...keys.map((k) => field(1, field(1, k))));
}

/** A `SnapshotRead` of one whole-database range of up to `limit` entries. */
export function fullRead(limit = 1000): Uint8Array<ArrayBuffer> {
  return field(1, num(3, limit));
}

/** A Deno KV key `[string]` in its tuple encoding (0x02 string 0x00). */
export function stringKey(s: string): Uint8Array<ArrayBuffer> {
  return cat(
    new Uint8Array([2]),
    new TextEncoder().encode(s),
    new Uint8Array([0]),
  );
}
