/**
 * Leveled compaction end to end: tiny memtables, tables and level targets
 * so that a few hundred KiB of writes run many flushes and compactions.
 * Contents are compared with a sorted Map after every phase; the tree's
 * shape and the files on disk are read back from the manifest; snapshots
 * and open scans must keep seeing their data while compactions rewrite
 * everything underneath; a child process is killed with SIGKILL in the
 * middle of compactions; disk use is bounded after overwrites and deletes.
 *
 * Replay a failure with SHALE_SEED=<seed> (printed on failure).
 */
import assert from "node:assert/strict";
import type { Db, ScanOptions } from "../../mod.ts";
import { open } from "../../mod.ts";
import { compareBytes } from "../../engine/coding.ts";
import { tablePath } from "../../engine/filename.ts";
import { realFs } from "../../engine/fs.ts";
import type { TableMeta } from "../../engine/manifest.ts";
import { NUM_LEVELS, readManifest } from "../../engine/manifest.ts";
import type { DbOptions } from "../../engine/types.ts";
import type { ModelScan } from "../_helpers.ts";
import {
  concat,
  dec,
  enc,
  hex,
  NoSyncFileSystem,
  Rng,
  runUntilKilled,
  SortedModel,
  testSeed,
  unhex,
  withSeed,
  withTempDir,
} from "../_helpers.ts";

// ------------------------------------------------------------------ helpers

/** Shapes small enough that every few KiB of writes flush or compact. */
const TINY: DbOptions = {
  memtableBytes: 4 * 1024,
  tableTargetBytes: 4 * 1024,
  baseLevelBytes: 16 * 1024,
  l0CompactionTrigger: 2,
  l0SlowdownTrigger: 4,
  l0StopTrigger: 6,
  blockSize: 512,
  sync: "none",
};

/** Options for logic tests: no fsyncs on the main thread when inline. */
function tiny(
  background: "inline" | "worker",
  extra: DbOptions = {},
): DbOptions {
  return {
    ...TINY,
    background,
    fs: background === "inline" ? new NoSyncFileSystem() : undefined,
    ...extra,
  };
}

function ops(db: Db): Record<string, number> {
  return db.stats().ops as Record<string, number>;
}

function key(i: number): Uint8Array {
  return enc(`k${String(i).padStart(5, "0")}`);
}

/** A user key as tables and the manifest store it: key space 0, then the key. */
function stored(k: Uint8Array): Uint8Array {
  return concat(new Uint8Array([0]), k);
}

/** The tables the manifest on disk lists, per level. */
function manifestLevels(dir: string): TableMeta[][] {
  const found = readManifest(realFs, dir);
  assert.ok(found, "no manifest");
  return found.state.levels.map((l) =>
    [...l.values()].sort((a, b) => compareBytes(a.smallest, b.smallest))
  );
}

/** The deepest level holding any table (where compactRange leaves a range). */
function deepestLevel(levels: TableMeta[][]): number {
  let d = 0;
  levels.forEach((l, i) => {
    if (l.length > 0) d = i;
  });
  return d;
}

function manifestFiles(dir: string): Set<number> {
  return new Set(manifestLevels(dir).flat().map((t) => t.fileNumber));
}

function manifestEntries(dir: string): number {
  return manifestLevels(dir).flat().reduce((n, t) => n + t.entries, 0);
}

/** Table files in `dir`: file number -> size. */
function sstFiles(dir: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const e of Deno.readDirSync(dir)) {
    const m = /^(\d+)\.sst$/.exec(e.name);
    if (m) out.set(Number(m[1]), Deno.statSync(`${dir}/${e.name}`).size);
  }
  return out;
}

