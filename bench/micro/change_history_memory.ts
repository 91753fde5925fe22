/**
 * Measures what the change history (`/kv/watch`, `Db.changes`) really keeps
 * per group beyond the payload's bytes (the LAZY_GROUP_OVERHEAD_BYTES of
 * engine/changes.ts): publishes `n` writes the way the commit path does
 * (each batch encoded by `encodeBatchOps` into an arena, published with
 * its payload), forces a GC and divides the growth of heap + external
 * memory, less the payloads' aligned bytes, by the group count.
 *
 *     deno run --v8-flags=--expose-gc bench/micro/change_history_memory.ts [batch] [n]
 *
 * `batch` is the ops per write (default 1), `n` the writes (default 200000).
 *
 * @module
 */
import { ChangeHistory } from "../../engine/changes.ts";
import { Arena } from "../../engine/coding.ts";
import { type Entry, KIND_PUT } from "../../engine/entry.ts";
import { encodeBatchOps } from "../../engine/batch_ops.ts";
import { keyFor, VALUE_BYTES } from "../_common.ts";
import { requireGc, usedMemory } from "./_memory.ts";

requireGc();
const batch = Number(Deno.args[0] ?? 1);
const n = Number(Deno.args[1] ?? 200_000);

const value = new Uint8Array(VALUE_BYTES).fill(7);
const arena = new Arena();
const history = new ChangeHistory(0, Number.MAX_SAFE_INTEGER);
let payloadBytes = 0;
const before = usedMemory();
for (let w = 0; w < n; w++) {
  const ops: Entry[] = [];
  for (let j = 0; j < batch; j++) {
    ops.push({
      key: keyFor(w * batch + j),
      seq: 0,
      kind: KIND_PUT,
      encoding: 0,
      expiresAt: 0,
      value,
    });
  }
  const { payload, entries } = encodeBatchOps(ops, arena, 0);
  payloadBytes += (payload.length + 7) & ~7;
  history.publish(w + 1, entries, false, payload);
}
const after = usedMemory();
const perGroup = (after - before - payloadBytes) / n;
console.log(
  `batch=${batch} n=${n}: ${((after - before) / 2 ** 20).toFixed(2)} MiB, ` +
    `${perGroup.toFixed(1)} B/group beyond the payloads; ` +
    `accounted ${(history.bytes / 2 ** 20).toFixed(2)} MiB`,
);
