/**
 * Model-based test: a seeded stream of puts, deletes, conditional batches,
 * gets, scans, snapshots, flushes, compactions and reopens runs against
 * shale and a sorted Map; every answer is compared after every step.
 * Replay a failure with SHALE_SEED=<seed> (printed on failure).
 */
import assert from "node:assert/strict";
import type { BatchOp, Db, ScanOptions, Snapshot } from "../../mod.ts";
import { open, ShaleError } from "../../mod.ts";
import type { DbOptions } from "../../engine/types.ts";
import type { ModelScan } from "../_helpers.ts";
import {
  bytes,
  hex,
  NoSyncFileSystem,
  Rng,
  SortedModel,
  testSeed,
  withSeed,
  withTempDir,
} from "../_helpers.ts";

interface RunConfig {
  seed: number;
  steps: number;
  options: DbOptions;
  /** Chance per step of close + reopen (each opens a worker when not inline). */
  reopenChance: number;
}

/** A pool of keys that share prefixes and contain 0x00 and 0xFF bytes. */
function keyPool(rng: Rng, n: number): Uint8Array[] {
  const alphabet = [0x00, 0x01, 0x61, 0x62, 0x7f, 0x80, 0xfe, 0xff];
  const seen = new Set<string>();
  const out: Uint8Array[] = [];
  while (out.length < n) {
    const len = rng.range(1, 6);
    const k = new Uint8Array(len);
    for (let i = 0; i < len; i++) k[i] = rng.pick(alphabet);
    if (seen.has(hex(k))) continue;
    seen.add(hex(k));
    out.push(k);
  }
  return out;
}

function randomValue(rng: Rng): Uint8Array {
  const r = rng.next();
  const len = r < 0.05
    ? 0
    : r < 0.95
    ? rng.range(1, 120)
    : rng.range(1000, 3000);
  return rng.bytes(len);
}

function describeScan(o: ModelScan): string {
  return JSON.stringify({
    start: o.start && hex(o.start),
    end: o.end && hex(o.end),
    prefix: o.prefix && hex(o.prefix),
    reverse: o.reverse,
    limit: o.limit,
  });
}

function summary(
  items: Iterable<
    { key: Uint8Array; value: Uint8Array; version: number; expiresAt: number }
  >,
): string[] {
  const out: string[] = [];
  for (const i of items) {
    out.push(`${hex(i.key)}=${hex(i.value)}@${i.version}~${i.expiresAt}`);
  }
  return out;
}