function sstBytes(dir: string): number {
  let n = 0;
  for (const size of sstFiles(dir).values()) n += size;
  return n;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * The tree after compactUntilIdle: levels >= 1 sorted and non-overlapping,
 * every level within its target, L0 below its trigger.
 */
function assertSettledTree(dir: string, o: DbOptions, what: string): void {
  const levels = manifestLevels(dir);
  assert.ok(
    levels[0].length < o.l0CompactionTrigger!,
    `${what}: L0 holds ${levels[0].length} tables`,
  );
  for (let l = 1; l < NUM_LEVELS; l++) {
    const tables = levels[l];
    let bytes = 0;
    for (let i = 0; i < tables.length; i++) {
      const t = tables[i];
      bytes += t.size;
      assert.equal(t.level, l, `${what}: table ${t.fileNumber} level`);
      assert.ok(
        compareBytes(t.smallest, t.largest) <= 0,
        `${what}: L${l} table ${t.fileNumber} has smallest > largest`,
      );
      if (i > 0) {
        assert.ok(
          compareBytes(tables[i - 1].largest, t.smallest) < 0,
          `${what}: L${l} tables ${tables[i - 1].fileNumber} ` +
            `(..${dec(tables[i - 1].largest)}) and ${t.fileNumber} ` +
            `(${dec(t.smallest)}..) overlap`,
        );
      }
    }
    if (l < NUM_LEVELS - 1) {
      const target = o.baseLevelBytes! * 10 ** (l - 1);
      assert.ok(bytes < target, `${what}: L${l} ${bytes} >= target ${target}`);
    }
  }
}

/**
 * Files on disk match the manifest: every .sst is referenced, every
 * referenced table exists, and no temporary file is left. Call with no
 * background work running and no scan open.
 */
function assertNoOrphans(dir: string, what: string): void {
  const live = manifestFiles(dir);
  const onDisk = sstFiles(dir);
  for (const n of onDisk.keys()) {
    assert.ok(live.has(n), `${what}: ${n}.sst is not in the manifest`);
  }
  for (const n of live) {
    assert.ok(onDisk.has(n), `${what}: manifest table ${n}.sst is missing`);
  }
  for (const e of Deno.readDirSync(dir)) {
    assert.ok(!e.name.endsWith(".tmp"), `${what}: ${e.name} left behind`);
  }
}

function line(i: {
  key: Uint8Array;
  value: Uint8Array;
  version: number;
  expiresAt: number;
}): string {
  return `${dec(i.key)}=${hex(i.value)}@${i.version}~${i.expiresAt}`;
}

function scanLines(db: Db, o: ScanOptions = {}): string[] {
  return [...db.scan(o)].map(line);
}

function assertMatches(
  db: Db,
  model: SortedModel,
  now: number,
  rng: Rng,
  what: string,
): void {
  assert.deepEqual(scanLines(db), model.scan({}, now).map(line), what);
  for (let i = 0; i < 3; i++) {
    const a = key(rng.int(2000));
    const b = key(rng.int(2000));
    const [start, end] = compareBytes(a, b) <= 0 ? [a, b] : [b, a];
    const o: ModelScan = { start, end, reverse: rng.chance(0.5) };
    assert.deepEqual(
      scanLines(db, o),
      model.scan(o, now).map(line),
      `${what}: scan ${dec(start)}..${dec(end)} reverse=${o.reverse}`,
    );
  }
  for (let i = 0; i < 100; i++) {
    const k = key(rng.int(2000));
    const got = db.get(k);
    const want = model.get(k, now);
    assert.equal(
      got && line({ key: k, ...got }),
      want && line(want),
      `${what}: get ${dec(k)}`,
    );
  }
}

/** Writes many distinct keys concurrently (order between them is irrelevant). */
async function putAll(
  db: Db,
  model: SortedModel,
  items: { k: Uint8Array; v: Uint8Array; expiresAt?: number }[],
): Promise<void> {
  for (let i = 0; i < items.length; i += 64) {
    const group = items.slice(i, i + 64);
    const seqs = await Promise.all(
      group.map((x) => db.put(x.k, x.v, { expiresAt: x.expiresAt })),
    );
    group.forEach((x, j) => model.set(x.k, x.v, seqs[j], x.expiresAt ?? 0));
  }
}

async function deleteAll(
  db: Db,
  model: SortedModel,
  keys: Uint8Array[],
): Promise<void> {
  for (let i = 0; i < keys.length; i += 64) {
    const group = keys.slice(i, i + 64);
    await Promise.all(group.map((k) => db.delete(k)));
    for (const k of group) model.delete(k);
  }
}

function sample(rng: Rng, n: number, share: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) if (rng.chance(share)) out.push(i);
  return out;
}

// ------------------------------------------------------------- model runs

