/**
 * The live snapshots: how many readers hold each seqno, so compaction keeps
 * every version one of them may still read.
 *
 * @module
 */
import type { Snapshot } from "./types.ts";

/** Live snapshots by seqno (a count per seqno). */
export class SnapshotList {
  #held = new Map<number, number>();

  /** A snapshot at `seq`; release() (idempotent) lets its versions go. */
  take(seq: number): Snapshot {
    this.#held.set(seq, (this.#held.get(seq) ?? 0) + 1);
    let released = false;
    return {
      seq,
      release: () => {
        if (released) return;
        released = true;
        const n = (this.#held.get(seq) ?? 1) - 1;
        if (n > 0) this.#held.set(seq, n);
        else this.#held.delete(seq);
      },
    };
  }

  /** The oldest seqno a live snapshot reads at, or `visible` when older than all. */
  oldest(visible: number): number {
    let min = visible;
    for (const s of this.#held.keys()) if (s < min) min = s;
    return min;
  }

  /** How many snapshots are live. */
  get count(): number {
    let n = 0;
    for (const c of this.#held.values()) n += c;
    return n;
  }
}
