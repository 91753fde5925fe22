/**
 * Compaction picking is a pure function of a Version, the level shape and
 * the compact pointers: these tests build Versions by hand and check which
 * level is chosen, which tables go in, and which deeper key ranges decide
 * whether a tombstone may be dropped.
 */
import assert from "node:assert/strict";
import type { CompactionPick, LevelShape } from "../../engine/compaction.ts";
import {
  compactionEdit,
  compactionJob,
  compactPointerAfter,
  isTrivialMove,
  levelScore,
  levelTarget,
  outputReserve,
  pickCompaction,
  pickFor,
  trivialMoveEdit,
} from "../../engine/compaction.ts";
import type { TableMeta } from "../../engine/manifest.ts";
import { NUM_LEVELS } from "../../engine/manifest.ts";
import type { TableProps } from "../../engine/sstable/writer.ts";
import { Version } from "../../engine/version.ts";
import { dec, enc } from "../_helpers.ts";

const SHAPE: LevelShape = { l0CompactionTrigger: 4, baseLevelBytes: 1000 };
const NO_POINTERS: (Uint8Array | undefined)[] = new Array(NUM_LEVELS).fill(
  undefined,
);

let nextFile = 1;

/** A table of `level` covering [smallest, largest] with `size` bytes. */
function table(
  level: number,
  smallest: string,
  largest: string,
  size = 100,
): TableMeta {
  const n = nextFile++;
  return {
    fileNumber: n,
    level,
    size,
    entries: 10,
    minSeq: n * 10,
    maxSeq: n * 10 + 9,
    smallest: enc(smallest),
    largest: enc(largest),
  };
}

/** A Version from per-level table lists (missing levels are empty). */
function version(levels: Record<number, TableMeta[]>): Version {
  const out: TableMeta[][] = [];
  for (let l = 0; l < NUM_LEVELS; l++) {
    const tables = [...(levels[l] ?? [])];
    for (const t of tables) assert.equal(t.level, l, "test table level");
    if (l === 0) tables.sort((a, b) => b.maxSeq - a.maxSeq);
    else tables.sort((a, b) => dec(a.smallest).localeCompare(dec(b.smallest)));
    out.push(tables);
  }
  return new Version(out);
}

function files(tables: readonly TableMeta[]): number[] {
  return tables.map((t) => t.fileNumber).sort((a, b) => a - b);
}

function ranges(pick: CompactionPick): string[] {
  return pick.deeper.flat().map((r) => `${dec(r.smallest)}..${dec(r.largest)}`)
    .sort();
}

/** `n` non-overlapping tables of `level`, each `size` bytes. */
function run(level: number, n: number, size: number): TableMeta[] {
  const out: TableMeta[] = [];
  for (let i = 0; i < n; i++) {
    const lo = String(i * 10).padStart(3, "0");
    const hi = String(i * 10 + 5).padStart(3, "0");
    out.push(table(level, `k${lo}`, `k${hi}`, size));
  }
  return out;
}

Deno.test("level targets are the base size, then 10x per level", () => {
  assert.equal(levelTarget(SHAPE, 1), 1000);
  assert.equal(levelTarget(SHAPE, 2), 10_000);
  assert.equal(levelTarget(SHAPE, 5), 10_000_000);
  assert.equal(levelTarget(SHAPE, 6), 100_000_000);
});

Deno.test("an empty tree needs no compaction", () => {
  const v = version({});
  for (let l = 0; l < NUM_LEVELS; l++) assert.equal(levelScore(v, SHAPE, l), 0);
  assert.equal(pickCompaction(v, SHAPE, NO_POINTERS), undefined);
});

Deno.test("level 0 scores its table count against the trigger, deeper levels their bytes against their target", () => {
  const v = version({
    0: [table(0, "a", "z"), table(0, "a", "z"), table(0, "m", "n")],
    1: run(1, 3, 500),
    2: run(2, 2, 2500),
    3: run(3, 1, 300_000),
  });
  assert.equal(levelScore(v, SHAPE, 0), 3 / 4);
  assert.equal(levelScore(v, SHAPE, 1), 1500 / 1000);
  assert.equal(levelScore(v, SHAPE, 2), 5000 / 10_000);
  assert.equal(levelScore(v, SHAPE, 3), 300_000 / 100_000);
});

Deno.test("the last level always scores zero, however large it is", () => {
  const v = version({ 6: run(6, 5, 1e12) });
  assert.equal(levelScore(v, SHAPE, 6), 0);
  assert.equal(pickCompaction(v, SHAPE, NO_POINTERS), undefined);
});

