import assert from "node:assert/strict";
import { BlockCache } from "../../engine/cache.ts";
import { prng } from "../_helpers.ts";

const block = (n: number, fill = 1) => new Uint8Array(n).fill(fill);

Deno.test("cache evicts least recently used blocks by bytes", () => {
  const c = new BlockCache(100);
  c.insert(1, 0, block(30));
  c.insert(1, 30, block(30));
  c.insert(2, 0, block(30));
  assert.equal(c.bytes, 90);
  // Touch (1, 0) so (1, 30) becomes the oldest.
  assert.ok(c.get(1, 0));
  c.insert(2, 30, block(30));
  assert.equal(c.get(1, 30), undefined);
  assert.ok(c.get(1, 0));
  assert.ok(c.get(2, 0));
  assert.ok(c.get(2, 30));
  assert.equal(c.bytes, 90);
  assert.equal(c.size, 3);
  assert.equal(c.evictions, 1);
  // One big block pushes out several small ones.
  c.insert(3, 0, block(80));
  assert.equal(c.size, 1);
  assert.equal(c.bytes, 80);
  assert.equal(c.evictions, 4);
});

Deno.test("cache counts hits and misses", () => {
  const c = new BlockCache(1000);
  assert.equal(c.get(1, 0), undefined);
  c.insert(1, 0, block(10, 7));
  assert.equal(c.get(1, 0)?.[0], 7);
  assert.equal(c.get(1, 0)?.[0], 7);
  assert.deepEqual(c.stats(), {
    hits: 2,
    misses: 1,
    evictions: 0,
    blocks: 1,
    bytes: 10,
    reserved: 0,
    capacity: 1000,
  });
});

Deno.test("memory reserved in the cache evicts blocks and shrinks what fits", () => {
  const c = new BlockCache(100);
  for (let i = 0; i < 10; i++) c.insert(1, i * 10, block(10, i));
  assert.equal(c.bytes, 100);
  c.reserve(35);
  // The four least recently used blocks went to make room.
  assert.equal(c.bytes, 60);
  assert.equal(c.get(1, 30), undefined);
  assert.equal(c.get(1, 40)?.[0], 4);
  // A block larger than what the reservation leaves is not cached.
  c.insert(2, 0, block(70, 1));
  assert.equal(c.get(2, 0), undefined);
  assert.ok(c.bytes + c.reserved <= c.capacity);
  c.release(35);
  c.insert(2, 0, block(70, 1));
  assert.equal(c.get(2, 0)?.[0], 1);
  assert.deepEqual([c.bytes, c.reserved], [100, 0]);
});

Deno.test("cache with capacity 0 caches nothing", () => {
  const c = new BlockCache(0);
  c.insert(1, 0, block(1));
  c.insert(1, 1, new Uint8Array(0));
  assert.equal(c.get(1, 0), undefined);
  assert.equal(c.size, 0);
  assert.equal(c.bytes, 0);
  assert.equal(c.misses, 1);
});

Deno.test("cache skips a block larger than its capacity and keeps the rest", () => {
  const c = new BlockCache(100);
  c.insert(1, 0, block(50));
  c.insert(1, 50, block(101));
  assert.equal(c.get(1, 50), undefined);
  assert.ok(c.get(1, 0));
  assert.equal(c.evictions, 0);
});

Deno.test("cache evictFile drops only that file's blocks", () => {
  const c = new BlockCache(1000);
  for (let off = 0; off < 5; off++) {
    c.insert(7, off * 10, block(10));
    c.insert(8, off * 10, block(10));
  }
  c.evictFile(7);
  c.evictFile(99);
  assert.equal(c.size, 5);
  assert.equal(c.bytes, 50);
  for (let off = 0; off < 5; off++) {
    assert.equal(c.get(7, off * 10), undefined);
    assert.ok(c.get(8, off * 10));
  }
  // The list is intact: filling up evicts file 8's blocks in LRU order.
  c.insert(9, 0, block(985));
  assert.equal(c.size, 2);
  assert.ok(c.get(8, 40));
});

Deno.test("cache replaces a block inserted twice under the same key", () => {
  const c = new BlockCache(100);
  c.insert(1, 0, block(40, 1));
  c.insert(1, 0, block(20, 2));
  assert.equal(c.bytes, 20);
  assert.equal(c.size, 1);
  assert.equal(c.get(1, 0)?.[0], 2);
  c.clear();
  assert.equal(c.size, 0);
  assert.equal(c.get(1, 0), undefined);
});

Deno.test("cache matches an LRU model over a seeded random workload", () => {
  const seed = 1234;
  const rng = prng(seed);
  const cap = 500;
  const c = new BlockCache(cap);
  // Model: array of [key, size], most recent last.
  let model: [string, number][] = [];
  for (let step = 0; step < 5000; step++) {
    const file = Math.floor(rng() * 4);
    const off = Math.floor(rng() * 20);
    const k = `${file}:${off}`;
    const r = rng();
    if (r < 0.5) {
      const got = c.get(file, off);
      const i = model.findIndex(([mk]) => mk === k);
      assert.equal(got !== undefined, i >= 0, `seed ${seed} step ${step} get`);
      if (i >= 0) {
        assert.equal(got!.length, model[i][1]);
        model.push(model.splice(i, 1)[0]);
      }
    } else if (r < 0.97) {
      const size = Math.floor(rng() * 120);
      c.insert(file, off, block(size));
      model = model.filter(([mk]) => mk !== k);
      model.push([k, size]);
      let total = model.reduce((s, [, n]) => s + n, 0);
      while (total > cap) total -= model.shift()![1];
    } else {
      c.evictFile(file);
      model = model.filter(([mk]) => !mk.startsWith(`${file}:`));
    }
    assert.equal(
      c.bytes,
      model.reduce((s, [, n]) => s + n, 0),
      `seed ${seed} step ${step} bytes`,
    );
    assert.equal(c.size, model.length, `seed ${seed} step ${step} size`);
  }
});