async function modelRun(
  seed: number,
  background: "inline" | "worker",
  nKeys: number,
): Promise<void> {
  await withSeed(seed, (rng) =>
    withTempDir(async (dir) => {
      let now = 1_000_000;
      const o = tiny(background, { clock: () => now });
      const model = new SortedModel();
      let db = await open(dir, o);
      const value = () => rng.bytes(rng.range(10, 180));
      const settle = async (what: string) => {
        await db.compactUntilIdle();
        assertMatches(db, model, now, rng, `${what} (settled)`);
        assertSettledTree(dir, o, what);
        assertNoOrphans(dir, what);
      };
      const reopen = async () => {
        await db.close();
        db = await open(dir, o);
      };
      let compactions = 0;
      let trivialMoves = 0;
      const countAndReopen = async (what: string) => {
        compactions += ops(db).compactions;
        trivialMoves += ops(db).trivialMoves;
        await reopen();
        assertMatches(db, model, now, rng, `${what} (reopened)`);
      };
      try {
        const all = Array.from({ length: nKeys }, (_, i) => i);
        await putAll(db, model, all.map((i) => ({ k: key(i), v: value() })));
        assertMatches(db, model, now, rng, "load");
        await settle("load");

        for (let round = 0; round < 3; round++) {
          const some = sample(rng, nKeys, 0.5);
          await putAll(db, model, some.map((i) => ({ k: key(i), v: value() })));
          assertMatches(db, model, now, rng, `overwrite ${round}`);
        }
        await settle("overwrite");

        await deleteAll(db, model, sample(rng, nKeys, 0.3).map(key));
        assertMatches(db, model, now, rng, "delete");
        await countAndReopen("delete");
        await settle("delete");

        // Expiring puts, some of which expire before the next compaction:
        // compaction turns them into tombstones at the injected clock.
        const exp = sample(rng, nKeys, 0.25);
        await putAll(
          db,
          model,
          exp.map((i) => ({
            k: key(i),
            v: value(),
            expiresAt: now + rng.range(1, 2000),
          })),
        );
        assertMatches(db, model, now, rng, "expiring puts");
        now += 1000;
        assertMatches(db, model, now, rng, "half expired");
        await settle("half expired");
        await db.compactRange();
        assertMatches(db, model, now, rng, "half expired, compacted");
        now += 1000;
        assertMatches(db, model, now, rng, "all expired");
        await countAndReopen("all expired");

        // Mixed rounds: puts, deletes and expiring puts interleaved with
        // flushes, partial range compactions, clock steps and reopens.
        for (let round = 0; round < 4; round++) {
          const ks = sample(rng, nKeys, 0.3);
          const puts = ks.filter(() => rng.chance(0.7));
          const dels = ks.filter((i) => !puts.includes(i));
          await putAll(
            db,
            model,
            puts.map((i) => ({
              k: key(i),
              v: value(),
              expiresAt: rng.chance(0.1) ? now + rng.range(1, 500) : 0,
            })),
          );
          await deleteAll(db, model, dels.map(key));
          assertMatches(db, model, now, rng, `mixed ${round}`);
          if (rng.chance(0.5)) await db.flush();
          const a = rng.int(nKeys);
          await db.compactRange(key(a), key(a + rng.int(nKeys / 4)));
          assertMatches(db, model, now, rng, `mixed ${round}, range compacted`);
          now += rng.int(400);
          if (round % 2 === 1) await countAndReopen(`mixed ${round}`);
        }
        await settle("end");
        compactions += ops(db).compactions;
        trivialMoves += ops(db).trivialMoves;
        if (Deno.env.get("SHALE_DEBUG")) {
          console.log({ background, compactions, trivialMoves });
        }
        assert.ok(compactions >= 20, `only ${compactions} compactions ran`);
      } finally {
        await db.close();
      }
    }));
}

Deno.test("model: contents match a sorted Map through overwrites, deletes, expiry and reopens while many compactions run inline", async () => {
  await modelRun(testSeed(0xc0c0a), "inline", 1000);
});

Deno.test("model: the same with compactions in the background worker", async () => {
  await modelRun(testSeed(0xc0c0b), "worker", 400);
});

// --------------------------------------------------------------- snapshots

async function scanSnapshotRun(
  seed: number,
  background: "inline" | "worker",
): Promise<void> {
  await withSeed(seed, (rng) =>
    withTempDir(async (dir) => {
      const o = tiny(background);
      const db = await open(dir, o);
      try {
        const model = new SortedModel();
        const value = () => rng.bytes(rng.range(10, 120));
        await putAll(
          db,
          model,
          Array.from({ length: 800 }, (_, i) => ({ k: key(i), v: value() })),
        );
        await db.compactUntilIdle();
        // A few writes still in the memtable when the scans start.
        await putAll(
          db,
          model,
          sample(rng, 800, 0.05).map((i) => ({ k: key(i), v: value() })),
        );
        // The manifest on disk is appended before a Version is installed:
        // read it only when no background work is running.
        await db.compactUntilIdle();
        const before = model.clone();
        const filesBefore = manifestFiles(dir);
        assert.ok(filesBefore.size > 5, "expected several tables");

        const forward = db.scan();
        const range: ScanOptions = {
          start: key(100),
          end: key(700),
          reverse: true,
        };
        const backward = db.scan(range);
        const got = [line(forward.next().value!)];
        const gotBack = [line(backward.next().value!)];

        // Rewrite everything underneath: overwrite every key three times,
        // delete a third, add new keys, compact all the way down.
        for (let round = 0; round < 3; round++) {
          await putAll(
            db,
            model,
            Array.from({ length: 800 }, (_, i) => ({ k: key(i), v: value() })),
          );
        }
        await deleteAll(db, model, sample(rng, 800, 0.33).map(key));
        await putAll(
          db,
          model,
          Array.from({ length: 200 }, (_, i) => ({
            k: key(800 + i),
            v: value(),
          })),
        );
        await db.compactRange();
        await db.compactUntilIdle();
        const filesAfter = manifestFiles(dir);
        for (const n of filesBefore) {
          assert.ok(!filesAfter.has(n), `table ${n} was not rewritten`);
          assert.ok(exists(tablePath(dir, n)), `pinned table ${n} was deleted`);
        }
        // Midway, the scans still read their snapshot.
        for (let i = 0; i < 100; i++) got.push(line(forward.next().value!));

        for (const item of forward) got.push(line(item));
        for (const item of backward) gotBack.push(line(item));
        assert.deepEqual(got, before.scan().map(line));
        assert.deepEqual(gotBack, before.scan(range).map(line));
        for (const n of filesBefore) {
          assert.ok(!exists(tablePath(dir, n)), `obsolete table ${n} remains`);
        }
        assertMatches(db, model, 0, rng, "after the scans");
        assertNoOrphans(dir, "after the scans");
      } finally {
        await db.close();
      }
    }));
}