Deno.test("levels below their targets (score < 1) are left alone", () => {
  const v = version({
    0: [table(0, "a", "b"), table(0, "c", "d"), table(0, "e", "f")],
    1: run(1, 9, 100),
    2: run(2, 9, 1000),
    6: run(6, 50, 1e9),
  });
  assert.equal(pickCompaction(v, SHAPE, NO_POINTERS), undefined);
});

Deno.test("a level exactly at its target (score 1) is compacted", () => {
  const atL0 = version({
    0: Array.from({ length: 4 }, () => table(0, "a", "b")),
  });
  assert.equal(pickCompaction(atL0, SHAPE, NO_POINTERS)?.level, 0);
  const atL2 = version({ 2: run(2, 10, 1000) });
  assert.equal(pickCompaction(atL2, SHAPE, NO_POINTERS)?.level, 2);
});

Deno.test("the level whose size most exceeds its target goes first", () => {
  // L0 1.25, L1 2.0, L2 3.0, L3 1.5
  const v = version({
    0: Array.from({ length: 5 }, () => table(0, "a", "z")),
    1: run(1, 4, 500),
    2: run(2, 6, 5000),
    3: run(3, 3, 50_000),
  });
  const pick = pickCompaction(v, SHAPE, NO_POINTERS)!;
  assert.equal(pick.level, 2);
  assert.equal(pick.outputLevel, 3);
  assert.equal(pick.inputs.length, 1);

  // Once L2 is fine, L1 (2.0) beats L3 (1.5) and L0 (1.25).
  const v2 = version({
    0: Array.from({ length: 5 }, () => table(0, "a", "z")),
    1: run(1, 4, 500),
    3: run(3, 3, 50_000),
  });
  assert.equal(pickCompaction(v2, SHAPE, NO_POINTERS)?.level, 1);
});

Deno.test("a full level 0 takes every L0 table, including ones that overlap nothing, plus the overlapping L1 tables", () => {
  const l0 = [
    table(0, "c", "e"),
    table(0, "d", "g"),
    table(0, "q", "r"), // overlaps no other L0 table
    table(0, "a", "b"),
  ];
  const l1 = [
    table(1, "0", "1"), // before everything: not an input
    table(1, "a", "a"), // touches the lower bound exactly
    table(1, "h", "p"), // inside [a, r]: the merged range covers the gap
    table(1, "r", "t"), // touches the upper bound exactly
    table(1, "s", "z"), // after everything
  ];
  const v = version({ 0: l0, 1: l1 });
  const pick = pickCompaction(v, SHAPE, NO_POINTERS)!;
  assert.equal(pick.level, 0);
  assert.equal(pick.outputLevel, 1);
  assert.deepEqual(files(pick.inputs), files(l0));
  assert.deepEqual(files(pick.overlapping), files([l1[1], l1[2], l1[3]]));
});

Deno.test("level 0 inputs keep newest-first order so the merge sees newer versions first", () => {
  const l0 = Array.from({ length: 4 }, () => table(0, "a", "z"));
  const v = version({ 0: l0 });
  const pick = pickCompaction(v, SHAPE, NO_POINTERS)!;
  const seqs = pick.inputs.map((t) => t.maxSeq);
  assert.deepEqual(seqs, [...seqs].sort((a, b) => b - a));
});

Deno.test("a deeper level compacts one table, rotating through the key space with the compact pointer", () => {
  const l2 = [
    table(2, "a", "c"),
    table(2, "d", "f"),
    table(2, "g", "i"),
    table(2, "j", "l"),
  ];
  const v = version({ 2: l2, 3: [table(3, "b", "e")] });
  // L2 at 4 x 5000 = 2x its target.
  for (const t of l2) t.size = 5000;
  const pointers = [...NO_POINTERS];
  const order: string[] = [];
  for (let i = 0; i < 6; i++) {
    const pick = pickCompaction(v, SHAPE, pointers)!;
    assert.equal(pick.level, 2);
    assert.equal(pick.inputs.length, 1);
    order.push(dec(pick.inputs[0].smallest));
    // What Db does after installing the result: advance the pointer past
    // the largest input key.
    pointers[2] = pick.inputs[0].largest;
  }
  assert.deepEqual(order, ["a", "d", "g", "j", "a", "d"]);
});

Deno.test("a compact pointer between tables starts at the next table; past the end it wraps to the first", () => {
  const l1 = [table(1, "b", "c"), table(1, "f", "h"), table(1, "m", "p")];
  for (const t of l1) t.size = 600;
  const v = version({ 1: l1 });
  const at = (ptr: string | undefined) => {
    const pointers = [...NO_POINTERS];
    pointers[1] = ptr === undefined ? undefined : enc(ptr);
    return dec(pickCompaction(v, SHAPE, pointers)!.inputs[0].smallest);
  };
  assert.equal(at(undefined), "b");
  assert.equal(at("a"), "b");
  assert.equal(at("d"), "f");
  assert.equal(at("h"), "m");
  assert.equal(at("k"), "m");
  assert.equal(at("p"), "b");
  assert.equal(at("zz"), "b");
});

