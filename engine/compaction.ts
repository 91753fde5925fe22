/**
 * Leveled compaction: picking what to compact (pure functions of a Version)
 * and running a compaction (file work only; runs in the background worker).
 *
 * Shape: L0 holds up to `l0CompactionTrigger` tables, possibly overlapping.
 * L1's target size is `baseLevelBytes`, each deeper level 10x the one above,
 * down to L6. The level whose size most exceeds its target goes first; within
 * a level a compact pointer rotates through the key space.
 *
 * @module
 */
import { compareBytes } from "./coding.ts";
import { BlockCache } from "./cache.ts";
import type { Entry } from "./entry.ts";
import { KIND_DELETE, KIND_PUT } from "./entry.ts";
import { CompactionInputs } from "./compaction_input.ts";
import type { KeyRange } from "./deeper_ranges.ts";
import { DeeperRanges } from "./deeper_ranges.ts";
import type { FileSystem } from "./fs.ts";
import { MergingIterator } from "./iterator.ts";
import type { TableMeta, VersionEdit } from "./manifest.ts";
import { NUM_LEVELS } from "./manifest.ts";
import type { Compression } from "./sstable/codec.ts";
import { RateLimiter } from "./rate_limiter.ts";
import type { TableProps } from "./sstable/writer.ts";
import { tablePath } from "./filename.ts";
import { TableWriter } from "./sstable/writer.ts";
import type { Version } from "./version.ts";
import { overlaps } from "./version.ts";
import type { RangeTombstone } from "./range_tombstones.ts";
import { RangeTombstoneIndex } from "./range_tombstones.ts";

/** Sizes that shape the tree. */
export interface LevelShape {
  l0CompactionTrigger: number;
  baseLevelBytes: number;
}

/** Target size of level `l` (>= 1): base, then 10x per level. */
export function levelTarget(shape: LevelShape, l: number): number {
  return shape.baseLevelBytes * 10 ** (l - 1);
}

/** A level's compaction score: >= 1 means it should be compacted. */
export function levelScore(v: Version, shape: LevelShape, l: number): number {
  if (l === 0) return v.levels[0].length / shape.l0CompactionTrigger;
  if (l === NUM_LEVELS - 1) return 0; // the last level has nowhere to go
  return v.levelBytes(l) / levelTarget(shape, l);
}

/** A chosen compaction: inputs from `level` merged into `level + 1`. */
export interface CompactionPick {
  level: number;
  inputs: TableMeta[];
  /** Overlapping tables of the output level. */
  overlapping: TableMeta[];
  outputLevel: number;
  /**
   * Key ranges of the tables in deeper levels that overlap the compaction,
   * to decide if a tombstone can go: one list per level that has any,
   * nearest first, each in its level's order (sorted by smallest key).
   */
  deeper: KeyRange[][];
}

function rangeOf(
  tables: readonly TableMeta[],
): { lo: Uint8Array; hi: Uint8Array } {
  let lo = tables[0].smallest;
  let hi = tables[0].largest;
  for (const t of tables) {
    if (compareBytes(t.smallest, lo) < 0) lo = t.smallest;
    if (compareBytes(t.largest, hi) > 0) hi = t.largest;
  }
  return { lo, hi };
}

/**
 * Builds the pick for compacting `inputs` of `level` into `outputLevel`
 * (the next level, or the same level to rewrite tables in place: how
 * compactRange purges the bottom level).
 */
export function pickFor(
  v: Version,
  level: number,
  inputs: TableMeta[],
  outputLevel: number = level + 1,
): CompactionPick {
  const { lo, hi } = rangeOf(inputs);
  const overlapping = outputLevel === level
    ? []
    : v.levels[outputLevel].filter((t) => overlaps(t, lo, hi));
  const all = overlapping.length ? [...inputs, ...overlapping] : inputs;
  const r = rangeOf(all);
  const deeper: KeyRange[][] = [];
  for (let l = outputLevel + 1; l < NUM_LEVELS; l++) {
    const ranges: KeyRange[] = [];
    for (const t of v.levels[l]) {
      if (overlaps(t, r.lo, r.hi)) {
        ranges.push({ smallest: t.smallest, largest: t.largest });
      }
    }
    if (ranges.length) deeper.push(ranges);
  }
  return { level, inputs, overlapping, outputLevel, deeper };
}

