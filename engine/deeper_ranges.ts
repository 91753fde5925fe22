/**
 * The key ranges of the tables below a compaction's output level, asked
 * "may a deeper level hold this key?" once per droppable tombstone.
 *
 * The ranges come per level. A level >= 1 is sorted by smallest key and
 * its tables never overlap, so for keys asked in ascending order (a merge's
 * output order) one cursor per level walks forward: amortised O(1)
 * comparisons per key per level, where a linear scan of every range cost
 * O(tables) per key (compareBytes was ~8% of the compaction worker's
 * profile on deleterandom). A level whose ranges are not sorted and
 * disjoint (L0, were it ever below the output) is checked linearly.
 *
 * Keys asked out of order still get the right answer: the cursor notices
 * that it is past the key and repositions by binary search.
 *
 * @module
 */
import { compareBytes } from "./coding.ts";
import { findTableIndex } from "./version.ts";

/** A key range, both ends inclusive. */
export interface KeyRange {
  smallest: Uint8Array;
  largest: Uint8Array;
}

/** Whether `rs` is sorted by smallest key with no two ranges overlapping. */
function sortedDisjoint(rs: readonly KeyRange[]): boolean {
  for (let i = 1; i < rs.length; i++) {
    if (compareBytes(rs[i - 1].largest, rs[i].smallest) >= 0) return false;
  }
  return true;
}

/** Membership of keys in the union of per-level key ranges. */
export class DeeperRanges {
  /** Levels whose ranges are sorted and disjoint, nearest level first. */
  readonly #sorted: (readonly KeyRange[])[] = [];
  /** Per sorted level: the first range whose largest key may be >= the next key. */
  readonly #cursors: number[] = [];
  /** Ranges of levels that may overlap, checked one by one. */
  readonly #loose: KeyRange[] = [];

  /** `levels`: each level's ranges, in any level order; empty levels are fine. */
  constructor(levels: readonly (readonly KeyRange[])[]) {
    for (const rs of levels) {
      if (rs.length === 0) continue;
      if (sortedDisjoint(rs)) {
        this.#sorted.push(rs);
        this.#cursors.push(0);
      } else {
        this.#loose.push(...rs);
      }
    }
  }

  /** True when there are no ranges at all. */
  get empty(): boolean {
    return this.#sorted.length === 0 && this.#loose.length === 0;
  }

  /**
   * Whether some range holds `key`. Cheapest when successive calls pass
   * ascending keys; any order is answered correctly.
   */
  contains(key: Uint8Array): boolean {
    const sorted = this.#sorted;
    for (let l = 0; l < sorted.length; l++) {
      const rs = sorted[l];
      const start = this.#cursors[l];
      let i = start;
      while (i < rs.length && compareBytes(rs[i].largest, key) < 0) i++;
      if (
        i === start && i > 0 && compareBytes(rs[i - 1].largest, key) >= 0
      ) {
        // The key is behind the cursor: asked out of order.
        i = findTableIndex(rs, key);
      }
      this.#cursors[l] = i;
      // Every range before i ends below the key; range i ends at or above.
      if (i < rs.length && compareBytes(rs[i].smallest, key) <= 0) return true;
    }
    for (const r of this.#loose) {
      if (
        compareBytes(key, r.smallest) >= 0 && compareBytes(key, r.largest) <= 0
      ) {
        return true;
      }
    }
    return false;
  }
}
