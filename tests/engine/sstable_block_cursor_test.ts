/**
 * The in-place block cursor (engine/sstable/block_cursor.ts) against
 * decodeBlock, the whole-block decoder, on blocks the BlockBuilder writes:
 * the same entries in the same order, whatever the key lengths (empty,
 * prefixes of one another, longer than the cursor's first buffer), and the
 * same errors on damaged blocks.
 */
import assert from "node:assert/strict";
import { compareBytes } from "../../engine/coding.ts";
import { type Entry, KIND_DELETE, KIND_PUT } from "../../engine/entry.ts";
import { BlockBuilder, decodeBlock } from "../../engine/sstable/block.ts";
import { BlockCursor } from "../../engine/sstable/block_cursor.ts";
import { TableFormatError } from "../../engine/sstable/format.ts";
import { bytes, hex, Rng, testSeed, withSeed } from "../_helpers.ts";

/** Sorted entries with unique keys of 0..maxLen bytes over a small alphabet. */
function randomBlockEntries(rng: Rng, n: number, maxLen: number): Entry[] {
  const keys = new Map<string, Uint8Array>();
  while (keys.size < n) {
    const len = rng.chance(0.1) ? rng.range(0, maxLen) : rng.range(0, 6);
    const k = new Uint8Array(len);
    for (let i = 0; i < len; i++) k[i] = 0x61 + rng.int(3);
    keys.set(hex(k), k);
  }
  const out: Entry[] = [];
  let seq = 10 * n;
  for (const key of [...keys.values()].sort(compareBytes)) {
    for (let v = rng.range(1, 2); v > 0; v--) {
      const del = rng.chance(0.2);
      out.push({
        key,
        seq: seq--,
        kind: del ? KIND_DELETE : KIND_PUT,
        encoding: rng.int(3),
        expiresAt: rng.chance(0.2) ? rng.range(1, 2 ** 40) : 0,
        value: del ? new Uint8Array(0) : rng.bytes(rng.range(0, 40)),
      });
    }
  }
  return out;
}

function build(entries: Entry[]): Uint8Array {
  const b = new BlockBuilder();
  for (const e of entries) {
    b.add(e.key, e.seq, e.kind, e.encoding, e.expiresAt, e.value);
  }
  return b.finish().slice();
}

/** Every entry the cursor yields, copied (its bytes change on each step). */
function walk(block: Uint8Array): Entry[] {
  const c = new BlockCursor();
  const out: Entry[] = [];
  c.reset(block);
  do {
    const e = c.entry;
    out.push({ ...e, key: e.key.slice(), value: e.value.slice() });
  } while (c.next());
  return out;
}

Deno.test("block cursor yields what decodeBlock decodes, for any key lengths", async () => {
  await withSeed(testSeed(1301), (rng) => {
    const c = new BlockCursor();
    for (let round = 0; round < 60; round++) {
      // Some rounds have keys longer than the cursor's first buffer.
      const maxLen = round % 3 === 0 ? 300 : 40;
      const entries = randomBlockEntries(rng, rng.range(1, 80), maxLen);
      const block = build(entries);
      const want = decodeBlock(block);
      assert.deepEqual(walk(block), want, `round ${round}`);
      // One cursor reused across blocks, as a table iterator reuses it.
      c.reset(block);
      let n = 1;
      while (c.next()) n++;
      assert.equal(n, want.length);
      assert.equal(c.next(), false, "stays at the end");
    }
  });
});

Deno.test("block cursor keeps one key view while the key length stays, and the bytes are the current key", () => {
  const entries: Entry[] = ["aa", "ab", "b", "ba", "bb"].map((k, i) => ({
    key: new TextEncoder().encode(k),
    seq: 10 - i,
    kind: KIND_PUT,
    encoding: 0,
    expiresAt: 0,
    value: bytes(i),
  }));
  const c = new BlockCursor();
  c.reset(build(entries));
  const first = c.entry.key;
  c.next();
  assert.equal(c.entry.key, first, "same length: same view");
  assert.equal(hex(first), hex(new TextEncoder().encode("ab")));
  c.next();
  assert.equal(c.entry.key.length, 1);
  c.next();
  c.next();
  assert.equal(new TextDecoder().decode(c.entry.key), "bb");
  assert.deepEqual(c.entry.value, bytes(4));
});

Deno.test("block cursor refuses empty and damaged blocks like decodeBlock", () => {
  const good = build([{
    key: bytes(1, 2, 3),
    seq: 5,
    kind: KIND_PUT,
    encoding: 0,
    expiresAt: 0,
    value: bytes(9, 9),
  }]);
  // No entries (one restart, count 1); a restart count past the block; a
  // value length running past the entry area; a shared length with no
  // previous key.
  const empty = bytes(0, 0, 0, 0, 1, 0, 0, 0);
  const badCount = good.slice();
  badCount[badCount.length - 4] = 200;
  const longValue = good.slice();
  longValue[3 + 2 + 1 + 2 + 1] = 100;
  const badShared = good.slice();
  badShared[0] = 1;
  for (
    const [what, block] of Object.entries({
      empty,
      badCount,
      longValue,
      badShared,
      short: bytes(1, 0),
    })
  ) {
    assert.throws(() => decodeBlock(block), TableFormatError, what);
    assert.throws(() => walk(block), TableFormatError, what);
  }
});
