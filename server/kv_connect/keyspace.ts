/**
 * Where KV Connect databases live inside the one shale store, and how
 * versionstamps map to seqnos.
 *
 * Every KV Connect key starts with the reserved byte 0x00, then a tag byte:
 *
 * ```
 * data of database <name>:   00 01 <name bytes> 00 <client key bytes>
 * id of database <name>:     00 02 <name bytes> 00        value: UUID text
 * ```
 *
 * `<name>` is 1 to {@link MAX_NAME_LENGTH} characters from `[A-Za-z0-9._-]`,
 * so it never holds a 0x00 and the terminator makes the layout prefix-free:
 * no key of one database is a key, or a prefix of a key, of another, and a
 * database's data range `[00 01 <name> 00, 00 01 <name> 01)` holds nothing
 * else. Deno's client encodes keys as ordered tuples whose first byte is a
 * type tag >= 0x01, so the client keys themselves need no escaping. The
 * `/deno-kv` URL without a name is the database named `default`.
 *
 * Keys written through the `/kv/` REST routes share the store: those starting
 * with 0x00 are this module's, so REST clients should leave that first byte
 * alone.
 *
 * Versionstamp: the commit's seqno as 8 bytes big-endian, then two zero
 * bytes. Seqnos start at 1 and increase with every commit, so versionstamps
 * are never zero, strictly increasing, and shared by a commit's mutations.
 *
 * @module
 */
import type { Db } from "../../mod.ts";

/** First byte of every key this module writes. */
export const RESERVED_BYTE = 0x00;
/** Tag byte of a database's data keys. */
export const TAG_DATA = 0x01;
/** Tag byte of a database's metadata (its id). */
export const TAG_ID = 0x02;
/** Terminator after the database name. */
export const NAME_END = 0x00;
/** Longest database name accepted. */
export const MAX_NAME_LENGTH = 64;
/** The name `/deno-kv` (no name) stands for. */
export const DEFAULT_DATABASE = "default";
/** Length of a versionstamp in bytes. */
export const VERSIONSTAMP_BYTES = 10;

const NAME_RE = /^[A-Za-z0-9._-]+$/;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** True when `name` is a valid database name. */
export function isValidName(name: string): boolean {
  return name.length >= 1 && name.length <= MAX_NAME_LENGTH &&
    NAME_RE.test(name);
}

function tagged(tag: number, name: string): Uint8Array {
  const n = encoder.encode(name);
  const out = new Uint8Array(n.length + 3);
  out[0] = RESERVED_BYTE;
  out[1] = tag;
  out.set(n, 2);
  out[n.length + 2] = NAME_END;
  return out;
}

/** The key prefix of database `name`'s data. */
export function dataPrefix(name: string): Uint8Array {
  return tagged(TAG_DATA, name);
}

/** The key holding database `name`'s id. */
export function idKey(name: string): Uint8Array {
  return tagged(TAG_ID, name);
}

/** `prefix + key` in a new array. */
export function join(prefix: Uint8Array, key: Uint8Array): Uint8Array {
  const out = new Uint8Array(prefix.length + key.length);
  out.set(prefix, 0);
  out.set(key, prefix.length);
  return out;
}

/**
 * The first key after every key starting with `prefix`. Every prefix made
 * here ends in 0x00, so incrementing the last byte is enough.
 */
export function prefixEnd(prefix: Uint8Array): Uint8Array {
  const out = prefix.slice();
  out[out.length - 1]++;
  return out;
}

/** Seqno -> 10-byte versionstamp. */
export function toVersionstamp(seq: number): Uint8Array {
  const out = new Uint8Array(VERSIONSTAMP_BYTES);
  new DataView(out.buffer).setBigUint64(0, BigInt(seq));
  return out;
}

/**
 * 10-byte versionstamp -> seqno, or -1 for a versionstamp shale never hands
 * out (nonzero trailing bytes, or beyond the safe-integer seqno range); such
 * a versionstamp matches no key.
 */
export function fromVersionstamp(vs: Uint8Array): number {
  if (vs.length !== VERSIONSTAMP_BYTES || vs[8] !== 0 || vs[9] !== 0) {
    return -1;
  }
  const v = new DataView(vs.buffer, vs.byteOffset, 8).getBigUint64(0);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(v);
}

const UUID_RE =
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The stored id of database `name`, or undefined when it has none yet. */
export function readDatabaseId(db: Db, name: string): string | undefined {
  const r = db.get(idKey(name));
  if (r === undefined) return undefined;
  const id = decoder.decode(r.value);
  if (!UUID_RE.test(id)) {
    throw new Error(`stored id of KV Connect database ${name} is not a UUID`);
  }
  return id;
}

/**
 * The id of database `name`, creating and persisting a random one on first
 * use. Two racing creators settle on the first write: the put is conditional
 * on the key being absent, and the loser reads the winner's id.
 */
export async function ensureDatabaseId(db: Db, name: string): Promise<string> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const existing = readDatabaseId(db, name);
    if (existing !== undefined) return existing;
    const id = crypto.randomUUID();
    try {
      await db.batch([{
        type: "put",
        key: idKey(name),
        value: encoder.encode(id),
        ifVersion: null,
      }]);
      return id;
    } catch (err) {
      if ((err as { code?: string }).code !== "precondition_failed") throw err;
      // Another request created it first (possibly still syncing): re-read.
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  throw new Error(`could not settle the id of KV Connect database ${name}`);
}
