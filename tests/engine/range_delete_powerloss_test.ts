/**
 * Power cuts and range deletes: one writer runs puts, deletes, range
 * deletes and batches mixing them against a store with tiny memtables (so
 * tombstones are flushed into the manifest, applied by compactions and
 * dropped while the trial runs); the power is cut at a seeded random file
 * operation, every byte not yet fsync'd is dropped, and the reopened store
 * must hold exactly the state after the last acknowledged op, or after the
 * op that was in flight at the cut. An acknowledged range delete never
 * comes undone, and an unacknowledged one is all or nothing.
 */
import assert from "node:assert/strict";
import type { BatchOp, Db } from "../../mod.ts";
import { open } from "../../mod.ts";
import { FaultyFileSystem } from "../../engine/testing/faulty_fs.ts";
import {
  dec,
  enc,
  NoSyncFileSystem,
  Rng,
  testSeed,
  withSeed,
  withTempDir,
} from "../_helpers.ts";

type State = Map<string, string>;

function render(s: State): string {
  return [...s].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
    .map(([k, v]) => `${k}=${v}`).join(" ");
}

function apply(s: State, ops: BatchOp[]): State {
  const out = new Map(s);
  for (const op of ops) {
    if (op.type === "put") out.set(dec(op.key), dec(op.value));
    else if (op.type === "delete") out.delete(dec(op.key));
    else if (op.type === "deleteRange") {
      const a = dec(op.start!);
      const b = dec(op.end!);
      for (const k of [...out.keys()]) if (k >= a && k < b) out.delete(k);
    }
  }
  return out;
}

function randomOps(rng: Rng, trial: number, n: number): BatchOp[] {
  const key = () => `k${String(rng.int(40)).padStart(2, "0")}`;
  const ops: BatchOp[] = [];
  for (let i = 0; i < n; i++) {
    const r = rng.next();
    if (r < 0.55) {
      ops.push({
        type: "put",
        key: enc(key()),
        value: enc(`${trial}.${i}.${"v".repeat(rng.int(150))}`),
      });
    } else if (r < 0.7) ops.push({ type: "delete", key: enc(key()) });
    else {
      let [a, b] = [key(), key()].sort();
      if (a === b) b = `${b}~`;
      ops.push({ type: "deleteRange", start: enc(a), end: enc(b) });
    }
  }
  return ops;
}

function readState(db: Db): State {
  const s: State = new Map();
  for (const i of db.scan()) s.set(dec(i.key), dec(i.value));
  return s;
}

Deno.test("acknowledged range deletes survive power cuts at random file operations", async () => {
  await withSeed(testSeed(0x7a4ec7), (rng) =>
    withTempDir(async (dir) => {
      let durable: State = new Map();
      let rangesAcked = 0;
      for (let trial = 0; trial < 80; trial++) {
        const fs = new FaultyFileSystem(new NoSyncFileSystem());
        fs.keepsUnsyncedSector = () => rng.chance(0.5); // torn groups
        const cutAt = rng.range(1, 300);
        let ops = 0;
        let cut: Promise<number> | undefined;
        fs.failWhen = () => {
          if (++ops === cutAt && !cut) {
            cut = fs.powerCut();
            return new Error("power cut");
          }
          return undefined;
        };
        let acked = durable;
        let inFlight: State | undefined;
        let db: Db | undefined;
        try {
          db = await open(dir, {
            fs,
            background: "inline",
            memtableBytes: 2048,
            l0CompactionTrigger: 2,
            baseLevelBytes: 8 * 1024,
            tableTargetBytes: 4096,
          });
        } catch {
          assert.ok(cut, "open failed without a power cut");
        }
        for (let n = 0; db && n < 200 && !fs.dead; n++) {
          const batch = randomOps(rng, trial, rng.chance(0.3) ? 3 : 1);
          inFlight = apply(acked, batch);
          try {
            await db.batch(batch);
          } catch {
            break; // the cut (or the read-only store after it)
          }
          acked = inFlight;
          inFlight = undefined;
          rangesAcked += batch.filter((o) => o.type === "deleteRange").length;
        }
        if (!cut) cut = fs.powerCut();
        await db?.close().catch(() => {});
        await cut;
        const after = await open(dir, {
          background: "inline",
          fs: new NoSyncFileSystem(),
        });
        try {
          const got = readState(after);
          const ok = render(got) === render(acked) ||
            (inFlight !== undefined && render(got) === render(inFlight));
          assert.ok(
            ok,
            `trial ${trial} (cut at op ${cutAt}): reopened store holds\n` +
              `${render(got)}\nbut the last acknowledged state is\n` +
              `${render(acked)}` +
              (inFlight
                ? `\nor with the op in flight\n${render(inFlight)}`
                : ""),
          );
          durable = got;
        } finally {
          await after.close();
        }
      }
      assert.ok(rangesAcked > 200, `only ${rangesAcked} range deletes acked`);
    }));
});
