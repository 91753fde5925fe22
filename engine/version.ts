/**
 * A Version is one immutable picture of the LSM tree: the tables of each
 * level. L0 is ordered newest first (its tables may overlap); L1..L6 are
 * sorted by smallest key and never overlap within a level.
 *
 * Readers that outlive one event-loop turn (scans) pin the Version they
 * started on. A table file is deleted only when it has left the current
 * Version and no pinned Version still lists it.
 *
 * @module
 */
import { compareBytes } from "./coding.ts";
import type { ManifestState, TableMeta, VersionEdit } from "./manifest.ts";
import { NUM_LEVELS } from "./manifest.ts";

/** One immutable picture of the tables per level. */
export class Version {
  refs = 0;
  constructor(readonly levels: readonly (readonly TableMeta[])[]) {}

  /** Total bytes of the tables in `level`. */
  levelBytes(level: number): number {
    let n = 0;
    for (const t of this.levels[level]) n += t.size;
    return n;
  }

  /** Every table of every level. */
  *allTables(): Iterable<TableMeta> {
    for (const level of this.levels) yield* level;
  }
}

/** Orders L0 newest first: higher max seqno first, then higher file number. */
export function compareL0(a: TableMeta, b: TableMeta): number {
  return b.maxSeq - a.maxSeq || b.fileNumber - a.fileNumber;
}

/** Puts one level's tables in their Version order (see {@link Version}). */
function sortLevel(level: number, tables: TableMeta[]): void {
  tables.sort(
    level === 0 ? compareL0 : (a, b) => compareBytes(a.smallest, b.smallest),
  );
}

/** Builds a Version from a manifest state. */
export function versionFromState(s: ManifestState): Version {
  const levels: TableMeta[][] = [];
  for (let l = 0; l < NUM_LEVELS; l++) {
    const tables = [...s.levels[l].values()];
    sortLevel(l, tables);
    levels.push(tables);
  }
  return new Version(levels);
}

/**
 * The Version `edit` leads to from `cur`: its tables minus the deleted ones,
 * plus the added ones, each level in Version order. `cur` is unchanged.
 */
export function nextVersion(cur: Version, edit: VersionEdit): Version {
  const levels: TableMeta[][] = cur.levels.map((l) => [...l]);
  for (const d of edit.deleted ?? []) {
    levels[d.level] = levels[d.level].filter((t) =>
      t.fileNumber !== d.fileNumber
    );
  }
  for (const t of edit.added ?? []) levels[t.level].push(t);
  for (let l = 0; l < NUM_LEVELS; l++) sortLevel(l, levels[l]);
  return new Version(levels);
}

/**
 * Index of the first table in a sorted, non-overlapping level whose largest
 * key is >= key (the only table that may hold key), or level.length. Any
 * such list of key ranges will do (engine/deeper_ranges.ts).
 */
export function findTableIndex(
  level: readonly { largest: Uint8Array }[],
  key: Uint8Array,
): number {
  let lo = 0;
  let hi = level.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareBytes(level[mid].largest, key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** True when [smallest, largest] of `t` overlaps [lo, hi] (undefined = unbounded). */
export function overlaps(
  t: TableMeta,
  lo: Uint8Array | undefined,
  hi: Uint8Array | undefined,
): boolean {
  if (lo !== undefined && compareBytes(t.largest, lo) < 0) return false;
  if (hi !== undefined && compareBytes(t.smallest, hi) > 0) return false;
  return true;
}

/**
 * Tracks the current Version, pinned Versions, and which table files may be
 * deleted. A table's count is the number of live Versions (current or
 * pinned) that list it; at zero it is obsolete.
 */
export class VersionSet {
  #current: Version;
  #tableRefs = new Map<number, number>();
  /** Called with each table file number that no live Version lists any more. */
  onObsolete: (fileNumber: number) => void = () => {};

  constructor(initial: Version) {
    this.#current = initial;
    this.#refVersion(initial);
  }

  get current(): Version {
    return this.#current;
  }

  /** Makes `v` current; tables only the old Version listed become obsolete. */
  install(v: Version): void {
    const old = this.#current;
    this.#current = v;
    this.#refVersion(v);
    this.unpin(old);
  }

  /** Installs the Version `edit` leads to from the current one. */
  apply(edit: VersionEdit): void {
    this.install(nextVersion(this.#current, edit));
  }

  /** Pins the current Version for a long read; pair with unpin(). */
  pin(): Version {
    const v = this.#current;
    this.#refVersion(v);
    return v;
  }

  unpin(v: Version): void {
    v.refs--;
    if (v.refs > 0) return;
    for (const t of v.allTables()) {
      const n = (this.#tableRefs.get(t.fileNumber) ?? 1) - 1;
      if (n > 0) this.#tableRefs.set(t.fileNumber, n);
      else {
        this.#tableRefs.delete(t.fileNumber);
        this.onObsolete(t.fileNumber);
      }
    }
  }

  /** True while some live Version lists the table. */
  isLive(fileNumber: number): boolean {
    return this.#tableRefs.has(fileNumber);
  }

  #refVersion(v: Version): void {
    v.refs++;
    if (v.refs > 1) return;
    for (const t of v.allTables()) {
      this.#tableRefs.set(
        t.fileNumber,
        (this.#tableRefs.get(t.fileNumber) ?? 0) + 1,
      );
    }
  }
}
