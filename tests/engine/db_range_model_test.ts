/**
 * Model-based test of range deletes: a seeded stream of puts, deletes,
 * range deletes (alone and inside batches with other ops), gets, scans,
 * snapshots, flushes, compactions (automatic and compactRange) and reopens
 * runs against shale and a sorted Map; every answer is compared after
 * every step. Replay a failure with SHALE_SEED=<seed> (printed on failure).
 */
import assert from "node:assert/strict";
import type {
  BatchOp,
  Db,
  DbOptions,
  ScanOptions,
  Snapshot,
} from "../../mod.ts";
import { compareBytes } from "../../engine/coding.ts";
import { open } from "../../mod.ts";
import type { ModelScan } from "../_helpers.ts";
import {
  hex,
  NoSyncFileSystem,
  Rng,
  SortedModel,
  testSeed,
  withSeed,
  withTempDir,
} from "../_helpers.ts";

/** Keys over a small alphabet, so ranges and prefixes cover several. */
function keyPool(rng: Rng, n: number): Uint8Array[] {
  const alphabet = [0x00, 0x61, 0x62, 0x63, 0xff];
  const seen = new Set<string>();
  const out: Uint8Array[] = [];
  while (out.length < n) {
    const k = rng.bytes(rng.range(1, 4)).map((b) => alphabet[b % 5]);
    if (seen.has(hex(k))) continue;
    seen.add(hex(k));
    out.push(k);
  }
  return out;
}

function summary(
  items: Iterable<{ key: Uint8Array; value: Uint8Array; version: number }>,
): string[] {
  return [...items].map((i) => `${hex(i.key)}=${hex(i.value)}@${i.version}`);
}

/** A random range-delete op: start/end (either may be open) or a prefix. */
function randomRange(rng: Rng, keys: Uint8Array[]): BatchOp {
  if (rng.chance(0.25)) {
    return { type: "deleteRange", prefix: rng.pick(keys).slice(0, 1) };
  }
  let a: Uint8Array | undefined = rng.pick(keys);
  let b: Uint8Array | undefined = rng.pick(keys);
  if (compareBytes(a, b) > 0) [a, b] = [b, a];
  const roll = rng.next();
  if (compareBytes(a, b) === 0 || roll < 0.1) b = undefined;
  else if (roll < 0.2) a = undefined;
  return { type: "deleteRange", start: a, end: b };
}

/** Applies a range delete to the model: every key in its range goes. */
function modelDeleteRange(model: SortedModel, op: BatchOp): void {
  if (op.type !== "deleteRange") throw new Error("not a range delete");
  const o: ModelScan = op.prefix ? { prefix: op.prefix } : {
    start: op.start,
    end: op.end,
  };
  for (const e of model.scan(o)) model.delete(e.key);
}

