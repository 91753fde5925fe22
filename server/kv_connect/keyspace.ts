/**
 * Where KV Connect databases live inside the one shale store, and how
 * versionstamps map to seqnos.
 *
 * KV Connect keeps its keys in the engine's key space
 * {@link KV_CONNECT_SPACE}, apart from every key of the `/kv/` REST routes
 * (which use the user key space, all of it). Inside that space, a tag byte:
 *
 * ```
 * data of database <name>:   01 <name bytes> 00 <client key bytes>
 * id of database <name>:     02 <name bytes> 00        value: UUID text
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
 * Versionstamp: the commit's seqno as 8 bytes big-endian, then two zero
 * bytes. Seqnos start at 1 and increase with every commit, so versionstamps
 * are never zero, strictly increasing, and shared by a commit's mutations.
 * A key with a versionstamp suffix (`kv.set(["a", kv.commitVersionstamp()])`)
 * ends, as in denokv, with the tuple element string of the versionstamp's
 * 20 lowercase hex digits: `02 <20 hex digits> 00`.
 *
 * @module
 */
import type { Db, KeySpace } from "../../mod.ts";

/** The engine key space of every KV Connect key. */
export const KV_CONNECT_SPACE = 1;
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
/** Length of a key's versionstamp suffix: tag, 20 hex digits, terminator. */
export const VERSIONSTAMP_SUFFIX_BYTES = 22;

const NAME_RE = /^[A-Za-z0-9._-]+$/;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** True when `name` is a valid database name. */
export function isValidName(name: string): boolean {
  return name.length >= 1 && name.length <= MAX_NAME_LENGTH &&
    NAME_RE.test(name);
}

/** The key space of `db` that holds every KV Connect database. */
export function kvConnectSpace(db: Db): KeySpace {
  return db.keySpace(KV_CONNECT_SPACE);
}

function tagged(tag: number, name: string): Uint8Array {
  const n = encoder.encode(name);
  const out = new Uint8Array(n.length + 2);
  out[0] = tag;
  out.set(n, 1);
  out[n.length + 1] = NAME_END;
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

/** Seqno -> 10-byte versionstamp. */
export function toVersionstamp(seq: number): Uint8Array {
  const out = new Uint8Array(VERSIONSTAMP_BYTES);
  new DataView(out.buffer).setBigUint64(0, BigInt(seq));
  return out;
}

const HEX = encoder.encode("0123456789abcdef");

/**
 * Writes the versionstamp suffix of seqno `seq` (see the module doc) into
 * `key`'s last {@link VERSIONSTAMP_SUFFIX_BYTES} bytes.
 */
export function writeVersionstampSuffix(key: Uint8Array, seq: number): void {
  const vs = toVersionstamp(seq);
  let at = key.length - VERSIONSTAMP_SUFFIX_BYTES;
  key[at++] = 0x02; // string element
  for (const b of vs) {
    key[at++] = HEX[b >> 4];
    key[at++] = HEX[b & 15];
  }
  key[at] = 0x00;
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
export function readDatabaseId(
  db: KeySpace,
  name: string,
): string | undefined {
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
export async function ensureDatabaseId(
  db: KeySpace,
  name: string,
): Promise<string> {
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