/**
 * Picks the most urgent compaction, or undefined when every level is within
 * its target. L0 takes all its tables (they may overlap each other, so a
 * subset could leave an older version above a newer one).
 */
export function pickCompaction(
  v: Version,
  shape: LevelShape,
  pointers: readonly (Uint8Array | undefined)[],
): CompactionPick | undefined {
  let best = -1;
  let bestScore = 1;
  for (let l = 0; l < NUM_LEVELS - 1; l++) {
    const s = levelScore(v, shape, l);
    if (s >= bestScore) {
      best = l;
      bestScore = s;
    }
  }
  if (best < 0) return undefined;
  if (best === 0) return pickFor(v, 0, [...v.levels[0]]);
  const tables = v.levels[best];
  const ptr = pointers[best];
  let t = tables[0];
  if (ptr) {
    t = tables.find((x) => compareBytes(x.smallest, ptr) > 0) ?? tables[0];
  }
  return pickFor(v, best, [t]);
}

/** A compaction as sent to the worker. */
export interface CompactionJob {
  type: "compact";
  dir: string;
  blockSize: number;
  bloomBitsPerKey: number;
  compression: Compression;
  tableTargetBytes: number;
  /** Bound on output bytes written per second (0: unlimited); see engine/rate_limiter.ts. */
  bytesPerSecond: number;
  /** Input table file numbers, newest source first (L0 newest first, then the level below). */
  inputs: number[];
  /**
   * The inputs' manifest entries, in `inputs` order: the tables of a level
   * >= 1 are merged as one sorted run (engine/compaction_input.ts).
   * Absent: every input is a merge child of its own.
   */
  inputTables?: TableMeta[];
  outputLevel: number;
  /** File numbers reserved for outputs, used in order. */
  outputNumbers: number[];
  /** Oldest seqno a live snapshot reads at: newer versions are all kept. */
  smallestSnapshot: number;
  /** Clock reading: puts expired by then become tombstones. */
  now: number;
  /** Deeper levels' key ranges, per level (see {@link CompactionPick.deeper}). */
  deeper: KeyRange[][];
  /**
   * Read the inputs through memory maps, as the main thread reads tables
   * (readMode "mmap"); positional reads when mapping fails.
   */
  map?: boolean;
  /**
   * Every range tombstone with a seqno up to `smallestSnapshot`: the
   * entries they hide are dropped, so each output is clean up to that
   * seqno (`TableMeta.cleanSeq`). Absent: none.
   */
  rangeTombstones?: RangeTombstone[];
}

/**
 * Whether a pick needs no merge: one input table, nothing overlapping it in
 * the output level, moving one level down. Its file is then relinked to
 * the output level by a manifest edit, without reading or writing it.
 */
export function isTrivialMove(pick: CompactionPick): boolean {
  return pick.inputs.length === 1 && pick.overlapping.length === 0 &&
    pick.outputLevel !== pick.level;
}

/** The tables a compaction removes: its inputs, then the overlapping ones. */
export function compactionInputs(
  pick: CompactionPick,
): { level: number; fileNumber: number }[] {
  return [...pick.inputs, ...pick.overlapping].map((t) => ({
    level: t.level,
    fileNumber: t.fileNumber,
  }));
}

/**
 * Where the picked level's next compaction starts: after the largest key
 * of this one's inputs (the pointer rotates through the key space).
 */
export function compactPointerAfter(
  pick: CompactionPick,
): { level: number; key: Uint8Array }[] {
  const key = pick.inputs.reduce(
    (m, t) => compareBytes(t.largest, m) > 0 ? t.largest : m,
    pick.inputs[0].largest,
  );
  return [{ level: pick.level, key }];
}

/** The manifest edit of a trivial move (see {@link isTrivialMove}). */
export function trivialMoveEdit(pick: CompactionPick): VersionEdit {
  const t = pick.inputs[0];
  return {
    deleted: compactionInputs(pick),
    added: [{ ...t, level: pick.outputLevel }],
    compactPointers: compactPointerAfter(pick),
  };
}

/**
 * How many file numbers to reserve for a merge's outputs: the input bytes
 * with half again for slack, in target-sized tables, plus two.
 */
