/**
 * Conditional requests: `If-Match` / `If-None-Match` entity-tag lists
 * (RFC 9110 §13.1) against a key's version, which is its ETag (`"12"`).
 *
 * {@link conditionFor} is the write path's linearizability rule: a 412
 * decided from a write that readers cannot see yet waits until that write
 * is visible (`db.whenSettled`), and is decided again if that write failed.
 *
 * @module
 */
import type { Db } from "../mod.ts";
import { HttpError } from "./_codec.ts";

/** Parsed If-Match / If-None-Match: `"*"`, or entity tags with weakness. */
export type Tags = "*" | { weak: boolean; version: number | undefined }[];

/** Parses an entity-tag list (RFC 9110 §8.8.3); undefined when absent. */
export function parseTags(
  header: string | null,
  name: string,
): Tags | undefined {
  if (header === null) return undefined;
  const h = header.trim();
  if (h === "*") return "*";
  const tags: { weak: boolean; version: number | undefined }[] = [];
  for (const part of h.split(",")) {
    const m = /^\s*(W\/)?"([\x21\x23-\x7e]*)"\s*$/.exec(part);
    if (m === null) {
      throw new HttpError(
        400,
        "invalid_header",
        `${name} must be * or a list of quoted entity tags such as "12"`,
      );
    }
    const v = /^[0-9]{1,16}$/.test(m[2]) ? Number(m[2]) : undefined;
    tags.push({
      weak: m[1] !== undefined,
      version: v !== undefined && Number.isSafeInteger(v) ? v : undefined,
    });
  }
  return tags;
}

/** If-Match uses strong comparison (weak tags never match); If-None-Match weak. */
export function tagsMatch(
  tags: Tags,
  version: number,
  strong: boolean,
): boolean {
  if (tags === "*") return true;
  return tags.some((t) => t.version === version && !(strong && t.weak));
}

/** The 412 that If-Match / If-None-Match give at `current`, or undefined. */
export function conditionFailure(
  ifMatch: Tags | undefined,
  ifNone: Tags | undefined,
  current: number | null,
): HttpError | undefined {
  if (ifMatch !== undefined) {
    if (current === null || !tagsMatch(ifMatch, current, true)) {
      return new HttpError(
        412,
        "precondition_failed",
        current === null
          ? "If-Match failed: the key does not exist"
          : `If-Match failed: current version is ${current}`,
        current === null ? undefined : { etag: `"${current}"` },
      );
    }
  }
  if (ifNone !== undefined && current !== null) {
    if (tagsMatch(ifNone, current, false)) {
      return new HttpError(
        412,
        "precondition_failed",
        `If-None-Match failed: the key exists at version ${current}`,
        { etag: `"${current}"` },
      );
    }
  }
  return undefined;
}

/**
 * Turns If-Match / If-None-Match into the engine's `ifVersion` (undefined:
 * unconditional; null: the key must not exist). The current version counts
 * writes still waiting for their fsync, and the engine re-checks
 * `ifVersion` atomically, so racing writers cannot both win. A 412 decided
 * from a write readers cannot see yet waits until that write is visible
 * (and is decided again if that write failed): answering earlier would
 * reveal a write that a following GET does not return.
 */
export async function conditionFor(
  db: Db,
  req: Request,
  key: Uint8Array,
): Promise<number | null | undefined> {
  const ifMatch = parseTags(req.headers.get("if-match"), "If-Match");
  const ifNone = parseTags(req.headers.get("if-none-match"), "If-None-Match");
  if (ifMatch === undefined && ifNone === undefined) return undefined;
  for (;;) {
    const current = db.version(key);
    const failure = conditionFailure(ifMatch, ifNone, current);
    if (failure === undefined) return current;
    const settled = db.whenSettled(key);
    if (settled === undefined || await settled) throw failure;
  }
}