async function runModel(
  seed: number,
  steps: number,
  options: DbOptions,
): Promise<void> {
  await withSeed(seed, (rng) =>
    withTempDir(async (dir) => {
      const keys = keyPool(rng, 120);
      const model = new SortedModel();
      let db: Db = await open(dir, options);
      const snaps: { snap: Snapshot; model: SortedModel }[] = [];
      let ranges = 0;
      let reopens = 0;
      const randomScan = (): ModelScan => {
        const o: ModelScan = {};
        if (rng.chance(0.3)) o.prefix = rng.pick(keys).slice(0, 1);
        if (rng.chance(0.3)) o.start = rng.pick(keys);
        if (rng.chance(0.3)) o.end = rng.pick(keys);
        if (rng.chance(0.4)) o.reverse = true;
        if (rng.chance(0.3)) o.limit = rng.range(1, 15);
        return o;
      };
      const checkAll = (what: string) =>
        assert.deepEqual(summary(db.scan()), summary(model.scan()), what);

      for (let step = 0; step < steps; step++) {
        const r = rng.next();
        if (r < 0.30) {
          const k = rng.pick(keys);
          const v = rng.bytes(rng.range(1, 200));
          model.set(k, v, await db.put(k, v));
        } else if (r < 0.36) {
          const k = rng.pick(keys);
          await db.delete(k);
          model.delete(k);
        } else if (r < 0.42) {
          const op = randomRange(rng, keys);
          const o = op as { start?: Uint8Array; end?: Uint8Array };
          if (
            op.type === "deleteRange" && !op.prefix && o.start &&
            rng.chance(0.5)
          ) {
            await db.deleteRange(o.start, o.end);
          } else await db.batch([op]);
          modelDeleteRange(model, op);
          ranges++;
        } else if (r < 0.50) {
          // A batch mixing puts, deletes and range deletes, applied in order.
          const ops: BatchOp[] = [];
          for (let n = rng.range(2, 6); n > 0; n--) {
            const t = rng.next();
            if (t < 0.5) {
              ops.push({
                type: "put",
                key: rng.pick(keys),
                value: rng.bytes(rng.range(1, 50)),
              });
            } else if (t < 0.7) {
              ops.push({ type: "delete", key: rng.pick(keys) });
            } else ops.push(randomRange(rng, keys));
          }
          const seq = await db.batch(ops);
          for (const op of ops) {
            if (op.type === "put") model.set(op.key, op.value, seq);
            else if (op.type === "delete") model.delete(op.key);
            else if (op.type === "deleteRange") {
              modelDeleteRange(model, op);
              ranges++;
            }
          }
        } else if (r < 0.65) {
          const k = rng.pick(keys);
          const want = model.get(k);
          const got = db.get(k);
          assert.deepEqual(
            got && summary([{ key: k, ...got }]),
            want && summary([want]),
            `step ${step}: get ${hex(k)}`,
          );
          assert.equal(db.version(k), want?.version ?? null);
        } else if (r < 0.75) {
          const o = randomScan();
          assert.deepEqual(
            summary(db.scan(o as ScanOptions)),
            summary(model.scan(o)),
            `step ${step}: scan ${
              JSON.stringify(o, (_, v) => v instanceof Uint8Array ? hex(v) : v)
            }`,
          );
        } else if (r < 0.78) {
          if (snaps.length < 3) {
            snaps.push({ snap: db.snapshot(), model: model.clone() });
          }
        } else if (r < 0.83) {
          if (snaps.length > 0) {
            const i = rng.int(snaps.length);
            const { snap, model: old } = snaps[i];
            const o = randomScan();
            assert.deepEqual(
              summary(db.scan({ ...o, snapshot: snap } as ScanOptions)),
              summary(old.scan(o)),
              `step ${step}: snapshot scan`,
            );
            const k = rng.pick(keys);
            const got = db.get(k, { snapshot: snap });
            const want = old.get(k);
            assert.deepEqual(
              got && summary([{ key: k, ...got }]),
              want && summary([want]),
              `step ${step}: snapshot get ${hex(k)}`,
            );
            if (rng.chance(0.4)) {
              snap.release();
              snaps.splice(i, 1);
            }
          }
        } else if (r < 0.90) {
          await db.flush();
        } else if (r < 0.94) {
          await db.compactUntilIdle();
        } else if (r < 0.97) {
          const a = rng.chance(0.5) ? rng.pick(keys) : undefined;
          await db.compactRange(a, undefined);
          checkAll(`step ${step}: after compactRange`);
        } else {
          for (const s of snaps) s.snap.release();
          snaps.length = 0;
          await db.close();
          db = await open(dir, options);
          reopens++;
          checkAll(`step ${step}: after reopen`);
        }
      }
      for (const s of snaps) s.snap.release();
      checkAll("at the end");
      // With no snapshot left, a full compaction drops every tombstone.
      await db.compactRange();
      checkAll("after the last compaction");
      const st = db.stats() as { rangeTombstones: { live: number } };
      assert.equal(st.rangeTombstones.live, 0, "every tombstone was dropped");
      await db.close();
      assert.ok(ranges > steps / 20, `only ${ranges} range deletes`);
      assert.ok(reopens > 0, "the run reopened");
      const last = await open(dir, options);
      try {
        assert.deepEqual(summary(last.scan()), summary(model.scan()));
      } finally {
        await last.close();
      }
    }));
}

Deno.test("random puts, deletes and range deletes match a sorted map through flushes, compactions and reopens", async () => {
  await runModel(testSeed(0x7a4e01), 3000, {
    background: "inline",
    sync: "none",
    memtableBytes: 8 * 1024,
    tableTargetBytes: 8 * 1024,
    baseLevelBytes: 32 * 1024,
    fs: new NoSyncFileSystem(),
  });
});

Deno.test("range deletes match a sorted map with flushes and compactions in the worker", async () => {
  await runModel(testSeed(0x7a4e02), 300, {
    sync: "none",
    memtableBytes: 8 * 1024,
  });
});
