import assert from "node:assert/strict";
import {
  BLOOM_MAX_PROBES,
  BloomFilterBuilder,
  bloomHash,
  bloomHashAt,
  bloomMayContain,
  bloomMayContainHash,
  bloomProbes,
  buildBloomFilter,
} from "../../engine/bloom.ts";
import { prng } from "../_helpers.ts";

const enc = new TextEncoder();

function randomKey(rng: () => number, min: number, max: number): Uint8Array {
  const k = new Uint8Array(min + Math.floor(rng() * (max - min + 1)));
  for (let i = 0; i < k.length; i++) k[i] = Math.floor(rng() * 256);
  return k;
}

function measure(
  added: Uint8Array[],
  probes: Uint8Array[],
  bitsPerKey: number,
): { filter: Uint8Array; fpRate: number } {
  const b = new BloomFilterBuilder(bitsPerKey);
  for (const k of added) b.addKey(k);
  const filter = b.finish();
  for (const k of added) {
    assert.ok(bloomMayContain(filter, k), "false negative");
  }
  let fp = 0;
  for (const k of probes) if (bloomMayContain(filter, k)) fp++;
  return { filter, fpRate: fp / probes.length };
}

Deno.test("bloom has about 1% false positives at 10 bits per key on sequential keys", () => {
  const added: Uint8Array[] = [];
  for (let i = 0; i < 10_000; i++) {
    added.push(enc.encode(`user:${String(i).padStart(8, "0")}`));
  }
  const probes: Uint8Array[] = [];
  for (let i = 10_000; i < 110_000; i++) {
    probes.push(enc.encode(`user:${String(i).padStart(8, "0")}`));
  }
  const { fpRate, filter } = measure(added, probes, 10);
  assert.equal(filter[filter.length - 1], 7, "k");
  assert.ok(
    fpRate > 0.005 && fpRate < 0.02,
    `false-positive rate ${(fpRate * 100).toFixed(3)}% outside 0.5%..2%`,
  );
  console.log(`sequential keys: FP rate ${(fpRate * 100).toFixed(3)}%`);
});

Deno.test("bloom has about 1% false positives at 10 bits per key on random keys", () => {
  const seed = 0xb10f;
  const rng = prng(seed);
  const added: Uint8Array[] = [];
  for (let i = 0; i < 20_000; i++) added.push(randomKey(rng, 8, 24));
  const probes: Uint8Array[] = [];
  // Different lengths from the added keys, so no probe is an added key.
  for (let i = 0; i < 100_000; i++) probes.push(randomKey(rng, 1, 7));
  const { fpRate } = measure(added, probes, 10);
  assert.ok(
    fpRate > 0.005 && fpRate < 0.02,
    `seed ${seed}: false-positive rate ${(fpRate * 100).toFixed(3)}%`,
  );
  console.log(`random keys: FP rate ${(fpRate * 100).toFixed(3)}%`);
});

Deno.test("bloom never gives false negatives, whatever bits per key", () => {
  const seed = 42;
  const rng = prng(seed);
  for (const bits of [1, 2, 5, 10, 20, 50]) {
    const keys = Array.from({ length: 500 }, () => randomKey(rng, 0, 40));
    const f = buildBloomFilter(keys.map(bloomHash), bits);
    assert.equal(f[f.length - 1], bloomProbes(bits));
    for (const k of keys) {
      assert.ok(bloomMayContain(f, k), `seed ${seed} bits ${bits}`);
    }
  }
});

Deno.test("bloom filter over no keys rejects everything and has a 64-bit minimum", () => {
  const f = buildBloomFilter([], 10);
  assert.equal(f.length, 8 + 1);
  assert.equal(bloomMayContain(f, enc.encode("x")), false);
  assert.equal(bloomMayContain(new Uint8Array(0), enc.encode("x")), false);
});

Deno.test("bloom filter with a reserved probe count matches everything", () => {
  const f = new Uint8Array(9);
  f[8] = BLOOM_MAX_PROBES + 1;
  assert.equal(bloomMayContainHash(f, 12345), true);
});

Deno.test("bloom hash is stable (filters on disk depend on it)", () => {
  // Pinned values: changing the hash silently breaks every existing table.
  // (The function is MurmurHash3 x86_32, checked against its published
  // vectors with other seeds while writing it.)
  assert.equal(bloomHash(new Uint8Array(0)), 0x3f177186);
  assert.equal(bloomHash(enc.encode("a")), 0x6dba6b55);
  assert.equal(bloomHash(enc.encode("hello world")), 0xdeb0dc74);
  assert.equal(bloomProbes(10), 7);
});

Deno.test("bloom filter bits sit where double hashing puts them, hashes above 2^31 included (the format)", () => {
  // The reference does the arithmetic in BigInt: bit (h + j*delta) mod 2^32
  // mod m for probe j, delta = h rotated right by 17.
  const rng = prng(0xb100);
  for (const count of [1, 7, 100, 3001]) {
    const hashes = new Uint32Array(count);
    for (let i = 0; i < count; i++) {
      hashes[i] = Math.floor(rng() * 2 ** 32);
    }
    hashes[0] = 0xffffffff;
    const f = buildBloomFilter(hashes, 10);
    const m = BigInt((f.length - 1) * 8);
    const want = new Uint8Array(f.length);
    want[f.length - 1] = bloomProbes(10);
    for (const x of hashes) {
      const h = BigInt(x);
      const delta = ((h >> 17n) | (h << 15n)) & 0xffffffffn;
      for (let j = 0n; j < BigInt(bloomProbes(10)); j++) {
        const pos = Number(((h + j * delta) & 0xffffffffn) % m);
        want[pos >>> 3] |= 1 << (pos & 7);
      }
    }
    assert.deepEqual(f, want, `${count} hashes`);
    for (const x of hashes) assert.ok(bloomMayContainHash(f, x));
  }
});

Deno.test("bloomHashAt hashes a range in place as bloomHash hashes it as a view", () => {
  const buf = Uint8Array.from({ length: 64 }, (_, i) => (i * 37 + 11) & 0xff);
  for (let off = 0; off < 8; off++) {
    for (let n = 0; n <= 40; n++) {
      assert.equal(
        bloomHashAt(buf, off, n),
        bloomHash(buf.subarray(off, off + n)),
      );
    }
  }
});