Deno.test("a scan opened before heavy writes and compactions returns exactly its snapshot's data (inline)", async () => {
  await scanSnapshotRun(testSeed(0x5ca1), "inline");
});

Deno.test("a scan opened before heavy writes and compactions returns exactly its snapshot's data (worker)", async () => {
  await scanSnapshotRun(testSeed(0x5ca2), "worker");
});

Deno.test("snapshot() reads old versions after compactRange; releasing it lets compaction drop them", async () => {
  await withSeed(testSeed(0x5a9), (rng) =>
    withTempDir(async (dir) => {
      const db = await open(dir, tiny("inline"));
      try {
        const N = 400;
        const model = new SortedModel();
        const value = () => rng.bytes(rng.range(10, 100));
        const all = Array.from({ length: N }, (_, i) => i);
        await putAll(db, model, all.map((i) => ({ k: key(i), v: value() })));
        await db.compactUntilIdle();
        const snap = db.snapshot();
        const old = model.clone();

        await putAll(db, model, all.map((i) => ({ k: key(i), v: value() })));
        await deleteAll(db, model, sample(rng, N, 0.5).map(key));
        await db.compactRange();
        await putAll(db, model, all.map((i) => ({ k: key(i), v: value() })));
        await deleteAll(db, model, sample(rng, N, 0.5).map(key));
        await db.compactRange();

        for (let i = 0; i < N; i++) {
          const k = key(i);
          const atSnap = db.get(k, { snapshot: snap });
          const want = old.get(k);
          assert.equal(
            atSnap && line({ key: k, ...atSnap }),
            want && line(want),
          );
          const cur = db.get(k);
          const wantCur = model.get(k);
          assert.equal(
            cur && line({ key: k, ...cur }),
            wantCur && line(wantCur),
          );
        }
        assert.deepEqual(
          scanLines(db, { snapshot: snap }),
          old.scan().map(line),
        );
        assert.deepEqual(scanLines(db), model.scan().map(line));
        // The snapshot's versions (and the tombstones above them) are kept.
        assert.ok(manifestEntries(dir) > model.size + N / 2);

        snap.release();
        // One table holding the first and the last key spans every table
        // below it, so compacting it down rewrites them all: the released
        // snapshot's versions go.
        await putAll(
          db,
          model,
          [0, N - 1].map((i) => ({ k: key(i), v: value() })),
        );
        await db.compactRange();
        assert.equal(manifestEntries(dir), model.size);
        assert.deepEqual(scanLines(db), model.scan().map(line));
        assertNoOrphans(dir, "end");
      } finally {
        await db.close();
      }
    }));
});

Deno.test({
  name:
    "compactRange after a snapshot is released drops the versions it kept in the last level",
}, async () => {
  await withSeed(testSeed(0x5aa), (rng) =>
    withTempDir(async (dir) => {
      const db = await open(dir, tiny("inline"));
      try {
        const N = 200;
        const model = new SortedModel();
        const all = Array.from({ length: N }, (_, i) => i);
        const value = () => rng.bytes(50);
        await putAll(db, model, all.map((i) => ({ k: key(i), v: value() })));
        const snap = db.snapshot();
        await putAll(db, model, all.map((i) => ({ k: key(i), v: value() })));
        await deleteAll(db, model, all.filter((i) => i % 2 === 0).map(key));
        await db.compactRange(); // everything in the last level
        // Odd keys: new + old version; even keys: tombstone, new, old (the
        // new version is newer than the snapshot, so it is not shadowed).
        assert.equal(manifestEntries(dir), 2 * N + N / 2);
        snap.release();
        await db.compactRange();
        assert.equal(
          manifestEntries(dir),
          model.size,
          "old versions and tombstones are still on disk after compactRange",
        );
        assert.deepEqual(scanLines(db), model.scan().map(line));
      } finally {
        await db.close();
      }
    }));
});