async function runModel(cfg: RunConfig): Promise<void> {
  await withSeed(cfg.seed, (rng) =>
    withTempDir(async (dir) => {
      let now = 1_000_000;
      const clock = () => now;
      const options: DbOptions = { ...cfg.options, clock };
      const keys = keyPool(rng, 300);
      const model = new SortedModel();
      let db: Db = await open(dir, options);
      let maxSeq = 0;
      let reopens = 0;
      const snaps: { snap: Snapshot; model: SortedModel }[] = [];

      const randomKey = () => rng.pick(keys);
      const versionOf = (k: Uint8Array) => model.get(k, now)?.version ?? null;
      const expiry = () => rng.chance(0.1) ? now + rng.range(1, 200) : 0;
      /** An ifVersion that is right most of the time and wrong sometimes. */
      const condition = (
        k: Uint8Array,
      ): { want: number | null; ok: boolean } => {
        const have = versionOf(k);
        if (rng.chance(0.75)) return { want: have, ok: true };
        const wrong = have === null ? rng.range(1, maxSeq + 1) : rng.pick([
          null,
          have + 1,
          have - 1,
        ]);
        return { want: wrong, ok: wrong === have };
      };
      const noteSeq = (seq: number, what: string) => {
        assert.ok(seq > maxSeq, `${what}: seqno ${seq} after ${maxSeq}`);
        maxSeq = seq;
      };
      const expectPrecondition = async (p: Promise<number>, what: string) => {
        await assert.rejects(p, (err: unknown) => {
          assert.ok(err instanceof ShaleError, `${what}: ${err}`);
          assert.equal(err.code, "precondition_failed", what);
          return true;
        });
      };

      const checkGet = (k: Uint8Array, step: number) => {
        const want = model.get(k, now);
        const got = db.get(k);
        assert.deepEqual(
          got && summary([{ key: k, ...got }]),
          want && summary([want]),
          `step ${step}: get ${hex(k)}`,
        );
        assert.equal(db.version(k), want?.version ?? null, `version ${hex(k)}`);
      };

      const randomScan = (): ModelScan => {
        const o: ModelScan = {};
        const r = rng.next();
        if (r < 0.3) o.prefix = randomKey().slice(0, rng.range(1, 2));
        else if (r < 0.5) o.prefix = bytes(0xff);
        if (rng.chance(0.4)) o.start = randomKey();
        if (rng.chance(0.4)) o.end = randomKey();
        if (rng.chance(0.4)) o.reverse = true;
        if (rng.chance(0.4)) o.limit = rng.range(0, 20);
        return o;
      };

      for (let step = 0; step < cfg.steps; step++) {
        const r = rng.next();
        if (r < 0.30) {
          const k = randomKey();
          const v = randomValue(rng);
          const exp = expiry();
          if (rng.chance(0.2)) {
            const c = condition(k);
            const p = db.put(k, v, { expiresAt: exp, ifVersion: c.want });
            if (!c.ok) {
              await expectPrecondition(p, `step ${step}: conditional put`);
              continue;
            }
            const seq = await p;
            noteSeq(seq, `step ${step}: conditional put`);
            model.set(k, v, seq, exp);
          } else {
            const seq = await db.put(k, v, { expiresAt: exp });
            noteSeq(seq, `step ${step}: put`);
            model.set(k, v, seq, exp);
          }
        } else if (r < 0.40) {
          const k = randomKey();
          if (rng.chance(0.2)) {
            const c = condition(k);
            const p = db.delete(k, { ifVersion: c.want });
            if (!c.ok) {
              await expectPrecondition(p, `step ${step}: conditional delete`);
              continue;
            }
            noteSeq(await p, `step ${step}: conditional delete`);
          } else {
            noteSeq(await db.delete(k), `step ${step}: delete`);
          }
          model.delete(k);
        } else if (r < 0.48) {
          // An atomic batch over distinct keys, sometimes with conditions.
          const n = rng.range(1, 6);
          const chosen = new Map<string, Uint8Array>();
          while (chosen.size < n) {
            const k = randomKey();
            chosen.set(hex(k), k);
          }
          const ops: BatchOp[] = [];
          let allOk = true;
          for (const k of chosen.values()) {
            let ifVersion: number | null | undefined;
            if (rng.chance(0.25)) {
              const c = condition(k);
              ifVersion = c.want;
              allOk &&= c.ok;
            }
            const t = rng.next();
            if (t < 0.6) {
              ops.push({
                type: "put",
                key: k,
                value: randomValue(rng),
                expiresAt: expiry(),
                ifVersion,
              });
            } else if (t < 0.9 || ifVersion === undefined) {
              ops.push({ type: "delete", key: k, ifVersion });
            } else {
              ops.push({ type: "check", key: k, ifVersion });
            }
          }
          const p = db.batch(ops);
          if (!allOk) {
            await expectPrecondition(p, `step ${step}: batch`);
            continue;
          }
          const seq = await p;
          if (ops.every((o) => o.type === "check")) {
            assert.equal(
              seq,
              db.visibleSeq,
              "a check-only batch writes nothing",
            );
            continue;
          }
          noteSeq(seq, `step ${step}: batch`);
          for (const op of ops) {
            if (op.type === "put") {
              model.set(op.key, op.value, seq, op.expiresAt ?? 0);
            } else if (op.type === "delete") model.delete(op.key);
          }
        } else if (r < 0.52) {
          // Concurrent unconditional writes to distinct keys share fsyncs.
          const n = rng.range(2, 16);
          const chosen = new Map<string, Uint8Array>();
          while (chosen.size < n) {
            const k = randomKey();
            chosen.set(hex(k), k);
          }
          const writes = [...chosen.values()].map((k) => {
            const v = rng.chance(0.8) ? randomValue(rng) : undefined;
            return { k, v, p: v ? db.put(k, v) : db.delete(k) };
          });
          const seqs = await Promise.all(writes.map((w) => w.p));
          for (let i = 0; i < writes.length; i++) {
            noteSeq(seqs[i], `step ${step}: concurrent write ${i}`);
            const w = writes[i];
            if (w.v) model.set(w.k, w.v, seqs[i]);
            else model.delete(w.k);
          }
        } else if (r < 0.72) {
          checkGet(randomKey(), step);
        } else if (r < 0.82) {
          const o = randomScan();
          const got = summary(db.scan(o as ScanOptions));
          const want = summary(model.scan(o, now));
          assert.deepEqual(got, want, `step ${step}: scan ${describeScan(o)}`);
        } else if (r < 0.85) {
          if (snaps.length < 3) {
            snaps.push({ snap: db.snapshot(), model: model.clone() });
          }
        } else if (r < 0.88) {
          // Read through a snapshot: the world as it was, at today's clock.
          if (snaps.length > 0) {
            const i = rng.int(snaps.length);
            const { snap, model: old } = snaps[i];
            const k = randomKey();
            const want = old.get(k, now);
            const got = db.get(k, { snapshot: snap });
            assert.deepEqual(
              got && summary([{ key: k, ...got }]),
              want && summary([want]),
              `step ${step}: snapshot get ${hex(k)}`,
            );
            const o = randomScan();
            assert.deepEqual(
              summary(db.scan({ ...o, snapshot: snap } as ScanOptions)),
              summary(old.scan(o, now)),
              `step ${step}: snapshot scan ${describeScan(o)}`,
            );
            if (rng.chance(0.3)) {
              snap.release();
              snaps.splice(i, 1);
            }
          }
        } else if (r < 0.95) {
          now += rng.range(1, 60);
        } else if (r < 0.98) {
          await db.flush();
        } else if (r < 0.99) {
          await db.compactUntilIdle();
        } else if (rng.next() < cfg.reopenChance * 100) {
          // Close and reopen: snapshots die with the handle.
          for (const s of snaps) s.snap.release();
          snaps.length = 0;
          await db.close();
          db = await open(dir, options);
          reopens++;
          assert.ok(
            db.lastSeq >= maxSeq,
            `step ${step}: lastSeq ${db.lastSeq} went back below ${maxSeq}`,
          );
          assert.equal(db.recovery.tornTails.length, 0);
          assert.deepEqual(
            summary(db.scan()),
            summary(model.scan({}, now)),
            `step ${step}: everything after reopen`,
          );
        }
      }
      for (const s of snaps) s.snap.release();
      assert.deepEqual(summary(db.scan()), summary(model.scan({}, now)));
      const stats = db.stats() as { ops: { flushes: number } };
      await db.close();
      assert.ok(reopens > 0, "the run reopened at least once");
      assert.ok(
        stats.ops.flushes > 0 || reopens > 1,
        "the run flushed memtables to tables",
      );
      // A final reopen sees exactly the model.
      const last = await open(dir, options);
      try {
        assert.deepEqual(summary(last.scan()), summary(model.scan({}, now)));
        const seq = await last.put(bytes(1), bytes(2));
        assert.ok(seq > maxSeq, "seqnos are never reused after reopen");
      } finally {
        await last.close();
      }
    }));
}

