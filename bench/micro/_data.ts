/**
 * Inputs shared by the micro-benchmarks: db_bench-shaped entries (16-byte
 * decimal keys, 100-byte values) whose bytes live in one buffer, as the
 * write path's arena keeps a batch.
 *
 * @module
 */
import { Arena } from "../../engine/coding.ts";
import { type Entry, KIND_PUT } from "../../engine/entry.ts";
import { Memtable } from "../../engine/memtable.ts";
import { encodeBatchOps } from "../../engine/batch_ops.ts";
import { KEY_BYTES, keyFor, permutation, VALUE_BYTES } from "../_common.ts";
import { ValuePool } from "../_workload.ts";

/** `n` put entries for a random permutation of 0..n-1, seqnos 1..n. */
export function makeEntries(
  n: number,
  seed: number,
): { entries: Entry[] } {
  const order = permutation(n, seed);
  const slab = new Uint8Array(n * (KEY_BYTES + VALUE_BYTES));
  const entries: Entry[] = [];
  for (let i = 0; i < n; i++) {
    const off = i * (KEY_BYTES + VALUE_BYTES);
    const key = slab.subarray(off, off + KEY_BYTES);
    keyFor(order[i], key);
    const value = slab.subarray(off + KEY_BYTES, off + KEY_BYTES + VALUE_BYTES);
    value.fill(i & 0xff);
    entries.push({
      key,
      seq: i + 1,
      kind: KIND_PUT,
      encoding: 0,
      expiresAt: 0,
      value,
    });
  }
  return { entries };
}

/**
 * A memtable filled through the write path's encoding (batches of `batch`
 * puts of random keys, values from a ValuePool) until its own byte count
 * reaches `bytes`; key i of the permutation is `keyFor(keyOf(order[i]))`.
 */
export function filledMemtable(
  seed: number,
  opts: { bytes: number; batch: number; keyOf?: (i: number) => number },
): Memtable {
  const keyOf = opts.keyOf ?? ((i: number) => i);
  const mem = new Memtable();
  const arena = new Arena();
  const values = new ValuePool(seed);
  const order = permutation(1 << 20, seed);
  for (let i = 0; mem.bytes < opts.bytes;) {
    const ops: Entry[] = [];
    for (let j = 0; j < opts.batch; j++, i++) {
      ops.push({
        key: keyFor(keyOf(order[i])),
        value: values.next(),
        seq: i + 1,
        kind: KIND_PUT,
        encoding: 0,
        expiresAt: 0,
      });
    }
    const enc = encodeBatchOps(ops, arena, 1);
    mem.addMany(enc.entries);
  }
  return mem;
}
