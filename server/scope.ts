/**
 * What a scoped token may do: read, or read and write, the keys that start
 * with its prefix, and nothing else (`--token-file`, see `token_file.ts`).
 * The admin token and a server without auth have no scope (`undefined`):
 * they may do everything.
 *
 * Every data route checks each key or range it touches with
 * {@link authorizeKey} or {@link authorizeRange} before it reads or writes
 * anything, so a refusal (403 `forbidden`) reveals nothing about the keys
 * outside the prefix. A range is allowed only when it lies wholly inside the
 * prefix's range `[prefix, prefixEnd(prefix))`; it is refused rather than
 * clipped, so a client never mistakes a clipped answer for the whole range.
 *
 * @module
 */
import { compareBytes, prefixEnd } from "../mod.ts";
import { HttpError, toBase64 } from "./_codec.ts";

/** Whether an operation only reads or also changes keys. */
export type Access = "read" | "write";

/** The prefix and mode of one scoped token. */
export class Scope {
  /** Every key this token may touch starts with these bytes. */
  readonly prefix: Uint8Array;
  /** First key past the prefix; undefined when no key is (empty or all 0xff). */
  readonly end: Uint8Array | undefined;
  /** Whether the token may write (mode `read-write`) or only read (`read`). */
  readonly writable: boolean;

  constructor(prefix: Uint8Array, writable: boolean) {
    this.prefix = prefix;
    this.end = prefix.length === 0 ? undefined : prefixEnd(prefix);
    this.writable = writable;
  }

  /** The prefix as the user wrote it, for error messages. */
  describe(): string {
    return describePrefix(this.prefix);
  }
}

/**
 * Throws 403 `forbidden` unless `scope` may `access` the key. `what` names
 * the key in the message (`op 3 key`). No scope: always allowed.
 */
export function authorizeKey(
  scope: Scope | undefined,
  access: Access,
  key: Uint8Array,
  what = "the key",
): void {
  if (scope === undefined) return;
  checkMode(scope, access);
  const p = scope.prefix;
  let inside = key.length >= p.length;
  for (let i = 0; inside && i < p.length; i++) inside = key[i] === p[i];
  if (!inside) {
    throw forbidden(
      `${what} is outside this token's prefix ${scope.describe()}`,
    );
  }
}

/**
 * Throws 403 `forbidden` unless `scope` may `access` every key of
 * `[start, end)` (undefined bounds: the first and past the last key). Used
 * by range listings, the change feed and range ops of a batch.
 */
export function authorizeRange(
  scope: Scope | undefined,
  access: Access,
  start: Uint8Array | undefined,
  end: Uint8Array | undefined,
  what = "the range",
): void {
  if (scope === undefined) return;
  checkMode(scope, access);
  const startInside = start === undefined
    ? scope.prefix.length === 0
    : compareBytes(start, scope.prefix) >= 0;
  const endInside = scope.end === undefined ||
    (end !== undefined && compareBytes(end, scope.end) <= 0);
  if (!startInside || !endInside) {
    throw forbidden(
      `${what} reaches outside this token's prefix ${scope.describe()}; pass prefix (or start and end) within it`,
    );
  }
}

/** Throws 403 `forbidden` for a scoped token: the route needs the admin token. */
export function requireAdmin(scope: Scope | undefined, path: string): void {
  if (scope === undefined) return;
  throw forbidden(`${path} needs the admin token, not a scoped token`);
}

function checkMode(scope: Scope, access: Access): void {
  if (access === "write" && !scope.writable) {
    throw forbidden("this token may only read (mode read)");
  }
}

function forbidden(message: string): HttpError {
  return new HttpError(403, "forbidden", message);
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** `"app/"` for printable UTF-8, else `base64:AAE=`; `""` for the empty prefix. */
export function describePrefix(prefix: Uint8Array): string {
  try {
    const text = strictUtf8.decode(prefix);
    // deno-lint-ignore no-control-regex
    if (!/[\x00-\x1f\x7f]/.test(text)) return JSON.stringify(text);
  } catch {
    // not UTF-8: shown as base64 below
  }
  return `base64:${toBase64(prefix)}`;
}
