/**
 * Measures the memtable's real memory per entry beyond its key and value
 * bytes (the ENTRY_OVERHEAD of engine/memtable.ts): fills a memtable the way
 * the write path does (batches encoded by `encodeBatchOps` into an arena,
 * inserted with `addMany`), drops everything else, forces a GC and divides
 * the growth of heap + external memory by the entry count.
 *
 *     deno run --v8-flags=--expose-gc bench/micro/memtable_memory.ts [batch] [n]
 *
 * `batch` is the ops per write (1000 as `make bench`'s fills; 1 for single
 * puts), `n` the entries (default 60000, about an 8 MiB memtable).
 *
 * @module
 */
import { Arena } from "../../engine/coding.ts";
import { type Entry, KIND_PUT } from "../../engine/entry.ts";
import { Memtable } from "../../engine/memtable.ts";
import { encodeBatchOps } from "../../engine/batch_ops.ts";
import { KEY_BYTES, keyFor, permutation, VALUE_BYTES } from "../_common.ts";
import { requireGc, usedMemory } from "./_memory.ts";

requireGc();
const batch = Number(Deno.args[0] ?? 1000);
const n = Number(Deno.args[1] ?? 60_000);

function fill(): Memtable {
  const order = permutation(n, 1);
  const arena = new Arena();
  const value = new Uint8Array(VALUE_BYTES).fill(7);
  const mem = new Memtable();
  let seq = 0;
  for (let i = 0; i < n; i += batch) {
    const ops: Entry[] = [];
    for (let j = i; j < Math.min(n, i + batch); j++) {
      ops.push({
        key: keyFor(order[j]),
        seq: ++seq,
        kind: KIND_PUT,
        encoding: 0,
        expiresAt: 0,
        value,
      });
    }
    const { entries } = encodeBatchOps(ops, arena);
    mem.addMany(entries);
  }
  return mem;
}

const before = usedMemory();
const mem = fill();
const after = usedMemory();
const data = n * (KEY_BYTES + VALUE_BYTES);
const perEntry = (after - before - data) / n;
console.log(
  `batch=${batch} n=${n}: ${((after - before) / 2 ** 20).toFixed(2)} MiB, ` +
    `${perEntry.toFixed(1)} B/entry beyond key+value; ` +
    `accounted ${
      (mem.bytes / 2 ** 20).toFixed(2)
    } MiB for ${mem.count} entries`,
);
