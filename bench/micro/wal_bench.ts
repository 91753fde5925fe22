/**
 * WAL framing (engine/wal.ts): encoding a batch's ops and framing the record
 * (header + CRC32C) into the commit buffer.
 *
 * @module
 */
import { ByteWriter } from "../../engine/coding.ts";
import { frameBatch } from "../../engine/wal.ts";
import { encodeBatchOps } from "../../engine/batch_ops.ts";
import { makeEntries } from "./_data.ts";

const { entries } = makeEntries(1000, 5);
const batch = encodeBatchOps(entries).payload;
const single = encodeBatchOps(entries.slice(0, 1)).payload;
const w = new ByteWriter(256 * 1024);

Deno.bench({
  name: `frameBatch: 1 record of 1000 ops (${batch.length} B)`,
  group: "wal",
  baseline: true,
  fn() {
    w.reset();
    frameBatch(w, 1, batch);
  },
});

Deno.bench({
  name: `frameBatch: 1000 records of 1 op (${single.length} B each)`,
  group: "wal",
  fn() {
    w.reset();
    for (let i = 0; i < 1000; i++) frameBatch(w, i + 1, single);
  },
});

Deno.bench({
  name: "encodeBatchOps: 1000 ops",
  group: "wal",
  fn() {
    encodeBatchOps(entries);
  },
});