Deno.test("an obsolete table is deleted only after the scan that pinned it finishes or is abandoned", async () => {
  await withSeed(testSeed(0x0b5), (rng) =>
    withTempDir(async (dir) => {
      const db = await open(dir, tiny("inline"));
      try {
        const model = new SortedModel();
        const load = () =>
          putAll(
            db,
            model,
            Array.from({ length: 300 }, (_, i) => ({
              k: key(i),
              v: rng.bytes(60),
            })),
          );
        await load();
        await db.flush();
        const first = [...manifestFiles(dir)];
        const scan = db.scan();
        scan.next();
        const abandoned = db.scan({ start: key(150) });
        abandoned.next();

        await load();
        await db.compactRange();
        for (const n of first) {
          assert.ok(!manifestFiles(dir).has(n), `table ${n} still live`);
          assert.ok(
            exists(tablePath(dir, n)),
            `table ${n} deleted under a scan`,
          );
        }
        abandoned.return(undefined);
        for (const n of first) {
          assert.ok(
            exists(tablePath(dir, n)),
            `table ${n} deleted under a scan`,
          );
        }
        let count = 1;
        for (const _ of scan) count++;
        assert.equal(count, 300);
        // Obsolete tables are deleted off the main thread
        // (engine/file_deleter.ts); compactUntilIdle waits for that.
        await db.compactUntilIdle();
        for (const n of first) {
          assert.ok(!exists(tablePath(dir, n)), `table ${n} was not deleted`);
        }

        // A second generation, released by breaking out of a for-of.
        const second = [...manifestFiles(dir)];
        for (const _ of db.scan()) {
          await load();
          await db.compactRange();
          for (const n of second) assert.ok(exists(tablePath(dir, n)));
          break;
        }
        await db.compactUntilIdle();
        for (const n of second) assert.ok(!exists(tablePath(dir, n)));
        assertNoOrphans(dir, "end");
      } finally {
        await db.close();
      }
    }));
});

Deno.test("closing while a compaction runs leaves no obsolete table behind", async () => {
  await withSeed(testSeed(0xc105), (rng) =>
    withTempDir(async (dir) => {
      const db = await open(dir, tiny("inline", { memtableBytes: 1 << 20 }));
      let closed = false;
      try {
        const model = new SortedModel();
        for (let t = 0; t < 2; t++) {
          await putAll(
            db,
            model,
            Array.from({ length: 200 }, (_, i) => ({
              k: key(i),
              v: rng.bytes(50),
            })),
          );
          await db.flush();
        }
        // The second flush reached the L0 trigger and started a compaction;
        // close() waits for it to install.
        assert.equal(ops(db).compactions, 0);
        await db.close();
        closed = true;
        assert.deepEqual(manifestLevels(dir)[0], [], "the compaction ran");
        assertNoOrphans(dir, "after close");
      } finally {
        if (!closed) await db.close();
      }
    }));
});

// ---------------------------------------------------------- manual ranges

Deno.test("compactRange over a subrange rewrites only tables overlapping it", async () => {
  await withSeed(testSeed(0x5b), (rng) =>
    withTempDir(async (dir) => {
      // No automatic compaction: only compactRange moves data.
      const o = tiny("inline", {
        memtableBytes: 8 * 1024,
        tableTargetBytes: 2 * 1024,
        baseLevelBytes: 1 << 30,
        l0CompactionTrigger: 100,
        l0SlowdownTrigger: 200,
        l0StopTrigger: 300,
      });
      const db = await open(dir, o);
      try {
        const model = new SortedModel();
        const all = Array.from({ length: 1000 }, (_, i) => i);
        await putAll(
          db,
          model,
          all.map((i) => ({ k: key(i), v: rng.bytes(80) })),
        );
        await db.compactRange();
        // compactRange leaves the range in the deepest level holding data:
        // L1 here, the first level below L0.
        const deepest = deepestLevel(manifestLevels(dir));
        assert.equal(deepest, 1);
        const bottom = manifestLevels(dir)[deepest];
        assert.ok(bottom.length >= 20, `${bottom.length} bottom tables`);
        assert.equal(manifestLevels(dir).flat().length, bottom.length);
        const total = bottom.reduce((n, t) => n + t.size, 0);

        const lo = key(300);
        const hi = key(399);
        await putAll(
          db,
          model,
          all.slice(300, 400).map((i) => ({ k: key(i), v: rng.bytes(80) })),
        );
        await db.flush();
        const written0 = ops(db).compactBytesWritten;
        await db.compactRange(lo, hi);
        const written = ops(db).compactBytesWritten - written0;
        if (Deno.env.get("SHALE_DEBUG")) console.log({ written, total });

        const after = manifestLevels(dir);
        const afterFiles = new Set(after[deepest].map((t) => t.fileNumber));
        let kept = 0;
        for (const t of bottom) {
          // Table bounds are stored keys: key-space byte 0, then the key.
          const outside = compareBytes(t.largest, stored(lo)) < 0 ||
            compareBytes(t.smallest, stored(hi)) > 0;
          if (outside) {
            assert.ok(afterFiles.has(t.fileNumber), `table ${t.fileNumber}`);
            kept++;
          } else {
            assert.ok(!afterFiles.has(t.fileNumber), `table ${t.fileNumber}`);
          }
        }
        assert.ok(kept >= bottom.length - 10, `only ${kept} tables kept`);
        for (let l = 0; l < NUM_LEVELS; l++) {
          if (l === deepest) continue;
          assert.deepEqual(after[l], [], `level ${l} after compactRange`);
        }
        assertMatches(db, model, 0, rng, "subrange");

        // An L0 table outside the range stays where it is.
        await putAll(
          db,
          model,
          all.slice(700, 750).map((i) => ({ k: key(i), v: rng.bytes(80) })),
        );
        await db.flush();
        const l0 = manifestLevels(dir)[0].map((t) => t.fileNumber);
        assert.ok(l0.length > 0);
        await db.compactRange(key(0), key(99));
        assert.deepEqual(manifestLevels(dir)[0].map((t) => t.fileNumber), l0);
        await db.compactRange(undefined, key(99));
        await db.compactRange(key(900));
        assert.deepEqual(manifestLevels(dir)[0].map((t) => t.fileNumber), l0);
        await db.compactRange(key(740), undefined);
        assert.deepEqual(manifestLevels(dir)[0], []);
        assertMatches(db, model, 0, rng, "subrange, second round");
        assertNoOrphans(dir, "end");
      } finally {
        await db.close();
      }
    }));
});

