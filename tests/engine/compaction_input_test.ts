/**
 * A compaction's inputs as merge children: L0 tables one child each, each
 * level >= 1 one concatenated child whose tables open one at a time. The
 * merged stream is compared with the model (every input entry, sorted in
 * internal order); a corrupt table reached midway fails the compaction
 * with no outputs left and no table open.
 *
 * Replay a failure with SHALE_SEED=<seed> (printed on failure).
 */
import assert from "node:assert/strict";
import { BlockCache } from "../../engine/cache.ts";
import { CompactionInputs } from "../../engine/compaction_input.ts";
import type { CompactionJob } from "../../engine/compaction.ts";
import { runCompaction, tableMetaFrom } from "../../engine/compaction.ts";
import type { Entry } from "../../engine/entry.ts";
import { compareEntries, KIND_DELETE, KIND_PUT } from "../../engine/entry.ts";
import { CorruptionError } from "../../engine/errors.ts";
import { tablePath } from "../../engine/filename.ts";
import { realFs } from "../../engine/fs.ts";
import { MergingIterator } from "../../engine/iterator.ts";
import type { TableMeta } from "../../engine/manifest.ts";
import { TableReader } from "../../engine/sstable/reader.ts";
import { TableWriter } from "../../engine/sstable/writer.ts";
import type { Rng } from "../_helpers.ts";
import { hex, testSeed, withSeed, withTempDir } from "../_helpers.ts";

function keyOf(k: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, k);
  return b;
}

/** Tables of three levels: 3 overlapping L0 tables, 5 in L1, 4 in L2. */
class Tree {
  entries: Entry[] = [];
  /** Newest source first, as a compaction job lists them. */
  metas: TableMeta[] = [];
  #seq = 1_000_000;
  #file = 1;

  constructor(readonly dir: string, readonly rng: Rng) {}

  /** One level's tables; seqnos fall with depth (newer data is above). */
  async level(level: number, tables: number, keysEach: number) {
    const keys = new Set<number>();
    while (keys.size < tables * keysEach) keys.add(this.rng.int(100_000));
    const sorted = [...keys].sort((a, b) => a - b);
    for (let t = 0; t < tables; t++) {
      const part = level === 0
        ? sorted.filter((_, i) => i % tables === t) // overlapping ranges
        : sorted.slice(t * keysEach, (t + 1) * keysEach);
      const w = TableWriter.create(realFs, this.dir, this.#file++, {
        blockSize: 256,
      });
      for (const k of part) {
        const tomb = this.rng.chance(0.2);
        const e: Entry = {
          key: keyOf(k),
          seq: this.#seq--,
          kind: tomb ? KIND_DELETE : KIND_PUT,
          encoding: 0,
          expiresAt: 0,
          value: tomb ? new Uint8Array(0) : this.rng.bytes(this.rng.int(40)),
        };
        w.add(e);
        this.entries.push(e);
      }
      this.metas.push(tableMetaFrom(await w.finish(), level));
    }
  }

  static async build(dir: string, rng: Rng): Promise<Tree> {
    const t = new Tree(dir, rng);
    await t.level(0, 3, 150);
    await t.level(1, 5, 200);
    await t.level(2, 4, 300);
    t.entries.sort((a, b) => compareEntries(a.key, a.seq, b.key, b.seq));
    return t;
  }

  job(extra: Partial<CompactionJob> = {}): CompactionJob {
    return {
      type: "compact",
      dir: this.dir,
      blockSize: 256,
      bloomBitsPerKey: 10,
      compression: "none",
      tableTargetBytes: 2048,
      bytesPerSecond: 0,
      inputs: this.metas.map((m) => m.fileNumber),
      inputTables: this.metas,
      outputLevel: 2,
      outputNumbers: Array.from({ length: 200 }, (_, i) => 1000 + i),
      smallestSnapshot: 0,
      now: 0,
      deeper: [],
      map: true,
      ...extra,
    };
  }
}

function id(e: Entry): string {
  return `${hex(e.key)}@${e.seq}/${e.kind}/${hex(e.value)}`;
}

/** Drains the inputs' merge, checking it against the model. */
function drainAgainstModel(inputs: CompactionInputs, model: Entry[]): number {
  const merged = new MergingIterator(inputs.children, false);
  merged.start(undefined);
  let i = 0;
  let maxOpen = inputs.openCount;
  for (; merged.valid(); merged.step(), i++) {
    assert.ok(i < model.length, "no entry beyond the model's");
    assert.equal(id(merged.entry()), id(model[i]), `entry ${i}`);
    maxOpen = Math.max(maxOpen, inputs.openCount);
  }
  assert.equal(i, model.length, "every model entry");
  return maxOpen;
}

function fileBytes(dir: string, metas: TableMeta[]): number {
  let n = 0;
  for (const m of metas) n += Deno.statSync(tablePath(dir, m.fileNumber)).size;
  return n;
}

