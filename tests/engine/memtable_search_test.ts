import assert from "node:assert/strict";
import { bigEndianWords, compareBytes } from "../../engine/coding.ts";
import { compareEntries, type Entry, KIND_PUT } from "../../engine/entry.ts";
import { Memtable } from "../../engine/memtable.ts";
import { KLEN, LINKS, SEQ } from "../../engine/memtable_layout.ts";
import {
  compareNode,
  findFromSplice,
  findLast,
  findLessThan,
} from "../../engine/memtable_search.ts";
import { enc, Rng, testSeed, withSeed } from "../_helpers.ts";

/**
 * A memtable's pool (from its image) with room after it for probe keys,
 * which findFromSplice reads from the pool itself, as an insert's record.
 */
function poolOf(m: Memtable): {
  u: Uint32Array;
  f: Float64Array;
  height: number;
  top: number;
} {
  const img = m.image();
  const buf = new ArrayBuffer(img.pool.byteLength + 4096);
  new Uint8Array(buf).set(new Uint8Array(img.pool));
  return {
    u: new Uint32Array(buf),
    f: new Float64Array(buf),
    height: img.height,
    top: img.pool.byteLength >>> 2,
  };
}

function keyOf(u: Uint32Array, f: Float64Array, n: number, all: Entry[]) {
  // Nodes are identified through their seqno (unique in these lists).
  const seq = f[(n >>> 1) + SEQ];
  const e = all.find((x) => x.seq === seq)!;
  assert.equal(u[n + KLEN], e.key.length);
  return e;
}

function filled(rng: Rng, count: number): { m: Memtable; all: Entry[] } {
  const m = new Memtable();
  const all: Entry[] = [];
  for (let seq = 1; seq <= count; seq++) {
    const e: Entry = {
      key: enc(`k${rng.int(count * 2)}`),
      seq,
      kind: KIND_PUT,
      encoding: 0,
      expiresAt: 0,
      value: enc("v"),
    };
    m.add(e);
    all.push(e);
  }
  all.sort((a, b) => compareEntries(a.key, a.seq, b.key, b.seq));
  return { m, all };
}

Deno.test("compareNode orders a node against a key held as words, the head first", () => {
  const m = new Memtable();
  m.add({
    key: enc("abcde"),
    seq: 5,
    kind: KIND_PUT,
    encoding: 0,
    expiresAt: 0,
    value: enc("v"),
  });
  const { u, f } = poolOf(m);
  const n = u[LINKS]; // the only node
  const cmp = (key: string, seq: number) => {
    const w = new Uint32Array(4);
    bigEndianWords(enc(key), w);
    return Math.sign(compareNode(u, f, n, w, 0, key.length, seq));
  };
  assert.equal(cmp("abcde", 5), 0);
  assert.equal(cmp("abcde", 6), 1, "a newer version sorts first");
  assert.equal(cmp("abcde", 4), -1);
  assert.equal(cmp("abcd", 5), 1, "a prefix sorts first");
  assert.equal(cmp("abcdef", 5), -1);
  assert.equal(cmp("abd", 5), -1);
  assert.equal(cmp("abcdd", 9), 1);
  assert.equal(compareNode(u, f, 0, new Uint32Array(1), 0, 1, 1), -1);
});

Deno.test("findLessThan and findLast agree with a sorted model", async () => {
  await withSeed(testSeed(8080), (rng: Rng) => {
    const { m, all } = filled(rng, 3000);
    const { u, f, height } = poolOf(m);
    assert.equal(keyOf(u, f, findLast(u, height), all), all.at(-1));
    const w = new Uint32Array(8);
    for (let i = 0; i < 500; i++) {
      const key = enc(`k${rng.int(6000)}`);
      const seq = rng.range(1, 3001);
      bigEndianWords(key, w);
      const prev = new Uint32Array(height);
      const x = findLessThan(u, f, height, w, 0, key.length, seq, prev);
      const want = all.findLast((e) =>
        compareEntries(e.key, e.seq, key, seq) < 0
      );
      assert.equal(x === 0 ? undefined : keyOf(u, f, x, all), want);
      assert.equal(prev[0], x);
    }
  });
});

Deno.test("findFromSplice walked over sorted keys lands where a search from the head does", async () => {
  await withSeed(testSeed(9090), (rng: Rng) => {
    const { m } = filled(rng, 5000);
    const { u, f, height, top } = poolOf(m);
    // Sorted probes (key ascending, seqno descending), each held in the
    // pool after the records, as an insert's own record holds its key.
    const probes = Array.from({ length: 400 }, () => ({
      key: enc(`k${rng.int(10000)}`),
      seq: rng.range(1, 6000),
    })).sort((a, b) => compareEntries(a.key, a.seq, b.key, b.seq));
    const prev = new Uint32Array(height);
    const next = new Uint32Array(height);
    for (let i = 0; i < height; i++) next[i] = u[LINKS + i];
    let last: Uint8Array | undefined;
    for (const p of probes) {
      bigEndianWords(p.key, u, top);
      findFromSplice(u, f, height, prev, next, top, p.key.length, p.seq);
      const want = new Uint32Array(height);
      findLessThan(u, f, height, u, top, p.key.length, p.seq, want);
      assert.deepEqual(prev, want);
      for (let i = 0; i < height; i++) {
        assert.equal(next[i], u[prev[i] + LINKS + i], `level ${i}`);
      }
      if (last) assert.ok(compareBytes(last, p.key) <= 0);
      last = p.key;
    }
  });
});
