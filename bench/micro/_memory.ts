/**
 * What the memory micro-benchmarks measure: V8 heap plus external memory
 * (ArrayBuffer backing stores) after forced collections.
 *
 * @module
 */

const gc = (globalThis as { gc?: () => void }).gc;

/** Throws unless the script runs with `--v8-flags=--expose-gc`. */
export function requireGc(): void {
  if (!gc) throw new Error("run with --v8-flags=--expose-gc");
}

/** Heap used + external bytes after two full collections. */
export function usedMemory(): number {
  requireGc();
  gc!();
  gc!();
  const m = Deno.memoryUsage();
  return m.heapUsed + m.external;
}