Deno.test("each level >= 1 is one merge child opening one table at a time, and the merge equals the sorted inputs", async () => {
  for (let s = 0; s < 4; s++) {
    await withSeed(testSeed(31 + s), (rng) =>
      withTempDir(async (dir) => {
        const tree = await Tree.build(dir, rng);
        const inputs = new CompactionInputs(
          realFs,
          tree.job(),
          new BlockCache(0),
        );
        try {
          assert.equal(inputs.children.length, 3 + 2, "3 L0 tables + 2 levels");
          // No table of a level opens before the merge starts; then the
          // 3 L0 tables + one table of each level, never more.
          assert.equal(inputs.openCount, 3);
          assert.equal(drainAgainstModel(inputs, tree.entries), 5);
          // Drained runs have closed their last table; L0's stay open.
          assert.equal(inputs.openCount, 3);
          assert.equal(inputs.bytesRead, fileBytes(dir, tree.metas));
        } finally {
          inputs.close();
        }
        assert.equal(inputs.openCount, 0);
      }));
  }
});

Deno.test("inputs without manifest entries, or out of key order, are each a child of their own", async () => {
  await withSeed(testSeed(7), (rng) =>
    withTempDir(async (dir) => {
      const tree = await Tree.build(dir, rng);
      const l1 = tree.metas.filter((m) => m.level === 1).reverse();
      const shuffled = [...tree.metas.filter((m) => m.level !== 1), ...l1];
      const jobs = [
        tree.job({ inputTables: undefined }),
        tree.job({ inputTables: tree.metas.slice(1) }), // disagrees with inputs
        tree.job({
          inputs: shuffled.map((m) => m.fileNumber),
          inputTables: shuffled,
        }),
      ];
      const children = [12, 12, 3 + 5 + 1];
      for (const [i, job] of jobs.entries()) {
        const inputs = new CompactionInputs(realFs, job, new BlockCache(0));
        try {
          assert.equal(inputs.children.length, children[i], `job ${i}`);
          drainAgainstModel(inputs, tree.entries);
        } finally {
          inputs.close();
        }
      }
    }));
});

Deno.test("runCompaction writes the same tables and counts with and without concatenated levels", async () => {
  await withSeed(testSeed(11), (rng) =>
    withTempDir(async (dir) => {
      const tree = await Tree.build(dir, rng);
      const read = (n: number) => {
        const r = TableReader.open(
          realFs,
          tablePath(dir, n),
          n,
          new BlockCache(0),
        );
        const out: string[] = [];
        const it = r.iterator();
        for (it.seekToFirst(); it.valid(); it.next()) out.push(id(it.entry()));
        r.close();
        return out;
      };
      const results = [];
      for (const [k, inputTables] of [tree.metas, undefined].entries()) {
        const outputNumbers = Array.from({ length: 200 }, (_, i) =>
          1000 * (k + 1) + i);
        const r = await runCompaction(
          realFs,
          tree.job({ inputTables, outputNumbers, smallestSnapshot: 1e9 }),
        );
        const { outputs, ...counts } = r;
        results.push({
          counts,
          tables: outputs.map((o) =>
            read(o.fileNumber)
          ),
        });
      }
      assert.deepEqual(results[0], results[1]);
      assert.ok(
        results[0].counts.dropped > 0,
        "tombstones and shadowed versions dropped",
      );
      assert.equal(results[0].counts.bytesRead, fileBytes(dir, tree.metas));
    }));
});

Deno.test("a corrupt table reached midway through a level fails the compaction and removes its finished outputs", async () => {
  await withSeed(testSeed(5), (rng) =>
    withTempDir(async (dir) => {
      const tree = await Tree.build(dir, rng);
      const bad = tree.metas.filter((m) => m.level === 1)[3];
      const path = tablePath(dir, bad.fileNumber);
      const bytes = Deno.readFileSync(path);
      bytes[bytes.length - 1] ^= 0xff; // the footer's magic
      Deno.writeFileSync(path, bytes);
      const job = tree.job();
      await assert.rejects(() => runCompaction(realFs, job), CorruptionError);
      for (const n of job.outputNumbers) {
        assert.throws(
          () => Deno.statSync(tablePath(dir, n)),
          Deno.errors.NotFound,
        );
      }
      // The run opened its tables up to the corrupt one and closed them.
      const inputs = new CompactionInputs(realFs, job, new BlockCache(0));
      const merged = new MergingIterator(inputs.children, false);
      assert.throws(() => {
        for (merged.start(undefined); merged.valid(); merged.step()) {
          // drain until the corrupt table is reached
        }
      }, CorruptionError);
      assert.ok(inputs.openCount > 0);
      inputs.close();
      assert.equal(inputs.openCount, 0);
    }));
});