Deno.test("random ops match a sorted map with inline flushes, reopens and tiny memtables", async () => {
  await runModel({
    seed: testSeed(0x5eed01),
    steps: 5000,
    options: {
      background: "inline",
      sync: "none",
      memtableBytes: 16 * 1024,
      fs: new NoSyncFileSystem(),
    },
    reopenChance: 0.01,
  });
});

Deno.test("random ops match a sorted map with synced writes and 64 KiB memtables", async () => {
  await runModel({
    seed: testSeed(0x5eed02),
    steps: 1000,
    options: { background: "inline", memtableBytes: 64 * 1024 },
    reopenChance: 0.005,
  });
});

Deno.test("random ops match a sorted map with flushes in the background worker", async () => {
  await runModel({
    seed: testSeed(0x5eed03),
    steps: 1500,
    options: { sync: "none", memtableBytes: 16 * 1024 },
    reopenChance: 0.002,
  });
});

Deno.test("entries expire by the injected clock in gets, scans and versions, also after a flush", async () => {
  await withTempDir(async (dir) => {
    let now = 5_000;
    const db = await open(dir, {
      background: "inline",
      clock: () => now,
    });
    try {
      const k = bytes(0x61);
      const v = await db.put(k, bytes(1), { expiresAt: 6_000 });
      await db.put(bytes(0x62), bytes(2));
      assert.equal(db.get(k)?.expiresAt, 6_000);
      assert.equal(db.version(k), v);
      now = 5_999;
      assert.equal(db.scan().toArray().length, 2);
      now = 6_000;
      assert.equal(db.get(k), undefined, "expired at exactly expiresAt");
      assert.equal(db.version(k), null);
      assert.deepEqual(db.scan().toArray().map((i) => hex(i.key)), ["62"]);
      assert.deepEqual(
        db.scan({ reverse: true }).toArray().map((i) => hex(i.key)),
        ["62"],
      );
      await db.flush();
      assert.equal(
        db.get(k),
        undefined,
        "still expired when read from a table",
      );
      now = 5_500;
      assert.deepEqual(
        db.get(k)?.value,
        bytes(1),
        "clock is consulted per read",
      );
      now = 7_000;
      // An expired key counts as absent for conditions.
      await assert.rejects(
        db.put(k, bytes(3), { ifVersion: v }),
        (e: unknown) =>
          e instanceof ShaleError && e.code === "precondition_failed",
      );
      const v2 = await db.put(k, bytes(3), { ifVersion: null });
      assert.ok(v2 > v);
    } finally {
      await db.close();
    }
  });
});

