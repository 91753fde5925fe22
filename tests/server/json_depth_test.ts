/**
 * The pre-parse nesting check (server/json_depth.ts): it counts only
 * brackets outside strings, allows exactly `maxDepth` levels, and refuses
 * one more with 400 `json_too_deep`.
 */
import assert from "node:assert/strict";
import { checkJsonDepth, MAX_JSON_DEPTH } from "../../server/json_depth.ts";
import { HttpError } from "../../server/_codec.ts";
import { enc } from "../_helpers.ts";

function tooDeep(text: string, max?: number): void {
  assert.throws(() => checkJsonDepth(enc(text), "batch body", max), (e) => {
    assert.ok(e instanceof HttpError, String(e));
    assert.equal(e.status, 400);
    assert.equal(e.code, "json_too_deep");
    assert.equal(
      e.message,
      `batch body nests arrays or objects deeper than ${
        max ?? MAX_JSON_DEPTH
      } levels`,
    );
    return true;
  });
}

Deno.test("exactly maxDepth levels pass; one more is refused", () => {
  const nest = (n: number) => "[".repeat(n) + "]".repeat(n);
  checkJsonDepth(enc(nest(MAX_JSON_DEPTH)), "body");
  tooDeep(nest(MAX_JSON_DEPTH + 1));
  checkJsonDepth(enc('{"a":{"b":[1]}}'), "body", 3);
  tooDeep('{"a":{"b":[1]}}', 2);
  // Mixed brackets count alike.
  tooDeep('[{"a":[{}]}]', 3);
});

Deno.test("siblings do not add up: depth falls at each closing bracket", () => {
  const siblings = "[" + "[[1],[2]],".repeat(1000) + "[]]";
  checkJsonDepth(enc(siblings), "body", 3);
  tooDeep(siblings, 2);
});

Deno.test("brackets inside strings, escaped quotes included, are not nesting", () => {
  checkJsonDepth(enc('{"k":"[[[[{{{{"}'), "body", 1);
  // An escaped quote does not end the string; the brackets after it are text.
  checkJsonDepth(enc('["a\\"[[[[[", 1]'), "body", 1);
  // An escaped backslash does end before the quote: what follows is JSON.
  tooDeep('["a\\\\", [[1]]]', 2);
  // Non-ASCII text in strings is skipped byte by byte.
  checkJsonDepth(enc('["é[[[漢字[[["]'), "body", 1);
});

Deno.test("malformed text is left to JSON.parse", () => {
  checkJsonDepth(enc("]]]]"), "body", 1);
  checkJsonDepth(enc('"unterminated [[[['), "body", 1);
  checkJsonDepth(enc(""), "body", 0);
});
