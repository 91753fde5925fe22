/**
 * The `--token-file` of `shale serve`: scoped tokens, each limited to a key
 * prefix and a mode. The file is JSON (format in docs/HTTP.md,
 * "Scoped tokens"):
 *
 * ```json
 * {"tokens": [
 *   {"token": "a-long-random-secret-1", "prefix": "app1/", "mode": "read-write"},
 *   {"token": "a-long-random-secret-2", "prefix_base64": "AAE=", "mode": "read"}
 * ]}
 * ```
 *
 * Like an SSH private key, the file must not be readable or writable by
 * group or others (POSIX mode bits `077` clear); it is refused otherwise.
 * Errors name the file and the entry's index, never a token.
 *
 * @module
 */
import { readFileSync, statSync } from "node:fs";
import process from "node:process";
import { fromBase64, isObject } from "./_codec.ts";
import { Scope } from "./scope.ts";
import { MIN_TOKEN_LENGTH } from "./cli_flags.ts";

/** One token of the file and what it may do. */
export interface ScopedToken {
  token: string;
  scope: Scope;
}

/** A token file that cannot be used; the message says why and where. */
export class TokenFileError extends Error {}

const FIELDS = ["token", "prefix", "prefix_base64", "mode"];
const encoder = new TextEncoder();

/**
 * Parses a token file's text. `adminToken` may not appear in it (the admin
 * token has every power; a scoped copy of it would be ambiguous).
 */
export function parseTokenFile(
  text: string,
  adminToken: string | undefined,
): ScopedToken[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new TokenFileError(
      `not JSON: ${err instanceof Error ? err.message : err}`,
    );
  }
  if (!isObject(doc) || !Array.isArray(doc.tokens)) {
    throw new TokenFileError('must be an object {"tokens": [...]}');
  }
  for (const k of Object.keys(doc)) {
    if (k !== "tokens") throw new TokenFileError(`unknown field "${k}"`);
  }
  const seen = new Set<string>();
  return doc.tokens.map((entry: unknown, i: number): ScopedToken => {
    const bad = (message: string) =>
      new TokenFileError(`tokens[${i}]: ${message}`);
    if (!isObject(entry)) throw bad("must be an object");
    for (const k of Object.keys(entry)) {
      if (!FIELDS.includes(k)) throw bad(`unknown field "${k}"`);
    }
    const token = entry.token;
    if (typeof token !== "string" || !/^[\x21-\x7e]+$/.test(token)) {
      throw bad("token must be printable ASCII without spaces");
    }
    if (token.length < MIN_TOKEN_LENGTH) {
      throw bad(
        `token must be at least ${MIN_TOKEN_LENGTH} characters, got ${token.length}`,
      );
    }
    if (token === adminToken) throw bad("token is the admin token");
    if (seen.has(token)) throw bad("token appears twice in the file");
    seen.add(token);
    if ((entry.prefix === undefined) === (entry.prefix_base64 === undefined)) {
      throw bad('give one of "prefix" (text) or "prefix_base64"');
    }
    let prefix: Uint8Array;
    if (entry.prefix !== undefined) {
      if (typeof entry.prefix !== "string") {
        throw bad("prefix must be a string");
      }
      prefix = encoder.encode(entry.prefix);
    } else {
      try {
        prefix = fromBase64(entry.prefix_base64, "prefix_base64");
      } catch (err) {
        throw bad((err as Error).message);
      }
    }
    if (entry.mode !== "read" && entry.mode !== "read-write") {
      throw bad('mode must be "read" or "read-write"');
    }
    return { token, scope: new Scope(prefix, entry.mode === "read-write") };
  });
}

/**
 * Reads and parses the token file at `path`, refusing one that group or
 * others may read or write. Throws {@link TokenFileError} naming the file.
 */
export function loadTokenFile(
  path: string,
  adminToken: string | undefined,
): ScopedToken[] {
  let text: string;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new Error("not a regular file");
    if (process.platform !== "win32" && (st.mode & 0o077) !== 0) {
      throw new TokenFileError(
        `${path}: group or others may access it (mode ${
          (st.mode & 0o777).toString(8).padStart(3, "0")
        }); run chmod 600 ${path}`,
      );
    }
    text = readFileSync(path, "utf8");
  } catch (err) {
    if (err instanceof TokenFileError) throw err;
    throw new TokenFileError(
      `${path}: ${err instanceof Error ? err.message : err}`,
    );
  }
  try {
    return parseTokenFile(text, adminToken);
  } catch (err) {
    throw new TokenFileError(`${path}: ${(err as Error).message}`);
  }
}
