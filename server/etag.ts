/**
 * Conditional requests: `If-Match` / `If-None-Match` entity-tag lists
 * (RFC 9110 §13.1) against a key's version, which is its ETag (`"12"`).
 *
 * Versions are decimal strings of up to {@link MAX_VERSION_DIGITS} digits:
 * the engine's seqnos, or a KV Connect backend's 80-bit versionstamps.
 * Leading zeros do not count (`"012"` is version 12).
 *
 * @module
 */
import { HttpError } from "./_codec.ts";

/** Most digits of a version: 2^80 has 25. */
export const MAX_VERSION_DIGITS = 25;

/** Parsed If-Match / If-None-Match: `"*"`, or entity tags with weakness. */
export type Tags = "*" | { weak: boolean; version: string | undefined }[];

/**
 * The canonical decimal form of a version tag's text, or undefined when it
 * is not a version (not digits, or more than 80 bits).
 */
export function canonicalVersion(text: string): string | undefined {
  const t = text.replace(/^0+(?=[0-9])/, "");
  return /^[0-9]+$/.test(t) && t.length <= MAX_VERSION_DIGITS &&
      BigInt(t) < 1n << 80n
    ? t
    : undefined;
}

/** Parses an entity-tag list (RFC 9110 §8.8.3); undefined when absent. */
export function parseTags(
  header: string | null,
  name: string,
): Tags | undefined {
  if (header === null) return undefined;
  const h = header.trim();
  if (h === "*") return "*";
  const tags: { weak: boolean; version: string | undefined }[] = [];
  for (const part of h.split(",")) {
    const m = /^\s*(W\/)?"([\x21\x23-\x7e]*)"\s*$/.exec(part);
    if (m === null) {
      throw new HttpError(
        400,
        "invalid_header",
        `${name} must be * or a list of quoted entity tags such as "12"`,
      );
    }
    tags.push({ weak: m[1] !== undefined, version: canonicalVersion(m[2]) });
  }
  return tags;
}

/** If-Match uses strong comparison (weak tags never match); If-None-Match weak. */
export function tagsMatch(
  tags: Tags,
  version: number | string,
  strong: boolean,
): boolean {
  if (tags === "*") return true;
  const v = String(version);
  return tags.some((t) => t.version === v && !(strong && t.weak));
}

/** The 412 that If-Match / If-None-Match give at `current`, or undefined. */
export function conditionFailure(
  ifMatch: Tags | undefined,
  ifNone: Tags | undefined,
  current: number | string | null,
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
