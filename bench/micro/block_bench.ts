/**
 * Data-block point lookups (engine/sstable/block.ts `blockGet`) in a 4 KiB
 * block of db_bench-shaped entries.
 *
 * @module
 */
import { BlockBuilder, blockGet } from "../../engine/sstable/block.ts";
import { KIND_PUT } from "../../engine/entry.ts";
import { keyFor, prng, ValuePool } from "../_common.ts";

const builder = new BlockBuilder();
const values = new ValuePool(3);
let count = 0;
// Even keys only, so odd keys fall between entries (misses inside the block).
while (builder.estimatedSize < 4096) {
  builder.add(keyFor(count * 2), 1, KIND_PUT, 0, 0, values.next());
  count++;
}
const block = builder.finish().slice();

const PROBES = 1000;
const rnd = prng(11);
const hits: Uint8Array[] = [];
const misses: Uint8Array[] = [];
for (let i = 0; i < PROBES; i++) {
  const j = Math.floor(rnd() * count);
  hits.push(keyFor(j * 2));
  misses.push(keyFor(j * 2 + 1));
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