export function outputReserve(
  pick: CompactionPick,
  tableTargetBytes: number,
): number {
  let bytes = 0;
  for (const t of pick.inputs) bytes += t.size;
  for (const t of pick.overlapping) bytes += t.size;
  return Math.ceil(bytes * 1.5 / tableTargetBytes) + 2;
}

/** What a merge needs besides its pick (from the options and the Db). */
export interface CompactionSettings {
  dir: string;
  blockSize: number;
  bloomBitsPerKey: number;
  compression: Compression;
  tableTargetBytes: number;
  /** Bound on output bytes written per second (0: unlimited). */
  bytesPerSecond: number;
  /** Oldest seqno a live snapshot reads at. */
  smallestSnapshot: number;
  /** Clock reading at the start. */
  now: number;
  /** Read the inputs through memory maps (see {@link CompactionJob.map}). */
  map?: boolean;
}

/**
 * The job description sent to the worker for a merge of `pick`, writing
 * tables numbered from `outputNumbers` (mini-lsm's
 * `generate_compaction_task`).
 */
export function compactionJob(
  pick: CompactionPick,
  settings: CompactionSettings,
  outputNumbers: number[],
): CompactionJob {
  return {
    type: "compact",
    dir: settings.dir,
    blockSize: settings.blockSize,
    bloomBitsPerKey: settings.bloomBitsPerKey,
    compression: settings.compression,
    tableTargetBytes: settings.tableTargetBytes,
    bytesPerSecond: settings.bytesPerSecond,
    inputs: compactionInputs(pick).map((d) => d.fileNumber),
    inputTables: [...pick.inputs, ...pick.overlapping],
    outputLevel: pick.outputLevel,
    outputNumbers,
    smallestSnapshot: settings.smallestSnapshot,
    now: settings.now,
    deeper: pick.deeper,
    map: settings.map,
  };
}

/** A table's manifest entry at `level`, from what its writer reported. */
export function tableMetaFrom(p: TableProps, level: number): TableMeta {
  return {
    fileNumber: p.fileNumber,
    level,
    size: p.fileSize,
    entries: p.entries,
    minSeq: p.minSeq,
    maxSeq: p.maxSeq,
    smallest: p.smallestKey,
    largest: p.largestKey,
  };
}

/**
 * The manifest edit that installs a merge's outputs in place of its inputs
 * (mini-lsm's `apply_compaction_result`).
 */
export function compactionEdit(
  pick: CompactionPick,
  result: CompactionResult,
  nextFileNumber: number,
): VersionEdit {
  return {
    deleted: compactionInputs(pick),
    added: result.outputs.map((o) => tableMetaFrom(o, pick.outputLevel)),
    compactPointers: compactPointerAfter(pick),
    nextFileNumber,
  };
}

/** What a compaction wrote and read. */
export interface CompactionResult {
  type: "compact";
  outputs: TableProps[];
  bytesRead: number;
  entriesIn: number;
  entriesOut: number;
  dropped: number;
}

/**
 * Output bytes written between two rate-limit requests: the slice of work
 * done without yielding (the table writer's output buffer is 64 KiB).
 */
const RATE_SLICE_BYTES = 64 * 1024;

/** `key` equals `buf[0..len)`; compared from the end, where sorted keys differ. */
function sameKey(key: Uint8Array, buf: Uint8Array, len: number): boolean {
  if (key.length !== len) return false;
  for (let i = len - 1; i >= 0; i--) if (key[i] !== buf[i]) return false;
  return true;
}

/**
 * Merges the inputs into new tables of the output level. Per key, versions
 * arrive newest first; a version is dropped when a newer one of the same key
 * is already visible to every snapshot. An expired put is written as a
 * tombstone (it must still hide older versions below), and a tombstone is
 * dropped when every snapshot sees it and no deeper level may hold the key.
 * An entry hidden by a range tombstone that every snapshot sees is dropped
 * (and so are the older versions of its key, hidden as well).
 * Outputs split at the target size, but only between keys, so each key's
 * versions stay in one table of the level.
 */
