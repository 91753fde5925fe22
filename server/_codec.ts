/**
 * Byte-level codecs for the HTTP layer: percent-decoding of paths and query
 * parameters to bytes, base64 in and out, query flags and TTLs, and the
 * successor of a key (a cursor's resume point). Byte order itself
 * (`compareBytes`, `prefixEnd`) is the engine's, from `mod.ts`.
 *
 * Nothing here throws anything but {@link HttpError}, so a client's bad input
 * can never surface as a 500.
 *
 * @module
 */
import { Arena } from "../engine/coding.ts";

/**
 * A client error with its HTTP status and snake_case code: an `Error`
 * (`instanceof Error` holds, `message` is set) that never runs the `Error`
 * constructor, so it carries no stack trace. It is the client's mistake,
 * answered and never logged, and building an Error on Deno costs
 * microseconds, `Error.stackTraceLimit = 0` or not (measured): p75 4.2 us
 * against 7 ns for this class (`deno bench -A --filter Error
 * bench/micro/http_bench.ts`), more than the rest of a refused request.
 */
export class HttpError {
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string> | undefined;
  message: string;
  constructor(
    status: number,
    code: string,
    message: string,
    headers?: Record<string, string>,
  ) {
    this.status = status;
    this.code = code;
    this.message = message;
    this.headers = headers;
  }
}
// Declaration merging: the type has Error's members, and the prototype
// chain makes every instance an Error at run time.
export interface HttpError extends Error {}
Object.setPrototypeOf(HttpError.prototype, Error.prototype);

const encoder = new TextEncoder();
/**
 * Decoded keys and parameters are short-lived: carving them from slabs
 * avoids a backing-store allocation (~1.3 us here) per request.
 */
const keyArena = new Arena(64 * 1024);

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30; // 0-9
  if (c >= 0x41 && c <= 0x46) return c - 0x37; // A-F
  if (c >= 0x61 && c <= 0x66) return c - 0x57; // a-f
  return -1;
}

/**
 * The bytes of a short pure-ASCII string, or undefined (then TextEncoder
 * does it). Keys in URLs are mostly short ASCII; this skips an op call.
 */
function asciiBytes(text: string): Uint8Array | undefined {
  if (text.length > 256) return undefined;
  const out = keyArena.alloc(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x80) return undefined;
    out[i] = c;
  }
  return out;
}

/**
 * Percent-decodes `text` to raw bytes: `%FF` is the byte 0xFF, every other
 * character stands for its UTF-8 bytes. With `plusIsSpace` (query strings in
 * form encoding) `+` is a space. A `%` not followed by two hex digits, or a
 * U+FFFD (what the HTTP layer puts in place of bytes that were not UTF-8), is
 * a 400 naming `what`.
 */
export function percentDecode(
  text: string,
  what: string,
  plusIsSpace = false,
): Uint8Array {
  if (text.includes("\uFFFD")) {
    throw new HttpError(
      400,
      "invalid_encoding",
      `${what} contains bytes that are not valid UTF-8; percent-encode them`,
    );
  }
  if (!text.includes("%") && !(plusIsSpace && text.includes("+"))) {
    return asciiBytes(text) ?? encoder.encode(text);
  }
  const raw = encoder.encode(text);
  const out = new Uint8Array(raw.length);
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (c === 0x25) {
      const hi = i + 2 < raw.length ? hexValue(raw[i + 1]) : -1;
      const lo = hi >= 0 ? hexValue(raw[i + 2]) : -1;
      if (lo < 0) {
        throw new HttpError(
          400,
          "invalid_encoding",
          `${what} has a bad percent-escape at character ${i}`,
        );
      }
      out[n++] = (hi << 4) | lo;
      i += 2;
    } else if (c === 0x2b && plusIsSpace) {
      out[n++] = 0x20;
    } else {
      out[n++] = c;
    }
  }
  return out.subarray(0, n);
}

/**
 * Splits a raw query string (without `?`) into decoded name → bytes. Names
 * must be in `allowed`; a repeated or unknown name is a 400 so that typos
 * ("prefx") do not silently widen a scan.
 */
