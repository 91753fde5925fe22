/**
 * Background jobs: pure file work that runs off the main thread (in a Web
 * Worker) or inline in tests. A job reads input files and writes output
 * tables; it never touches the manifest. The main thread installs what it
 * returns with one manifest edit.
 *
 * @module
 */
import type { CompactionJob, CompactionResult } from "./compaction.ts";
import { runCompaction } from "./compaction.ts";
import { binaryString } from "./coding.ts";
import type { Entry } from "./entry.ts";
import { KIND_RANGE_DELETE } from "./entry.ts";
import type { FileSystem } from "./fs.ts";
import type { Compression } from "./sstable/codec.ts";
import type { TableProps } from "./sstable/writer.ts";
import { TableWriter } from "./sstable/writer.ts";
import { readWalEntries } from "./wal.ts";

/** Settings every table-writing job needs. */
export interface TableSettings {
  dir: string;
  blockSize: number;
  bloomBitsPerKey: number;
  compression: Compression;
}

/** Turn one frozen memtable (rebuilt from its WAL segments) into an L0 table. */
export interface FlushJob extends TableSettings {
  type: "flush";
  walPaths: string[];
  salvage: boolean;
  fileNumber: number;
}

/** Any background job. */
export type Job = FlushJob | CompactionJob;

/** What a flush produced; `table` is undefined when the segments held nothing. */
export interface FlushResult {
  type: "flush";
  table: TableProps | undefined;
}

/** Any job's result. */
export type JobResult = FlushResult | CompactionResult;

/**
 * Rebuilds a frozen memtable from its WAL segments and writes it as one
 * table. The segments hold exactly the records that were applied to that
 * memtable (the WAL is rotated together with the memtable), so no bytes need
 * to cross threads.
 */
export async function runFlush(
  fs: FileSystem,
  job: FlushJob,
): Promise<FlushResult> {
  const entries: Entry[] = [];
  for (const path of job.walPaths) {
    for (
      const e of readWalEntries(fs, path, { salvage: job.salvage }).entries
    ) {
      // Range tombstones go to the manifest with the flush's edit (the
      // main thread has them in the memtable), never into a table.
      if (e.kind !== KIND_RANGE_DELETE) entries.push(e);
    }
  }
  if (entries.length === 0) return { type: "flush", table: undefined };
  // Sort on binary-string keys: V8 compares those natively, several times
  // faster than a byte loop over Uint8Arrays.
  const keyed = entries.map((e) => ({ s: binaryString(e.key), e }));
  keyed.sort((a, b) => a.s < b.s ? -1 : a.s > b.s ? 1 : b.e.seq - a.e.seq);
  for (let i = 0; i < keyed.length; i++) entries[i] = keyed[i].e;
  const w = TableWriter.create(fs, job.dir, job.fileNumber, {
    blockSize: job.blockSize,
    bloomBitsPerKey: job.bloomBitsPerKey,
    compression: job.compression,
  });
  try {
    for (const e of entries) w.add(e);
    return { type: "flush", table: await w.finish() };
  } catch (err) {
    w.abandon();
    throw err;
  }
}

/** Runs any job. */
export function runJob(fs: FileSystem, job: Job): Promise<JobResult> {
  switch (job.type) {
    case "flush":
      return runFlush(fs, job);
    case "compact":
      return runCompaction(fs, job);
  }
}