export async function runCompaction(
  fs: FileSystem,
  job: CompactionJob,
): Promise<CompactionResult> {
  let inputs: CompactionInputs | undefined;
  const result: CompactionResult = {
    type: "compact",
    outputs: [],
    bytesRead: 0,
    entriesIn: 0,
    entriesOut: 0,
    dropped: 0,
  };
  let writer: TableWriter | undefined;
  let nextOutput = 0;
  const limiter = job.bytesPerSecond > 0
    ? new RateLimiter(job.bytesPerSecond)
    : undefined;
  // Output bytes of finished tables, and bytes already paid for.
  let finishedBytes = 0;
  let paidBytes = 0;
  try {
    inputs = new CompactionInputs(fs, job, new BlockCache(0));
    const merged = new MergingIterator(inputs.children, false);
    merged.start(undefined);
    const ranges = job.rangeTombstones?.length
      ? new RangeTombstoneIndex(job.rangeTombstones)
      : undefined;
    const deeper = new DeeperRanges(job.deeper);
    // The current user key, copied: an input's key is valid only until its
    // child moves (engine/sstable/block_cursor.ts).
    let curKey = new Uint8Array(64);
    let curLen = -1;
    let lastSeqForKey = Infinity;
    const tomb: Entry = {
      key: new Uint8Array(0),
      seq: 0,
      kind: KIND_DELETE,
      encoding: 0,
      expiresAt: 0,
      value: new Uint8Array(0),
    };
    for (; merged.valid(); merged.step()) {
      let e = merged.entry();
      result.entriesIn++;
      if (!sameKey(e.key, curKey, curLen)) {
        // Copied into one reused buffer (a slice() here, a fresh
        // ArrayBuffer per key, was once the merge loop's largest cost).
        if (e.key.length > curKey.length) {
          curKey = new Uint8Array(2 * e.key.length);
        }
        curKey.set(e.key);
        curLen = e.key.length;
        lastSeqForKey = Infinity;
        // Split on the bytes actually encoded: an estimate from raw key and
        // value sizes overshoots prefix-compressed keys several times, and
        // the outputs would outrun the file numbers reserved for them.
        // The last reserved file number takes whatever is left: numbers are
        // reserved from input file sizes, and compressed inputs rewritten
        // raw (compression switched off) can outgrow that reservation.
        if (
          writer && writer.estimatedSize >= job.tableTargetBytes &&
          nextOutput < job.outputNumbers.length
        ) {
          const props = await writer.finish();
          result.outputs.push(props);
          finishedBytes += props.fileSize;
          writer = undefined;
        }
      }
      // A newer version of this key is visible to every snapshot.
      const shadowed = lastSeqForKey <= job.smallestSnapshot;
      lastSeqForKey = e.seq;
      if (
        shadowed ||
        (ranges && ranges.hides(e.key, e.seq, job.smallestSnapshot))
      ) {
        result.dropped++;
        continue;
      }
      if (
        e.kind === KIND_PUT && e.expiresAt !== 0 && e.expiresAt <= job.now
      ) {
        tomb.key = e.key;
        tomb.seq = e.seq;
        e = tomb;
      }
      if (
        e.kind === KIND_DELETE && e.seq <= job.smallestSnapshot &&
        !deeper.contains(e.key)
      ) {
        result.dropped++;
        continue;
      }
      if (!writer) {
        if (nextOutput >= job.outputNumbers.length) {
          throw new Error("compaction ran out of reserved file numbers");
        }
        writer = TableWriter.create(
          fs,
          job.dir,
          job.outputNumbers[nextOutput++],
          {
            blockSize: job.blockSize,
            bloomBitsPerKey: job.bloomBitsPerKey,
            compression: job.compression,
          },
        );
      }
      writer.add(e);
      result.entriesOut++;
      if (limiter) {
        // Pay for each slice once written; waiting yields the worker.
        const written = finishedBytes + writer.estimatedSize;
        if (written - paidBytes >= RATE_SLICE_BYTES) {
          await limiter.request(written - paidBytes);
          paidBytes = written;
        }
      }
    }
    if (writer) {
      result.outputs.push(await writer.finish());
      writer = undefined;
    }
    // Every input was opened once the merge drained them all.
    result.bytesRead = inputs.bytesRead;
    return result;
  } catch (err) {
    writer?.abandon();
    // Outputs already finished are not in the manifest: remove them now
    // (open would remove them too).
    for (const o of result.outputs) {
      fs.remove(tablePath(job.dir, o.fileNumber));
    }
    throw err;
  } finally {
    inputs?.close();
  }
}
