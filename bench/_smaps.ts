/**
 * Where a process's anonymous memory (RssAnon) sits, by the kind of mapping
 * that holds it, read from /proc/self/smaps (Linux only). No runtime
 * reports this split, and RssAnon alone cannot tell a V8 heap from a
 * malloc arena; bench/large.ts samples it to say which part of the process
 * grew. The kinds are told apart by how each allocator maps memory
 * (glibc malloc, which Deno uses, and V8's page allocator), so they are
 * close estimates, not exact accounts:
 *
 * - `mainMalloc`: the `[heap]` mapping, glibc's main arena, which the main
 *   thread allocates from (its ArrayBuffers: memtables, table index and
 *   filter, WAL buffers; and the runtime's own allocations).
 * - `threadMalloc`: glibc's per-thread arenas, mappings of at most 64 MiB
 *   starting at a 64 MiB boundary (the workers' ArrayBuffers and the
 *   runtime's other threads).
 * - `v8Heaps`: mappings aligned to and sized in V8's 256 KiB pages: the
 *   JavaScript heaps of every isolate (main thread and workers).
 * - `other`: the rest (malloc's separately mapped large chunks, thread
 *   stacks, the binary's data).
 *
 * @module
 */

/** Anonymous resident bytes by kind; all NaN off Linux. */
export interface AnonBreakdown {
  mainMalloc: number;
  threadMalloc: number;
  v8Heaps: number;
  other: number;
}

const M64 = 64 * 1048576;
const K256 = 256 * 1024;
const MAPPING = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/;

/** This process's anonymous memory by kind (reads /proc/self/smaps). */
export function anonBreakdown(): AnonBreakdown {
  const out = { mainMalloc: 0, threadMalloc: 0, v8Heaps: 0, other: 0 };
  let text: string;
  try {
    text = Deno.readTextFileSync("/proc/self/smaps");
  } catch {
    return { mainMalloc: NaN, threadMalloc: NaN, v8Heaps: NaN, other: NaN };
  }
  let kind: keyof AnonBreakdown = "other";
  for (const line of text.split("\n")) {
    const m = MAPPING.exec(line);
    if (m) {
      const start = parseInt(m[1], 16);
      const size = parseInt(m[2], 16) - start;
      const name = m[3];
      if (name === "[heap]") kind = "mainMalloc";
      else if (name !== "") kind = "other";
      else if (start % M64 === 0 && size <= M64) kind = "threadMalloc";
      else if (start % K256 === 0 && size % K256 === 0) kind = "v8Heaps";
      else kind = "other";
    } else if (line.startsWith("Anonymous:")) {
      out[kind] += parseInt(line.slice(10), 10) * 1024;
    }
  }
  return out;
}