Deno.test("trivial moves relink tables down the levels without rewriting them and keep every key", async () => {
  await withSeed(testSeed(0x7a1), (rng) =>
    withTempDir(async (dir) => {
      const o = tiny("inline", {
        memtableBytes: 1 << 20, // flushes only when asked
        baseLevelBytes: 4 * 1024,
        l0CompactionTrigger: 1,
      });
      let db = await open(dir, o);
      try {
        const model = new SortedModel();
        const flushed = new Set<number>();
        // Ascending, disjoint chunks: every new table lies past the others.
        for (let chunk = 0; chunk < 30; chunk++) {
          const base = chunk * 40;
          await putAll(
            db,
            model,
            Array.from({ length: 40 }, (_, j) => ({
              k: key(base + j),
              v: rng.bytes(rng.range(20, 80)),
            })),
          );
          await db.flush();
          for (const n of manifestFiles(dir)) flushed.add(n);
          await db.compactUntilIdle();
        }
        const moves = ops(db).trivialMoves;
        assert.ok(moves >= 30, `${moves} trivial moves`);
        assert.equal(ops(db).compactions, 0, "nothing needed a merge");
        // Every table on disk is one a flush wrote.
        for (const n of sstFiles(dir).keys()) assert.ok(flushed.has(n));
        const levels = manifestLevels(dir);
        assert.ok(
          levels.slice(2).some((l) => l.length > 0),
          "tables moved below L1",
        );
        assertSettledTree(dir, o, "moved");
        assertMatches(db, model, 0, rng, "moved");
        await db.close();
        db = await open(dir, o);
        assertMatches(db, model, 0, rng, "moved, reopened");
        assert.deepEqual(manifestLevels(dir), levels);
        assertNoOrphans(dir, "end");
      } finally {
        await db.close();
      }
    }));
});

Deno.test("a tombstone above an older version in a deeper level is kept until the bottom, so the key is never resurrected", async () => {
  await withSeed(testSeed(0x70b), (rng) =>
    withTempDir(async (dir) => {
      const o = tiny("inline", { memtableBytes: 1 << 20 });
      let db = await open(dir, o);
      try {
        const model = new SortedModel();
        const victims = Array.from({ length: 50 }, (_, i) => i * 7);
        const all = Array.from({ length: 400 }, (_, i) => i);
        await putAll(
          db,
          model,
          all.map((i) => ({ k: key(i), v: rng.bytes(40) })),
        );
        // Level targets of a byte push everything down to the last level.
        await db.close();
        db = await open(dir, { ...o, baseLevelBytes: 1 });
        await db.compactRange(); // into L1
        await db.compactUntilIdle(); // every level over target: down to L6
        await db.close();
        db = await open(dir, o);
        assert.equal(manifestLevels(dir)[NUM_LEVELS - 1].length > 0, true);
        assert.equal(deepestLevel(manifestLevels(dir).slice(0, -1)), 0);

        // Two overlapping L0 tables (tombstones in the first) merge into L1
        // (not a trivial move) with the old versions still in L6.
        const c0 = ops(db).compactions;
        await deleteAll(db, model, victims.map(key));
        await putAll(
          db,
          model,
          [1, 351].map((i) => ({ k: key(i), v: rng.bytes(40) })),
        );
        await db.flush();
        await putAll(
          db,
          model,
          [2, 352].map((i) => ({ k: key(i), v: rng.bytes(40) })),
        );
        await db.flush();
        await db.compactUntilIdle();
        assert.ok(ops(db).compactions > c0, "the L0 tables were merged");
        const upper = manifestLevels(dir).slice(1, NUM_LEVELS - 1).flat();
        assert.ok(
          upper.reduce((n, t) => n + t.entries, 0) >= victims.length + 4,
          "tombstones kept above the last level",
        );
        for (const i of victims) assert.equal(db.get(key(i)), undefined);
        assertMatches(db, model, 0, rng, "tombstones above");

        // Push the tombstones down level by level with tiny targets.
        await db.close();
        db = await open(dir, { ...o, baseLevelBytes: 64 });
        await db.compactUntilIdle();
        for (const i of victims) assert.equal(db.get(key(i)), undefined);
        assertMatches(db, model, 0, rng, "tombstones pushed down");

        await db.compactRange();
        assert.equal(manifestEntries(dir), model.size, "bottom drops them");
        for (const i of victims) assert.equal(db.get(key(i)), undefined);
        assertMatches(db, model, 0, rng, "bottom");
        await db.close();
        db = await open(dir, o);
        assertMatches(db, model, 0, rng, "reopened");
      } finally {
        await db.close();
      }
    }));
});

