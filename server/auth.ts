/**
 * Bearer tokens, for every route family: the REST routes check the access
 * token with {@link BearerAuth}; KV Connect (`server/kv_connect/`) uses the
 * same parsing and the same constant-time comparison for its own tokens.
 *
 * Tokens are compared as SHA-256 digests with `timingSafeEqual`: both sides
 * have the same fixed length, so the time taken reveals neither the token's
 * bytes nor its length.
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { HttpError } from "./_codec.ts";

/** SHA-256 of `text` (UTF-8). */
export function sha256(text: string): Uint8Array {
  return createHash("sha256").update(text).digest();
}

/** True when `got` hashes to `want`, compared in constant time. */
export function matchesDigest(got: string, want: Uint8Array): boolean {
  return timingSafeEqual(sha256(got), want);
}

/** The token of an `Authorization: Bearer <token>` header, if there is one. */
export function bearerToken(req: Request): string | undefined {
  const header = req.headers.get("authorization");
  const m = header === null ? null : /^Bearer +(\S+) *$/i.exec(header);
  return m === null ? undefined : m[1];
}

const CHALLENGE = { "www-authenticate": 'Bearer realm="shale"' };

/** The REST routes' access check: one token, or none when `token` is unset. */
export class BearerAuth {
  readonly #digest: Uint8Array | undefined;

  /** `token` undefined: every request passes. */
  constructor(token: string | undefined) {
    this.#digest = token === undefined ? undefined : sha256(token);
  }

  /** Whether requests need a token at all. */
  get required(): boolean {
    return this.#digest !== undefined;
  }

  /** Throws 401 `unauthorized` unless `req` carries the token. */
  check(req: Request): void {
    if (this.#digest === undefined) return;
    const token = bearerToken(req);
    if (token === undefined) {
      throw new HttpError(
        401,
        "unauthorized",
        "missing bearer token (Authorization: Bearer <token>)",
        CHALLENGE,
      );
    }
    if (!matchesDigest(token, this.#digest)) {
      throw new HttpError(401, "unauthorized", "invalid token", CHALLENGE);
    }
  }
}