Deno.test("a snapshot keeps seeing old values across later writes, deletes and flushes", async () => {
  await withTempDir(async (dir) => {
    const db = await open(dir, { background: "inline", memtableBytes: 4096 });
    try {
      for (let i = 0; i < 50; i++) await db.put(bytes(i), bytes(i));
      const snap = db.snapshot();
      for (let i = 0; i < 50; i += 2) await db.delete(bytes(i));
      for (let i = 1; i < 50; i += 2) await db.put(bytes(i), bytes(0xff));
      await db.flush();
      await db.compactUntilIdle();
      assert.equal(db.scan({ snapshot: snap }).toArray().length, 50);
      assert.deepEqual(db.get(bytes(4), { snapshot: snap })?.value, bytes(4));
      assert.deepEqual(db.get(bytes(5), { snapshot: snap })?.value, bytes(5));
      assert.equal(db.get(bytes(4)), undefined);
      assert.deepEqual(
        db.scan({ snapshot: snap, reverse: true, limit: 2 }).toArray().map(
          (i) => i.value[0],
        ),
        [49, 48],
      );
      snap.release();
      assert.equal(db.scan().toArray().length, 25);
    } finally {
      await db.close();
    }
  });
});

Deno.test("seqnos strictly increase across many reopens, even with nothing flushed", async () => {
  await withTempDir(async (dir) => {
    let last = 0;
    for (let round = 0; round < 5; round++) {
      const db = await open(dir, { background: "inline" });
      try {
        assert.ok(db.lastSeq >= last, `round ${round}`);
        for (let i = 0; i < 3; i++) {
          const seq = round % 2 === 0
            ? await db.put(bytes(round, i), bytes(1))
            : await db.delete(bytes(round, i));
          assert.ok(seq > last, `round ${round}: ${seq} after ${last}`);
          last = seq;
        }
        if (round === 3) await db.flush();
      } finally {
        await db.close();
      }
    }
  });
});