// ------------------------------------------------------------------- space

Deno.test("space: five overwrites of every key compact to at most 1.5x the live data; deleting everything compacts to nearly nothing", async () => {
  await withSeed(testSeed(0x5ace), (rng) =>
    withTempDir(async (dir) => {
      const o = tiny("inline", {
        memtableBytes: 16 * 1024,
        tableTargetBytes: 8 * 1024,
        baseLevelBytes: 32 * 1024,
        blockSize: 1024,
      });
      const db = await open(dir, o);
      try {
        const model = new SortedModel();
        const N = 2000;
        const round = () =>
          putAll(
            db,
            model,
            Array.from({ length: N }, (_, i) => ({
              k: key(i),
              v: rng.bytes(100),
            })),
          );
        await round();
        await db.compactRange();
        const live = sstBytes(dir);
        assert.ok(live > N * 100, `live data ${live}`);
        for (let i = 0; i < 5; i++) await round();
        await db.compactUntilIdle();
        const settled = sstBytes(dir);
        await db.compactRange();
        const compacted = sstBytes(dir);
        if (Deno.env.get("SHALE_DEBUG")) {
          console.log({ live, settled, compacted, ratio: compacted / live });
        }
        assert.ok(
          compacted <= 1.5 * live,
          `${compacted} bytes of tables for ${live} bytes of live data`,
        );
        assertMatches(db, model, 0, rng, "overwritten");

        await deleteAll(
          db,
          model,
          Array.from({ length: N }, (_, i) => key(i)),
        );
        await db.compactRange();
        const left = sstBytes(dir);
        assert.ok(left <= 4096, `${left} bytes of tables after deleting all`);
        assert.deepEqual(scanLines(db), []);
        assertNoOrphans(dir, "end");
      } finally {
        await db.close();
      }
    }));
});

Deno.test("a compaction of tiny entries with long shared key prefixes has enough output file numbers", async () => {
  await withTempDir(async (dir) => {
    const db = await open(dir, {
      ...tiny("inline"),
      memtableBytes: 64 * 1024,
      l0CompactionTrigger: 100,
      l0SlowdownTrigger: 200,
      l0StopTrigger: 300,
    });
    try {
      const prefix = "users/profile/settings/a-long-shared-prefix/";
      const model = new SortedModel();
      await putAll(
        db,
        model,
        Array.from({ length: 3000 }, (_, i) => ({
          k: enc(prefix + String(i).padStart(6, "0")),
          v: new Uint8Array(0),
        })),
      );
      await db.compactRange();
      assert.deepEqual(db.health(), { ok: true });
      assert.equal([...db.scan()].length, 3000);
      assertNoOrphans(dir, "end");
    } finally {
      await db.close();
    }
  });
});

Deno.test("a compaction that writes raw what its inputs stored compressed has enough output file numbers", async () => {
  // File numbers are reserved from the inputs' file sizes; JSON compressed
  // by zstd takes a fraction of what the same entries take raw.
  await withTempDir(async (dir) => {
    const shape: DbOptions = {
      ...tiny("inline"),
      memtableBytes: 64 * 1024,
      tableTargetBytes: 16 * 1024,
      l0CompactionTrigger: 100,
      l0SlowdownTrigger: 200,
      l0StopTrigger: 300,
    };
    const model = new SortedModel();
    let db = await open(dir, { ...shape, compression: "zstd" });
    try {
      await putAll(
        db,
        model,
        Array.from({ length: 2000 }, (_, i) => ({
          k: enc(`user:${String(i).padStart(6, "0")}`),
          v: enc(JSON.stringify({ id: i, name: "a name", tags: ["x", "y"] })),
        })),
      );
      await db.flush();
    } finally {
      await db.close();
    }
    db = await open(dir, { ...shape, compression: "none" });
    try {
      await db.compactRange();
      assert.deepEqual(db.health(), { ok: true });
      assert.deepEqual(
        scanLines(db),
        model.scan({}, Date.now()).map(line),
        "after the raw rewrite",
      );
      assertNoOrphans(dir, "end");
    } finally {
      await db.close();
    }
  });
});

