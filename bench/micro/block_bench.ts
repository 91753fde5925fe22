/**
 * Data-block point lookups (engine/sstable/block.ts `blockGet`) in a 4 KiB
 * block of db_bench-shaped entries.
 *
 * @module
 */
import { BlockBuilder, blockGet } from "../../engine/sstable/block.ts";
import { KIND_PUT } from "../../engine/entry.ts";
import { keyFor, prng, ValuePool } from "../_common.ts";

const values = new ValuePool(3);
/**
 * A 4 KiB block of even keys only, so odd keys fall between entries (misses
 * inside the block), every entry with seqno `seq`.
 */
function blockOf(seq: number): { block: Uint8Array; count: number } {
  const builder = new BlockBuilder();
  let count = 0;
  while (builder.estimatedSize < 4096) {
    builder.add(keyFor(count * 2), seq, KIND_PUT, 0, 0, values.next());
    count++;
  }
  return { block: builder.finish().slice(), count };
}
const { block, count } = blockOf(1);
// Seqnos of a store that took a few million writes: 4-byte varints.
const bigSeq = 3_000_000;
const { block: aged, count: agedCount } = blockOf(bigSeq);

const PROBES = 1000;
const rnd = prng(11);
const hits: Uint8Array[] = [];
const misses: Uint8Array[] = [];
const agedHits: Uint8Array[] = [];
for (let i = 0; i < PROBES; i++) {
  const j = Math.floor(rnd() * count);
  hits.push(keyFor(j * 2));
  misses.push(keyFor(j * 2 + 1));
  agedHits.push(keyFor(Math.floor(rnd() * agedCount) * 2));
}

Deno.bench({
  name: `blockGet ${PROBES} present keys (${count} entries, ${block.length} B)`,
  group: "block",
  baseline: true,
  fn() {
    for (const k of hits) {
      if (blockGet(block, k, 1) === undefined) throw new Error("missing");
    }
  },
});

Deno.bench({
  name: `blockGet ${PROBES} absent keys (${count} entries, ${block.length} B)`,
  group: "block",
  fn() {
    for (const k of misses) {
      if (blockGet(block, k, 1) !== undefined) throw new Error("found");
    }
  },
});

Deno.bench({
  name: `blockGet ${PROBES} present keys, seqnos of ${bigSeq}`,
  group: "block",
  fn() {
    for (const k of agedHits) {
      if (blockGet(aged, k, bigSeq) === undefined) throw new Error("missing");
    }
  },
});
