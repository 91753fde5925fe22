/**
 * DeeperRanges against the linear check it replaced (every range, one by
 * one), on random levels of keys from a small alphabet so that bounds,
 * prefixes, gaps and point ranges all occur; keys asked in ascending order
 * (as the merge asks) and in random order.
 */
import assert from "node:assert/strict";
import { compareBytes } from "../../engine/coding.ts";
import type { KeyRange } from "../../engine/deeper_ranges.ts";
import { DeeperRanges } from "../../engine/deeper_ranges.ts";
import { hex, type Rng, testSeed, withSeed } from "../_helpers.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const r = (smallest: string, largest: string): KeyRange => ({
  smallest: enc(smallest),
  largest: enc(largest),
});

function linear(levels: KeyRange[][], key: Uint8Array): boolean {
  return levels.flat().some((x) =>
    compareBytes(key, x.smallest) >= 0 && compareBytes(key, x.largest) <= 0
  );
}

function randomKey(rng: Rng): Uint8Array {
  const key = new Uint8Array(rng.range(1, 3));
  for (let i = 0; i < key.length; i++) key[i] = rng.int(4);
  return key;
}

function sortedUnique(keys: Uint8Array[]): Uint8Array[] {
  keys.sort(compareBytes);
  return keys.filter((k, i) => i === 0 || compareBytes(keys[i - 1], k) < 0);
}

/** A level >= 1: sorted, disjoint ranges, some of them a single key. */
function sortedLevel(rng: Rng): KeyRange[] {
  const bounds = sortedUnique(
    Array.from({ length: rng.range(0, 24) }, () => randomKey(rng)),
  );
  const out: KeyRange[] = [];
  for (let i = 0; i < bounds.length; i++) {
    if (rng.chance(0.2) || i + 1 === bounds.length) {
      out.push({ smallest: bounds[i], largest: bounds[i] });
    } else {
      out.push({ smallest: bounds[i], largest: bounds[i + 1] });
      i++;
    }
  }
  return out;
}

/** An L0-like level: ranges that may overlap, in no particular order. */
function looseLevel(rng: Rng): KeyRange[] {
  return Array.from({ length: rng.range(2, 5) }, () => {
    const [a, b] = [randomKey(rng), randomKey(rng)].sort(compareBytes);
    return { smallest: a, largest: b };
  });
}

Deno.test("DeeperRanges answers as a linear scan of every range, keys ascending or not", async () => {
  await withSeed(testSeed(0xdee9), (rng) => {
    for (let round = 0; round < 500; round++) {
      const levels = Array.from(
        { length: rng.range(0, 5) },
        () => rng.chance(0.15) ? looseLevel(rng) : sortedLevel(rng),
      );
      const keys = Array.from(
        { length: rng.range(0, 60) },
        () => randomKey(rng),
      );
      const ascending = [...keys].sort(compareBytes);
      // Sometimes restart from the start, as a second pass would.
      const orders = [ascending, keys, [...ascending, ...ascending]];
      for (const order of orders) {
        const d = new DeeperRanges(levels);
        assert.equal(d.empty, levels.every((l) => l.length === 0));
        for (const key of order) {
          assert.equal(
            d.contains(key),
            linear(levels, key),
            `round ${round}, key ${hex(key)}`,
          );
        }
      }
    }
  });
});

Deno.test("a range holds both of its bounds, and nothing just outside them", () => {
  const d = new DeeperRanges([[r("b", "d"), r("f", "f"), r("h", "j")]]);
  const asked = [
    "a",
    "b",
    "c",
    "d",
    "d\0",
    "e",
    "f",
    "f\0",
    "g",
    "h",
    "j",
    "k",
  ];
  assert.deepEqual(
    asked.filter((k) => d.contains(enc(k))),
    ["b", "c", "d", "f", "h", "j"],
  );
});

Deno.test("no ranges hold no key", () => {
  const d = new DeeperRanges([[], []]);
  assert.equal(d.empty, true);
  assert.equal(d.contains(enc("a")), false);
  assert.equal(new DeeperRanges([]).contains(new Uint8Array(0)), false);
});

Deno.test("a key behind the cursor is still found", () => {
  const d = new DeeperRanges([[r("a", "b"), r("m", "n"), r("x", "y")]]);
  assert.equal(d.contains(enc("y")), true);
  assert.equal(d.contains(enc("a")), true);
  assert.equal(d.contains(enc("c")), false);
  assert.equal(d.contains(enc("n")), true);
  assert.equal(d.contains(enc("z")), false);
  assert.equal(d.contains(enc("b")), true);
});

Deno.test("a level whose ranges overlap or are out of order is checked range by range", () => {
  // Sorted by smallest, but overlapping (L0-like), and unsorted.
  const d = new DeeperRanges([
    [r("a", "m"), r("c", "e")],
    [r("x", "y"), r("p", "q")],
  ]);
  for (const [k, want] of [["d", true], ["p", true], ["n", false]] as const) {
    assert.equal(d.contains(enc(k)), want, k);
  }
});
