/** server/cursors.ts: the cursor codec and the snapshot cache. */
import { deepEqual, equal, notDeepEqual, ok, throws } from "node:assert/strict";
import { createHash } from "node:crypto";
import type { Snapshot } from "../../mod.ts";
import { HttpError } from "../../server/_codec.ts";
import {
  cursorBinding,
  CursorSnapshots,
  decodeCursor,
  encodeCursor,
} from "../../server/cursors.ts";

const b = (s: string) => new TextEncoder().encode(s);

/** A snapshot that records its release. */
function fakeSnapshot(released: string[], name: string): Snapshot {
  return { seq: 1, release: () => void released.push(name) };
}

Deno.test("a cursor decodes to what was encoded", () => {
  const c = {
    reverse: true,
    binding: cursorBinding(b("a"), undefined, undefined),
    snapshotId: "00112233445566778899aabbccddeeff",
    lastKey: b("key\u0000x"),
  };
  deepEqual(decodeCursor(encodeCursor(c)), c);
});

Deno.test("the binding tells ranges apart; an empty bound is no bound", () => {
  const none = cursorBinding(undefined, undefined, undefined);
  deepEqual(cursorBinding(new Uint8Array(0), undefined, undefined), none);
  notDeepEqual(cursorBinding(b("a"), undefined, undefined), none);
  // start "ab" is not end "ab", nor start "a" with end "b".
  notDeepEqual(
    cursorBinding(b("ab"), undefined, undefined),
    cursorBinding(undefined, b("ab"), undefined),
  );
  notDeepEqual(
    cursorBinding(b("ab"), undefined, undefined),
    cursorBinding(b("a"), b("b"), undefined),
  );
});

Deno.test("the binding is the first 8 bytes of SHA-256 over the framed bounds, as node:crypto computes it", () => {
  // The framing: [0] for an absent or empty bound, else [1][u32 BE length][bytes].
  const frame = (part?: Uint8Array) =>
    part === undefined || part.length === 0
      ? [0]
      : [1, 0, 0, part.length >> 8, part.length & 255, ...part];
  const cases: [Uint8Array?, Uint8Array?, Uint8Array?][] = [
    [],
    [b("a")],
    [undefined, b("zz"), undefined],
    [b("k000"), b("k999"), undefined],
    [undefined, undefined, b("users/")],
    [new Uint8Array(300).fill(7), new Uint8Array(0), b("p")],
  ];
  for (const [start, end, prefix] of cases) {
    const framed = new Uint8Array([
      ...frame(start),
      ...frame(end),
      ...frame(prefix),
    ]);
    const want = createHash("sha256").update(framed).digest().subarray(0, 8);
    deepEqual(
      cursorBinding(start, end, prefix),
      new Uint8Array(want),
    );
  }
});

Deno.test("text that is not our cursor is 400 invalid_cursor", () => {
  for (const bad of ["", "!!!", "AA", encodeURIComponent("x".repeat(40))]) {
    throws(
      () => decodeCursor(bad),
      (e) => e instanceof HttpError && e.code === "invalid_cursor",
      bad,
    );
  }
});

Deno.test("the cache keeps a snapshot for its TTL and hands it back once", () => {
  const released: string[] = [];
  const log: string[] = [];
  const c = new CursorSnapshots(
    { ttlMs: 100, maxAgeMs: 1000, max: 10, maxPerClient: 10 },
    (_l, m) => void log.push(m),
  );
  const id = c.keep(undefined, fakeSnapshot(released, "s1"), 0, "a", 0);
  equal(c.size, 1);
  const r = c.resume(id, 50)!;
  equal(r.createdAt, 0);
  equal(c.size, 0, "a resumed snapshot belongs to the request");
  equal(c.resume(id, 50), undefined);
  c.keep(id, r.snapshot, r.createdAt, "a", 50);
  c.releaseExpired(151);
  deepEqual(released, ["s1"]);
  equal(c.expired, 1);
  deepEqual(log, []);
});

Deno.test("past its maximum age a cursor gets 410 cursor_expired", () => {
  const released: string[] = [];
  const c = new CursorSnapshots(
    { ttlMs: 1000, maxAgeMs: 100, max: 10, maxPerClient: 10 },
    () => {},
  );
  const id = c.keep(undefined, fakeSnapshot(released, "s"), 0, "a", 0);
  throws(
    () => c.resume(id, 100),
    (e) => e instanceof HttpError && e.status === 410,
  );
  deepEqual(released, ["s"]);
});

Deno.test("a client past its share evicts its own oldest cursor, not others'", () => {
  const released: string[] = [];
  const c = new CursorSnapshots(
    { ttlMs: 1000, maxAgeMs: 1000, max: 10, maxPerClient: 2 },
    () => {},
  );
  const other = c.keep(undefined, fakeSnapshot(released, "b1"), 0, "b", 0);
  c.keep(undefined, fakeSnapshot(released, "a1"), 0, "a", 1);
  c.keep(undefined, fakeSnapshot(released, "a2"), 0, "a", 2);
  c.keep(undefined, fakeSnapshot(released, "a3"), 0, "a", 3);
  deepEqual(released, ["a1"]);
  ok(c.resume(other, 4) !== undefined);
  c.close();
  deepEqual(released.sort(), ["a1", "a2", "a3"]);
});