export function parseQuery(
  query: string,
  allowed: readonly string[],
): Map<string, Uint8Array> {
  const params = new Map<string, Uint8Array>();
  if (query === "") return params;
  for (const part of query.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const rawName = eq < 0 ? part : part.slice(0, eq);
    const name = new TextDecoder().decode(
      percentDecode(rawName, "query parameter name", true),
    );
    if (!allowed.includes(name)) {
      throw new HttpError(
        400,
        "invalid_parameter",
        allowed.length === 0
          ? `this route takes no query parameters (got "${clip(name)}")`
          : `unknown query parameter "${clip(name)}" (allowed: ${
            allowed.join(", ")
          })`,
      );
    }
    if (params.has(name)) {
      throw new HttpError(
        400,
        "invalid_parameter",
        `query parameter "${name}" given more than once`,
      );
    }
    const value = eq < 0 ? "" : part.slice(eq + 1);
    params.set(name, percentDecode(value, `query parameter "${name}"`, true));
  }
  return params;
}

/** Shortens client-supplied text before it is echoed in an error message. */
export function clip(text: string, max = 64): string {
  return text.length <= max ? text : `${text.slice(0, max)}...`;
}

/** Standard base64 with padding. */
export function toBase64(bytes: Uint8Array): string {
  return bytes.toBase64();
}

/**
 * Decodes standard or URL-safe base64 (padding optional). Anything else is a
 * 400 naming `what`.
 */
export function fromBase64(text: unknown, what: string): Uint8Array {
  if (typeof text !== "string") {
    throw new HttpError(400, "invalid_base64", `${what} must be a string`);
  }
  try {
    return Uint8Array.fromBase64(text, { alphabet: base64Alphabet(text) });
  } catch {
    throw invalidBase64(what);
  }
}

/** The alphabet `text` is written in: URL-safe if it has `-` or `_`. */
export function base64Alphabet(text: string): "base64" | "base64url" {
  return text.includes("-") || text.includes("_") ? "base64url" : "base64";
}

/** The 400 of a field that is not base64. */
export function invalidBase64(what: string): HttpError {
  return new HttpError(400, "invalid_base64", `${what} is not valid base64`);
}

/** The smallest key strictly greater than `key`: `key` followed by 0x00. */
export function successor(key: Uint8Array): Uint8Array {
  const out = new Uint8Array(key.length + 1);
  out.set(key);
  return out;
}

/** Decodes query bytes that must be ASCII text (numbers, flags, cursors). */
export function ascii(bytes: Uint8Array, what: string): string {
  for (const b of bytes) {
    if (b < 0x20 || b > 0x7e) {
      throw new HttpError(
        400,
        "invalid_parameter",
        `${what} must be printable ASCII`,
      );
    }
  }
  return String.fromCharCode(...bytes);
}

/** A flag parameter: absent is false; empty, `true` or `1` is true. */
export function parseBool(v: Uint8Array | undefined, what: string): boolean {
  if (v === undefined) return false;
  const t = ascii(v, what);
  if (t === "" || t === "true" || t === "1") return true;
  if (t === "false" || t === "0") return false;
  throw new HttpError(
    400,
    "invalid_parameter",
    `${what} must be true or false, got "${clip(t)}"`,
  );
}

/** 100 years: beyond that a TTL is a mistake, and the sum would lose precision. */
const MAX_TTL_SECONDS = 100 * 365 * 24 * 3600;

/** Parses a TTL in seconds written as text (`?ttl=1.5`). */
export function parseTtl(text: string, what: string): number {
  if (!/^[0-9]{1,12}(\.[0-9]{1,9})?$/.test(text)) {
    throw new HttpError(
      400,
      "invalid_parameter",
      `${what} must be a positive number of seconds, got "${clip(text)}"`,
    );
  }
  return checkTtl(Number(text), what);
}

/** Checks a TTL in seconds: positive, finite, at most 100 years. */
export function checkTtl(seconds: number, what: string): number {
  if (!(Number.isFinite(seconds) && seconds > 0)) {
    throw new HttpError(
      400,
      "invalid_parameter",
      `${what} must be a positive number of seconds`,
    );
  }
  if (seconds > MAX_TTL_SECONDS) {
    throw new HttpError(
      400,
      "invalid_parameter",
      `${what} must be at most ${MAX_TTL_SECONDS} seconds`,
    );
  }
  return seconds;
}

/** A plain object (not null, not an array). */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * A JSON request body (UTF-8) parsed; 400 `invalid_json` naming `what`
 * (`batch body`) when it is not UTF-8 or not JSON.
 */
export function parseJson(body: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(strictUtf8.decode(body));
  } catch (err) {
    throw new HttpError(
      400,
      "invalid_json",
      `${what} is not valid JSON: ${
        err instanceof Error ? clip(err.message, 120) : "parse error"
      }`,
    );
  }
}
