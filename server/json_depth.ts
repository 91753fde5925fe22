/**
 * A cheap pre-parse check of JSON nesting. `JSON.parse` of a deeply nested
 * document (`[[[[...` ) costs far more time and memory than its size
 * suggests and blocks the event loop meanwhile; scanning the bytes first for
 * brackets outside strings refuses such a body in one linear pass with no
 * allocation.
 *
 * @module
 */
import { HttpError } from "./_codec.ts";

/** Deepest nesting any shale JSON body needs (`{"ops":[{...}]}` is 3). */
export const MAX_JSON_DEPTH = 32;

/**
 * Throws 400 `json_too_deep` when `bytes` (UTF-8 JSON text) nests arrays and
 * objects deeper than `maxDepth`. Malformed text is left to `JSON.parse`.
 */
export function checkJsonDepth(
  bytes: Uint8Array,
  what: string,
  maxDepth: number = MAX_JSON_DEPTH,
): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped byte
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) { // [ {
      if (++depth > maxDepth) {
        throw new HttpError(
          400,
          "json_too_deep",
          `${what} nests arrays or objects deeper than ${maxDepth} levels`,
        );
      }
    } else if (c === 0x5d || c === 0x7d) { // ] }
      depth--;
    }
  }
}