Deno.test("the overlapping tables of the next level are those touching the input's range, bounds inclusive", () => {
  const input = table(1, "d", "k");
  const l2 = [
    table(2, "a", "c"), // ends just before
    table(2, "c", "d"), // ends on the lower bound
    table(2, "e", "f"), // inside
    table(2, "g", "z"), // starts inside, runs past
    table(2, "zz", "zzz"), // after
  ];
  const v = version({ 1: [input], 2: l2 });
  const pick = pickFor(v, 1, [input]);
  assert.equal(pick.outputLevel, 2);
  assert.deepEqual(files(pick.inputs), [input.fileNumber]);
  assert.deepEqual(files(pick.overlapping), files([l2[1], l2[2], l2[3]]));

  const l2b = [table(2, "k", "m")]; // starts on the upper bound
  assert.deepEqual(
    files(pickFor(version({ 1: [input], 2: l2b }), 1, [input]).overlapping),
    files(l2b),
  );
});

Deno.test("deeper ranges list every table below the output level that overlaps the whole compaction's range", () => {
  const input = table(1, "d", "f");
  // The overlapping L2 table widens the compaction to [b, h].
  const l2 = [table(2, "b", "h"), table(2, "x", "y")];
  const l3 = [table(3, "a", "a"), table(3, "a", "b"), table(3, "i", "j")];
  const l5 = [table(5, "g", "h"), table(5, "h", "q")];
  const l6 = [table(6, "0", "z")];
  const v = version({ 1: [input], 2: l2, 3: l3, 5: l5, 6: l6 });
  const pick = pickFor(v, 1, [input]);
  assert.deepEqual(files(pick.overlapping), [l2[0].fileNumber]);
  assert.deepEqual(ranges(pick), ["0..z", "a..b", "g..h", "h..q"]);
});

Deno.test("deeper ranges never include the input or output level itself", () => {
  const l0 = Array.from({ length: 4 }, () => table(0, "a", "m"));
  const l1 = [table(1, "b", "c")];
  const v = version({ 0: l0, 1: l1, 2: [table(2, "c", "d")] });
  const pick = pickCompaction(v, SHAPE, NO_POINTERS)!;
  assert.equal(pick.level, 0);
  assert.deepEqual(ranges(pick), ["c..d"]);
});

Deno.test("a compaction into the last level has no deeper ranges, so its tombstones can go", () => {
  const l5 = run(5, 3, 5_000_000); // 15 MB > 10 MB target
  const l6 = [table(6, "k000", "k999")];
  const v = version({ 5: l5, 6: l6 });
  const pick = pickCompaction(v, SHAPE, NO_POINTERS)!;
  assert.equal(pick.level, 5);
  assert.equal(pick.outputLevel, 6);
  assert.deepEqual(files(pick.overlapping), files(l6));
  assert.deepEqual(pick.deeper, []);
});

Deno.test("a table with nothing under it in the next level is a trivial move: one input, nothing overlapping", () => {
  const l1 = run(1, 3, 600);
  const v = version({ 1: l1, 3: [table(3, "k000", "k001")] });
  const pick = pickCompaction(v, SHAPE, NO_POINTERS)!;
  assert.equal(pick.level, 1);
  assert.equal(pick.inputs.length, 1);
  assert.deepEqual(pick.overlapping, []);
  // Still reports deeper data under its range.
  assert.deepEqual(ranges(pick), ["k000..k001"]);
});

Deno.test("picking does not modify the Version it looks at", () => {
  const l0 = Array.from({ length: 6 }, () => table(0, "a", "z"));
  const l1 = run(1, 4, 700);
  const v = version({ 0: l0, 1: l1 });
  const before = JSON.stringify(v.levels.map(files));
  pickCompaction(v, SHAPE, NO_POINTERS);
  pickFor(v, 1, [v.levels[1][2]]);
  assert.equal(JSON.stringify(v.levels.map(files)), before);
});

// ------------------------------------------ jobs and results (pure as well)