// ------------------------------------------------------------------ kill -9

const CHILD = new URL("./_compaction_child.ts", import.meta.url).pathname;

async function runChild(
  dir: string,
  cycle: number,
  seed: number,
  killAfterMs: number,
): Promise<{ lines: string[]; compactions: number }> {
  const all = await runUntilKilled(
    CHILD,
    [dir, String(cycle), String(seed)],
    killAfterMs,
  );
  // "C <n>" lines report the child's compaction count; the rest are events.
  let compactions = 0;
  const lines: string[] = [];
  for (const l of all) {
    if (l.startsWith("C ")) compactions = Number(l.slice(2));
    else lines.push(l);
  }
  return { lines, compactions };
}

/** Files a crashed store may leave: tables the manifest lacks, temporaries. */
function leftovers(dir: string): string[] {
  const live = manifestFiles(dir);
  const out: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    const m = /^(\d+)\.sst$/.exec(e.name);
    if ((m && !live.has(Number(m[1]))) || e.name.endsWith(".tmp")) {
      out.push(e.name);
    }
  }
  return out;
}

Deno.test("kill -9 during compactions: every acknowledged write survives and open removes every orphan file", async () => {
  const cycles = Number(Deno.env.get("SHALE_CRASH_CYCLES") ?? 4);
  await withSeed(testSeed(0xdead), (rng) =>
    withTempDir(async (dir) => {
      const durable = new Map<string, string>(); // key hex -> value
      let totalAcked = 0;
      let totalCompactions = 0;
      let orphansSeen = 0;
      for (let cycle = 0; cycle < cycles; cycle++) {
        const killAfter = rng.range(200, 900);
        const { lines, compactions } = await runChild(
          dir,
          cycle,
          rng.int(2 ** 31),
          killAfter,
        );
        totalCompactions += compactions;
        // Per key: writes issued this cycle and whether each was acked.
        const writes = new Map<string, { value: string; acked: boolean }[]>();
        for (const l of lines.slice(1)) {
          const [tag, k, arg] = l.split(" ");
          if (!writes.has(k)) writes.set(k, []);
          const w = writes.get(k)!;
          if (tag === "I") w.push({ value: arg, acked: false });
          else if (tag === "A") {
            assert.ok(w.length > 0 && !w[w.length - 1].acked, `ack ${k}`);
            w[w.length - 1].acked = true;
            totalAcked++;
          } else assert.fail(`unexpected line from child: ${l}`);
        }

        const before = leftovers(dir);
        orphansSeen += before.length;
        const db = await open(dir, { background: "inline", sync: "none" });
        try {
          for (const name of before) {
            assert.ok(!exists(`${dir}/${name}`), `open left ${name} behind`);
          }
          const found = new Map<string, string>();
          for (const item of db.scan()) {
            found.set(hex(item.key), dec(item.value));
          }
          for (const k of found.keys()) {
            assert.ok(
              writes.has(k) || durable.has(k),
              `cycle ${cycle}: key ${k} was never written`,
            );
          }
          for (const [k, w] of writes) {
            const last = w.findLastIndex((x) => x.acked);
            // The last acknowledged write, or a later one that was in flight.
            const allowed = last >= 0
              ? w.slice(last).map((x) => x.value)
              : [durable.get(k) ?? "-", ...w.map((x) => x.value)];
            const got = found.get(k) ?? "-";
            assert.ok(
              allowed.includes(got),
              `cycle ${cycle}: key ${dec(unhex(k))} holds ` +
                `${got.slice(0, 20)}, expected one of ` +
                allowed.map((a) => a.slice(0, 20)).join(", "),
            );
            if (got === "-") durable.delete(k);
            else durable.set(k, got);
          }
          for (const [k, v] of found) assert.equal(v, durable.get(k));
          await db.compactUntilIdle();
          assertNoOrphans(dir, `cycle ${cycle}, after reopen`);
        } finally {
          await db.close();
        }
      }
      if (Deno.env.get("SHALE_DEBUG")) {
        console.log({ totalAcked, totalCompactions, orphansSeen });
      }
      assert.ok(totalAcked > cycles * 20, `only ${totalAcked} acked writes`);
      assert.ok(totalCompactions > 0, "no compaction ran before a kill");
    }));
});
