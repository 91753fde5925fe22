import assert from "node:assert/strict";
import type { Entry } from "../../engine/entry.ts";
import { compareEntries } from "../../engine/entry.ts";
import { internalOrder } from "../../engine/memtable_order.ts";
import { putEntry } from "./_entries.ts";
import { bytes, enc, hex, Rng, testSeed, withSeed } from "../_helpers.ts";

const put = putEntry;

/** The model: a stable comparator sort in internal order. */
function modelOrder(entries: readonly Entry[]): number[] {
  return Array.from(entries.keys()).sort((a, b) =>
    compareEntries(
      entries[a].key,
      entries[a].seq,
      entries[b].key,
      entries[b].seq,
    ) ||
    a - b
  );
}

function check(entries: readonly Entry[]): void {
  const got = Array.from(internalOrder(entries));
  const want = modelOrder(entries);
  const show = (o: number[]) =>
    o.map((i) => `${hex(entries[i].key)}@${entries[i].seq}`);
  assert.deepEqual(show(got), show(want));
  assert.deepEqual(got, want);
}

Deno.test("internalOrder of no entries and of one entry", () => {
  assert.deepEqual(Array.from(internalOrder([])), []);
  assert.deepEqual(Array.from(internalOrder([put(enc("a"), 1)])), [0]);
});

Deno.test("internalOrder puts a key's versions newest first", () => {
  check([
    put(enc("b"), 1),
    put(enc("a"), 2),
    put(enc("b"), 3),
    put(enc("a"), 1),
  ]);
});

Deno.test("internalOrder sorts keys that share a long prefix and tie in the packed bytes", () => {
  // A shared prefix of 10 bytes, then keys equal in the next 5 bytes (the
  // packed ones) that differ only later, or only in length.
  const p = "0123456789";
  check(
    [
      `${p}abcdeZ`,
      `${p}abcde`,
      `${p}abcdeA`,
      `${p}abcdeAA`,
      `${p}abcd`,
      `${p}abc`,
      `${p}abcdf`,
    ].map((k, i) => put(enc(k), i + 1)),
  );
});

Deno.test("internalOrder tells keys padded with zero bytes from shorter ones", () => {
  // Packed bytes are zero-padded: 01, 01 00, 01 00 00 and 00 05 pack alike
  // or close, and must still sort as bytes.
  check(
    [
      bytes(1),
      bytes(1, 0),
      bytes(1, 0, 0),
      bytes(0, 5),
      bytes(1, 0, 0, 0, 0, 0, 0),
      bytes(1, 0, 0, 0, 0, 0),
      bytes(0),
      bytes(0xff),
    ].map((k, i) => put(k, i + 1)),
  );
});

Deno.test("internalOrder matches a comparator sort on random groups of every layout", async () => {
  await withSeed(testSeed(6161), (rng: Rng) => {
    // Sizes around the 5-byte layout's limit (8192) and within the
    // 4-byte one; keys over a small alphabet with random shared prefixes,
    // so packed bytes tie often and runs of every length occur.
    for (const n of [2, 7, 8, 9, 50, 1000, 8192, 8193, 12000]) {
      const prefix = rng.bytes(rng.int(6));
      const entries: Entry[] = [];
      for (let i = 0; i < n; i++) {
        const tail = rng.bytes(rng.int(9)).map((b) => [0, 1, 0xff][b % 3]);
        const key = new Uint8Array(prefix.length + tail.length);
        key.set(prefix);
        key.set(tail, prefix.length);
        if (key.length === 0) continue;
        entries.push(put(key, 1 + rng.int(4)));
      }
      check(entries);
    }
  });
});

Deno.test("internalOrder sorts db_bench-shaped keys (a space byte, zero-padded decimals)", async () => {
  await withSeed(testSeed(7272), (rng: Rng) => {
    const entries: Entry[] = [];
    for (let i = 0; i < 1000; i++) {
      const digits = String(rng.int(1_000_000)).padStart(16, "0");
      const key = new Uint8Array(17);
      key[0] = 1;
      key.set(enc(digits), 1);
      entries.push(put(key, 1 + rng.int(3)));
    }
    check(entries);
  });
});
