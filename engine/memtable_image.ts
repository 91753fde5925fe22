/**
 * The flush's walk of a memtable image (engine/memtable.ts,
 * {@link MemtableImage}): level 0 of the skip list, node by node, handing
 * each entry to a sink as offsets into the image's buffers. Unlike
 * `Memtable.imageIterator`, it makes no Entry object and no key or value
 * view per entry, which showed up in the flush worker's profile.
 *
 * @module
 */
import {
  BUF,
  EXPIRES,
  KLEN,
  KOFF,
  LINKS,
  type MemtableImage,
  META,
  SEQ,
  VLEN,
  VOFF,
} from "./memtable_layout.ts";
import type { TableWriter } from "./sstable/writer.ts";

/** Receives entries by offset: a table writer. */
export type ImageSink = Pick<TableWriter, "addAt">;

/** Whether `img` holds no entry (the head's level-0 link is 0). */
export function imageIsEmpty(img: MemtableImage): boolean {
  return new Uint32Array(img.pool, 0, LINKS + 1)[LINKS] === 0;
}

/**
 * Feeds every entry of `img` to `sink` in internal order; returns how many.
 * The views passed are the image's own buffers: the sink copies what it
 * keeps.
 */
export function walkImage(img: MemtableImage, sink: ImageSink): number {
  const u = new Uint32Array(img.pool);
  const f = new Float64Array(img.pool);
  // Buffer numbers are positions in img.bufs (BufferTable numbers them in
  // order of first use, and image() copies them in that order).
  const bufs = img.bufs.map((b) => new Uint8Array(b));
  let count = 0;
  // Node 0 is the head; its level-0 link is the first entry, 0 ends.
  for (let n = u[LINKS]; n !== 0; n = u[n + LINKS]) {
    const b = bufs[u[n + BUF]];
    const meta = u[n + META];
    const h = n >>> 1;
    sink.addAt(
      b,
      u[n + KOFF],
      u[n + KLEN],
      f[h + SEQ],
      meta & 0xff,
      (meta >>> 8) & 0xff,
      f[h + EXPIRES],
      b,
      u[n + VOFF],
      u[n + VLEN],
    );
    count++;
  }
  return count;
}
