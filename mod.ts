/**
 * shale: a persistent key/value store built on a log-structured merge tree.
 *
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "./mod.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const db = await open(dir, { background: "inline" });
 * const enc = new TextEncoder();
 * const version = await db.put(enc.encode("hello"), enc.encode("world"));
 * const got = db.get(enc.encode("hello"));
 * assert.equal(new TextDecoder().decode(got!.value), "world");
 * assert.equal(got!.version, version);
 * await db.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */
export { Db, open } from "./engine/db.ts";
export { MAX_KEY_SPACE, USER_KEY_SPACE } from "./engine/types.ts";
export type {
  BatchOp,
  Change,
  ChangeGroup,
  ChangeListener,
  Compression,
  DbOptions,
  DeleteRangeOp,
  KeySpace,
  PutOptions,
  ReadMode,
  ReadResult,
  RecoveryInfo,
  ScanItem,
  ScanOptions,
  Snapshot,
  SyncMode,
  VersionedKey,
} from "./engine/types.ts";
export * from "./engine/errors.ts";
export type { ChangeHistory } from "./engine/changes.ts";
export {
  ENCODING_RAW,
  ENCODING_U64LE,
  ENCODING_V8,
  KIND_DELETE,
  KIND_PUT,
} from "./engine/entry.ts";
export { realFs } from "./engine/fs.ts";
/**
 * The store's key order (unsigned bytes, shorter prefix first) and the first
 * key after a prefix, for callers that sort keys or bound a prefix scan the
 * way the engine does.
 */
export { compareBytes, prefixEnd } from "./engine/coding.ts";
export type {
  DirLock,
  FileSystem,
  OpenWritableOptions,
  ReadableFile,
  WritableFile,
} from "./engine/fs.ts";
export type { ResolvedOptions } from "./engine/options.ts";
export { verify } from "./engine/verify.ts";
export type {
  VerifyError,
  VerifyOptions,
  VerifyReport,
} from "./engine/verify.ts";
