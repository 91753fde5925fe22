/**
 * Bearer tokens, for every route family: the REST routes check the access
 * token with {@link BearerAuth}; KV Connect (`server/kv_connect/`) uses the
 * same parsing and the same constant-time comparison for its own tokens.
 *
 * Tokens are compared as SHA-256 digests in constant time
 * (`token_digest.ts`): both sides have the same fixed length, so the time
 * taken reveals neither the token's bytes nor its length.
 *
 * @module
 */
import { InvalidArgumentError } from "../mod.ts";
import { HttpError } from "./_codec.ts";
import { requestHeader } from "./request_headers.ts";
import { digestsEqual, sha256, sha256Into } from "./token_digest.ts";
import type { Scope } from "./scope.ts";
import type { ScopedToken } from "./token_file.ts";

/** True when `got` hashes to `want`, compared in constant time. */
export { matchesDigestOf as matchesDigest } from "./token_digest.ts";

/** The token of an `Authorization: Bearer <token>` header, if there is one. */
export function bearerToken(req: Request): string | undefined {
  const header = requestHeader(req, "authorization");
  const m = header === null ? null : /^Bearer +(\S+) *$/i.exec(header);
  return m === null ? undefined : m[1];
}

const CHALLENGE = { "www-authenticate": 'Bearer realm="shale"' };

/**
 * The REST routes' access check: the admin token (every power), the scoped
 * tokens of `--token-file` (a key prefix and a mode each, see `scope.ts`),
 * or no token at all when the admin token is unset.
 *
 * A presented token is hashed once and compared with every known digest,
 * without stopping at a match, so the time taken depends only on how many
 * tokens there are.
 */
export class BearerAuth {
  readonly #digest: Uint8Array | undefined;
  /** The presented token's digest, per check (checks are synchronous). */
  readonly #got = new Uint8Array(32);
  #scoped: { digest: Uint8Array; scope: Scope }[] = [];

  /**
   * `token` undefined: every request passes (then `scoped` must be empty:
   * scoped tokens would mean nothing when no token is needed).
   */
  constructor(token: string | undefined, scoped: ScopedToken[] = []) {
    this.#digest = token === undefined ? undefined : sha256(token);
    this.setScoped(scoped);
  }

  /** Whether requests need a token at all. */
  get required(): boolean {
    return this.#digest !== undefined;
  }

  /** How many scoped tokens are known. */
  get scopedCount(): number {
    return this.#scoped.length;
  }

  /** Replaces the scoped tokens (a reloaded `--token-file`). */
  setScoped(scoped: ScopedToken[]): void {
    if (this.#digest === undefined && scoped.length > 0) {
      throw new InvalidArgumentError(
        "scoped tokens need an admin token (authToken) as well",
      );
    }
    this.#scoped = scoped.map((t) => ({
      digest: sha256(t.token),
      scope: t.scope,
    }));
  }

  /**
   * Throws 401 `unauthorized` unless `req` carries a known token. Returns
   * the token's scope, or undefined for the admin token (or no auth).
   */
  check(req: Request): Scope | undefined {
    if (this.#digest === undefined) return undefined;
    const token = bearerToken(req);
    if (token === undefined) {
      throw new HttpError(
        401,
        "unauthorized",
        "missing bearer token (Authorization: Bearer <token>)",
        CHALLENGE,
      );
    }
    const got = this.#got;
    sha256Into(token, got);
    let admin = digestsEqual(got, this.#digest);
    let scope: Scope | undefined;
    for (const t of this.#scoped) {
      if (digestsEqual(got, t.digest)) scope = t.scope;
    }
    // Parsing refuses a scoped token equal to the admin token; were one
    // there anyway, the narrower power wins.
    if (scope !== undefined) admin = false;
    if (!admin && scope === undefined) {
      throw new HttpError(401, "unauthorized", "invalid token", CHALLENGE);
    }
    return scope;
  }
}
