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
import type { FileSystem } from "./fs.ts";
import type { MemtableImage } from "./memtable_layout.ts";
import { imageIsEmpty, walkImage } from "./memtable_image.ts";
import { releaseBuffer } from "./release.ts";
import type { Compression } from "./sstable/codec.ts";
import type { TableProps } from "./sstable/writer.ts";
import { TableWriter } from "./sstable/writer.ts";

/** Settings every table-writing job needs. */
export interface TableSettings {
  dir: string;
  blockSize: number;
  bloomBitsPerKey: number;
  compression: Compression;
}

/** Turn one frozen memtable (its sorted image) into an L0 table. */
export interface FlushJob extends TableSettings {
  type: "flush";
  image: MemtableImage;
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
 * Writes a frozen memtable as one table, straight from its image: the skip
 * list is already in internal order and holds no range tombstones (those go
 * to the manifest with the flush's edit).
 *
 * The worker used to rebuild the memtable from its WAL segments instead
 * (decode every record, sort): with the typed-array memtable, copying its
 * image to the worker costs the main thread about a millisecond per 8 MiB
 * memtable, and saves the worker most of its flush time.
 */
export async function runFlush(
  fs: FileSystem,
  job: FlushJob,
): Promise<FlushResult> {
  try {
    if (imageIsEmpty(job.image)) {
      return { type: "flush", table: undefined };
    }
    const w = TableWriter.create(fs, job.dir, job.fileNumber, {
      blockSize: job.blockSize,
      bloomBitsPerKey: job.bloomBitsPerKey,
      compression: job.compression,
    });
    try {
      walkImage(job.image, w);
      return { type: "flush", table: await w.finish() };
    } catch (err) {
      w.abandon();
      throw err;
    }
  } finally {
    // The job owns the image (a copy made for it, MemtableImage) and the
    // table written holds no view of it: its 10-20 MiB go now, not at this
    // isolate's next full collection (engine/release.ts).
    releaseBuffer(job.image.pool);
    for (const b of job.image.bufs) releaseBuffer(b);
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
