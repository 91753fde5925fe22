/**
 * KV Connect's tokens: the access token the metadata exchange checks, and
 * the per-database data-path tokens it hands out (an HMAC of the database
 * name and expiry under the access token, so they survive restarts).
 *
 * @module
 */
import { createHmac } from "node:crypto";
import { bearerToken, matchesDigest } from "../auth.ts";
import { sha256 } from "../token_digest.ts";
import { KvConnectError } from "./errors.ts";

/** The challenge of every 401 on KV Connect routes. */
export const CHALLENGE = {
  "www-authenticate": 'Bearer realm="shale-kv-connect"',
};
/** The HMAC key of data-path tokens without an access token (any bearer then gets one). */
const OPEN_TOKEN = "shale-no-auth";

/** sha256 digests of expected tokens, so a request hashes only its own. */
const digests = new Map<string, Uint8Array>();

function digestOf(token: string): Uint8Array {
  let d = digests.get(token);
  if (d === undefined) {
    if (digests.size >= 1024) digests.clear();
    digests.set(token, d = sha256(token));
  }
  return d;
}

/**
 * Data-path tokens computed so far, by access token, name and expiry: every
 * KV Connect data request checks its token against the one expected, and
 * the HMAC took ~30 µs of server CPU per request (a serial `kv.get` loop:
 * 220 -> 190 µs with this cache). A client reuses one token until it
 * expires, so the entries are few; the map is emptied past 1024.
 */
const issued = new Map<string, string>();

/**
 * The data-path token of database `name`, valid until `expiresAt` (ms since
 * epoch): `<expiresAt>.<HMAC of name and expiry under the access token>`, so
 * it survives restarts, differs per database, stops working when the access
 * token changes, and expires when the metadata says it does. Without an
 * access token anyone may get one, but it still expires.
 */
export function dataToken(
  authToken: string | undefined,
  name: string,
  expiresAt: number,
): string {
  const key = `${authToken ?? ""}\0${name}\0${expiresAt}`;
  let t = issued.get(key);
  if (t === undefined) {
    if (issued.size >= 1024) issued.clear();
    issued.set(key, t = computeDataToken(authToken, name, expiresAt));
  }
  return t;
}

function computeDataToken(
  authToken: string | undefined,
  name: string,
  expiresAt: number,
): string {
  const mac = createHmac("sha256", authToken ?? OPEN_TOKEN)
    .update(`shale kv-connect data path\0${name}\0${expiresAt}`)
    .digest("base64url");
  return `${expiresAt}.${mac}`;
}

/** Refuses (401) a data-path token that is not ours for `name` or expired. */
export function requireDataToken(
  req: Request,
  ctx: { authToken?: string; clock?: () => number },
  name: string,
): void {
  const got = bearerToken(req);
  const m = got === undefined ? null : /^([0-9]{1,16})\./.exec(got);
  const expiresAt = m === null ? 0 : Number(m[1]);
  requireToken(
    req,
    dataToken(ctx.authToken, name, expiresAt),
    "data-path token",
  );
  if (expiresAt <= (ctx.clock ?? Date.now)()) {
    throw new KvConnectError(
      401,
      "data-path token expired; repeat the metadata exchange",
      CHALLENGE,
    );
  }
}

export function requireToken(req: Request, want: string, what: string): void {
  const got = bearerToken(req);
  if (got === undefined) {
    throw new KvConnectError(
      401,
      `missing ${what} (Authorization: Bearer <token>)`,
      CHALLENGE,
    );
  }
  if (!matchesDigest(got, digestOf(want))) {
    throw new KvConnectError(401, `invalid ${what}`, CHALLENGE);
  }
}
