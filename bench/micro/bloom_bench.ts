/**
 * Bloom filter probes (engine/bloom.ts) at 10 bits per key, the default.
 *
 * @module
 */
import {
  bloomHash,
  bloomMayContain,
  bloomMayContainHash,
  buildBloomFilter,
} from "../../engine/bloom.ts";
import { keyFor } from "../_common.ts";

const KEYS = 10_000;
const hashes = new Uint32Array(KEYS);
for (let i = 0; i < KEYS; i++) hashes[i] = bloomHash(keyFor(i));
const filter = buildBloomFilter(hashes, 10);

const PROBES = 1000;
const present: Uint8Array[] = [];
const absent: Uint8Array[] = [];
for (let i = 0; i < PROBES; i++) {
  present.push(keyFor((i * 7919) % KEYS));
  absent.push(keyFor(KEYS + i));
}
const absentHashes = absent.map(bloomHash);

Deno.bench({
  name: `bloom probe ${PROBES} present keys (hash + probe)`,
  group: "bloom",
  baseline: true,
  fn() {
    for (const k of present) {
      if (!bloomMayContain(filter, k)) throw new Error("false negative");
    }
  },
});

Deno.bench({
  name: `bloom probe ${PROBES} absent keys (hash + probe)`,
  group: "bloom",
  fn() {
    let n = 0;
    for (const k of absent) if (bloomMayContain(filter, k)) n++;
    if (n > PROBES / 10) throw new Error(`false positives: ${n}`);
  },
});

Deno.bench({
  name: `bloom probe ${PROBES} absent keys (precomputed hash)`,
  group: "bloom",
  fn() {
    let n = 0;
    for (const h of absentHashes) if (bloomMayContainHash(filter, h)) n++;
    if (n > PROBES / 10) throw new Error(`false positives: ${n}`);
  },
});

Deno.bench({
  name: `bloom build over ${KEYS} keys (precomputed hashes)`,
  group: "bloom build",
  fn() {
    buildBloomFilter(hashes, 10);
  },
});
