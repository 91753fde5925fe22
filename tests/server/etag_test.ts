/** server/etag.ts: entity-tag lists and the conditions they make. */
import { deepEqual, equal, throws } from "node:assert/strict";
import { HttpError } from "../../server/_codec.ts";
import { conditionFailure, parseTags, tagsMatch } from "../../server/etag.ts";

Deno.test("parseTags reads *, strong and weak tags, and absent headers", () => {
  equal(parseTags(null, "If-Match"), undefined);
  equal(parseTags(" * ", "If-Match"), "*");
  deepEqual(parseTags('"3", W/"4" ,"x"', "If-Match"), [
    { weak: false, version: "3" },
    { weak: true, version: "4" },
    { weak: false, version: undefined },
  ]);
});

Deno.test("parseTags refuses unquoted tags with 400 invalid_header", () => {
  for (const bad of ["3", '"3', "W/3", '"3",,']) {
    throws(
      () => parseTags(bad, "If-None-Match"),
      (e) =>
        e instanceof HttpError && e.status === 400 &&
        e.code === "invalid_header" && e.message.startsWith("If-None-Match"),
      bad,
    );
  }
});

Deno.test("If-Match compares strongly, If-None-Match weakly", () => {
  const weak = parseTags('W/"7"', "x")!;
  equal(tagsMatch(weak, 7, true), false);
  equal(tagsMatch(weak, 7, false), true);
  equal(tagsMatch("*", 1, true), true);
  equal(tagsMatch(parseTags('"7"', "x")!, 8, false), false);
});

Deno.test("conditionFailure answers 412 with the current ETag, or nothing", () => {
  const m = parseTags('"5"', "If-Match");
  equal(conditionFailure(m, undefined, 5), undefined);
  const stale = conditionFailure(m, undefined, 6)!;
  equal(stale.status, 412);
  deepEqual(stale.headers, { etag: '"6"' });
  const absent = conditionFailure(m, undefined, null)!;
  equal(absent.message, "If-Match failed: the key does not exist");
  equal(absent.headers, undefined);
  const none = parseTags("*", "If-None-Match");
  equal(conditionFailure(undefined, none, null), undefined);
  equal(conditionFailure(undefined, none, 2)!.code, "precondition_failed");
});

Deno.test("versions are decimal up to 80 bits (a backend's versionstamps); leading zeros do not count", () => {
  const max = String((1n << 80n) - 1n);
  deepEqual(parseTags(`"${max}", "${1n << 80n}", "007"`, "If-Match"), [
    { weak: false, version: max },
    { weak: false, version: undefined },
    { weak: false, version: "7" },
  ]);
  equal(tagsMatch(parseTags(`"${max}"`, "x")!, max, true), true);
  equal(tagsMatch(parseTags('"007"', "x")!, 7, true), true);
});
