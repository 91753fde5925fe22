/**
 * A compaction's inputs as the children of its merge. An L0 table is a
 * child of its own (L0 tables overlap); the tables of a level >= 1 do not
 * overlap and are listed in key order, so they are concatenated into one
 * child (leveldb's level "concatenating iterator", engine/iterator.ts
 * LevelIterator): the merge heap then has L0 tables + 2 children instead of
 * one per table, and each table is opened only when the merge reaches it
 * and closed when it is done, so a merge holds one mapped table per level.
 * The heap saves less than its size suggests: tables the merge has not
 * reached sink to the bottom of the heap, so a step's sift-down mostly
 * meets only the active children (measured in bench/micro/compaction_merge.ts).
 *
 * @module
 */
import type { BlockCache } from "./cache.ts";
import { compareBytes } from "./coding.ts";
import type { EntryIterator } from "./entry.ts";
import { CorruptionError } from "./errors.ts";
import { tablePath } from "./filename.ts";
import type { FileSystem } from "./fs.ts";
import { LevelIterator } from "./iterator.ts";
import type { TableMeta } from "./manifest.ts";
import { TableReader } from "./sstable/reader.ts";

/** What opening the inputs needs from the job (see CompactionJob). */
export interface CompactionInputJob {
  dir: string;
  inputs: number[];
  inputTables?: TableMeta[];
  map?: boolean;
}

/**
 * Opens input table `n`, mapped when the job asks for it: a mapped block
 * costs the merge a copy instead of a positional read (op_node_fs_read_sync
 * and readAt were 12% of the compaction worker's time). A table that fails
 * to map is read with pread; corruption is corruption either way.
 */
function openInput(
  fs: FileSystem,
  job: CompactionInputJob,
  n: number,
  cache: BlockCache,
): TableReader {
  const path = tablePath(job.dir, n);
  if (job.map) {
    try {
      return TableReader.open(fs, path, n, cache, { map: true });
    } catch (err) {
      if (err instanceof CorruptionError) throw err;
    }
  }
  return TableReader.open(fs, path, n, cache);
}

/**
 * The open input tables of one merge. Its children move forward only, and
 * an entry's key and value are valid only until its child moves
 * (engine/sstable/block_cursor.ts). `close()` closes every table still
 * open (call it in a `finally`: a lazily opened table may fail to open, or
 * the merge may throw, with tables of several levels open).
 */
export class CompactionInputs {
  #open = new Map<number, TableReader>();
  /** File bytes of every table opened so far (all of them once drained). */
  bytesRead = 0;
  /** One child per L0 table, one per run of a level >= 1, inputs' order. */
  readonly children: EntryIterator[] = [];

  /**
   * Without `job.inputTables` (or when they disagree with `job.inputs`)
   * every input is a child of its own, opened at once.
   */
  constructor(
    readonly fs: FileSystem,
    readonly job: CompactionInputJob,
    readonly cache: BlockCache,
  ) {
    try {
      this.#openChildren();
    } catch (err) {
      this.close();
      throw err;
    }
  }

  #openChildren(): void {
    const job = this.job;
    const metas = job.inputTables;
    const usable = metas !== undefined &&
      metas.length === job.inputs.length &&
      metas.every((t, i) => t.fileNumber === job.inputs[i]);
    if (!usable) {
      for (const n of job.inputs) this.children.push(this.#openTable(n));
      return;
    }
    for (let i = 0; i < metas.length;) {
      const level = metas[i].level;
      let j = i + 1;
      // A run holds only tables in strictly ascending, disjoint key order:
      // anything else (never expected of a level >= 1) stays separate.
      if (level > 0) {
        while (
          j < metas.length && metas[j].level === level &&
          compareBytes(metas[j - 1].largest, metas[j].smallest) < 0
        ) j++;
      }
      if (level === 0 || j - i === 1) {
        this.children.push(this.#openTable(metas[i].fileNumber));
      } else {
        this.children.push(
          new LevelIterator(
            metas.slice(i, j),
            (t) => this.#openTable(t.fileNumber),
            (t) => this.#closeTable(t.fileNumber),
          ),
        );
      }
      i = j;
    }
  }

  #openTable(n: number): EntryIterator {
    const r = openInput(this.fs, this.job, n, this.cache);
    this.#open.set(n, r);
    this.bytesRead += r.props.fileSize;
    // Forward only, decoding in place: the merge never steps back, and
    // copies the one key it keeps (see runCompaction).
    return r.forwardIterator();
  }

  #closeTable(n: number): void {
    const r = this.#open.get(n);
    if (!r) return;
    this.#open.delete(n);
    r.close();
  }

  /** How many input tables are open now. */
  get openCount(): number {
    return this.#open.size;
  }

  /** Closes every table still open. */
  close(): void {
    for (const r of this.#open.values()) r.close();
    this.#open.clear();
  }
}
