/**
 * Freeing an ArrayBuffer's memory now instead of when the collector gets to
 * it. V8 frees a dead ArrayBuffer's backing store only when a collection
 * finds it, and it schedules full collections by heap growth and by
 * external-memory pressure (tens of MiB above the last collection), so
 * large buffers a job is done with pile up: dead memtable images reached
 * 94 MiB in the flush worker in `make bench-large` (bench/README.md).
 *
 * @module
 */

/**
 * Detaches `b` and frees its backing store (`transfer(0)`), so every view
 * of it reads as empty from then on. Only for a buffer nothing else views.
 * A no-op where ArrayBuffer.prototype.transfer is missing (older runtimes):
 * the collector frees it later, as before.
 */
export function releaseBuffer(b: ArrayBuffer): void {
  const transfer = (b as { transfer?: (n: number) => ArrayBuffer }).transfer;
  if (typeof transfer === "function" && !b.detached) transfer.call(b, 0);
}