Deno.test("trivial move: only one input, nothing overlapping, and a level down", () => {
  const l1 = run(1, 3, 600);
  const v = version({ 1: l1, 2: [table(2, "k100", "k200")] });
  assert.equal(isTrivialMove(pickFor(v, 1, [l1[0]])), true);
  // Overlapping output table: must merge.
  const overlapped = version({ 1: l1, 2: [table(2, "k000", "k003")] });
  assert.equal(isTrivialMove(pickFor(overlapped, 1, [l1[0]])), false);
  // Two inputs: must merge (they are one compaction's output range).
  assert.equal(isTrivialMove(pickFor(v, 1, [l1[1], l1[2]])), false);
  // Rewriting in place (compactRange's bottom level) is never a move.
  assert.equal(isTrivialMove(pickFor(v, 1, [l1[0]], 1)), false);
});

Deno.test("a trivial move's edit relinks the table one level down and advances the pointer", () => {
  const l1 = run(1, 3, 600);
  const v = version({ 1: l1 });
  const pick = pickFor(v, 1, [l1[1]]);
  const edit = trivialMoveEdit(pick);
  assert.deepEqual(edit.deleted, [{ level: 1, fileNumber: l1[1].fileNumber }]);
  assert.equal(edit.added!.length, 1);
  assert.deepEqual(edit.added![0], { ...l1[1], level: 2 });
  assert.equal(l1[1].level, 1, "the input's meta is not modified");
  assert.deepEqual(edit.compactPointers, [{ level: 1, key: l1[1].largest }]);
  assert.equal(edit.nextFileNumber, undefined);
});

Deno.test("the compact pointer is the largest key among the inputs", () => {
  const l0 = [table(0, "a", "m"), table(0, "c", "x"), table(0, "b", "k")];
  const v = version({ 0: l0 });
  const ptr = compactPointerAfter(pickFor(v, 0, [...v.levels[0]]));
  assert.deepEqual(ptr.map((p) => [p.level, dec(p.key)]), [[0, "x"]]);
});

Deno.test("a merge job lists inputs then overlapping tables, and reserves outputs by size", () => {
  const l0 = [table(0, "k000", "k015", 4000), table(0, "k010", "k012", 1000)];
  const l1 = run(1, 3, 3000); // k000..k005, k010..k015, k020..k025
  const v = version({ 0: l0, 1: l1, 3: [table(3, "k001", "k002")] });
  const pick = pickFor(v, 0, [...v.levels[0]]);
  // (4000 + 1000 + 3000 + 3000) * 1.5 / 2000 -> 9 (rounded up), + 2 spare.
  assert.equal(outputReserve(pick, 2000), 11);
  const job = compactionJob(pick, {
    dir: "/d",
    blockSize: 4096,
    bloomBitsPerKey: 10,
    compression: "zstd",
    tableTargetBytes: 2000,
    bytesPerSecond: 5000,
    smallestSnapshot: 77,
    now: 1234,
  }, [50, 51]);
  assert.deepEqual(job.inputs, [
    ...v.levels[0].map((t) => t.fileNumber),
    l1[0].fileNumber,
    l1[1].fileNumber,
  ]);
  assert.equal(job.outputLevel, 1);
  assert.deepEqual(job.outputNumbers, [50, 51]);
  assert.equal(job.smallestSnapshot, 77);
  assert.equal(job.now, 1234);
  assert.equal(job.compression, "zstd");
  assert.equal(job.bytesPerSecond, 5000);
  assert.deepEqual(ranges(pick), ["k001..k002"]);
  assert.equal(job.deeper, pick.deeper);
});

Deno.test("a merge's edit swaps inputs for outputs at the output level", () => {
  const l1 = run(1, 2, 600);
  const l2 = [table(2, "k000", "k003")];
  const v = version({ 1: l1, 2: l2 });
  const pick = pickFor(v, 1, [l1[0]]);
  const out: TableProps = {
    fileNumber: 90,
    fileSize: 555,
    entries: 7,
    deletions: 1,
    minSeq: 3,
    maxSeq: 9,
    dataSize: 400,
    dataBlocks: 1,
    rawKeyBytes: 28,
    rawValueBytes: 300,
    smallestKey: enc("k000"),
    largestKey: enc("k005"),
  };
  const edit = compactionEdit(pick, {
    type: "compact",
    outputs: [out],
    bytesRead: 0,
    entriesIn: 0,
    entriesOut: 0,
    dropped: 0,
  }, 91);
  assert.deepEqual(edit.deleted, [
    { level: 1, fileNumber: l1[0].fileNumber },
    { level: 2, fileNumber: l2[0].fileNumber },
  ]);
  assert.deepEqual(edit.added, [{
    fileNumber: 90,
    level: 2,
    size: 555,
    entries: 7,
    minSeq: 3,
    maxSeq: 9,
    smallest: enc("k000"),
    largest: enc("k005"),
  }]);
  assert.equal(edit.nextFileNumber, 91);
  assert.deepEqual(edit.compactPointers, [{ level: 1, key: l1[0].largest }]);
});
