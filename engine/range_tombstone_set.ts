/**
 * Every range tombstone of an open store, wherever it lives: persisted in
 * the manifest, or still in a memtable (live or frozen). Gives the read
 * path one index over all of them, rebuilt only when the set changed, and
 * drops the persisted ones nothing needs any more.
 *
 * @module
 */
import type { ManifestState } from "./manifest.ts";
import type { Memtable } from "./memtable.ts";
import type { MemtableSet } from "./memtables.ts";
import type { RangeTombstone } from "./range_tombstones.ts";
import { obsoleteTombstones, RangeTombstoneIndex } from "./range_tombstones.ts";
import type { VersionEdit } from "./manifest.ts";
import type { VersionSet } from "./version.ts";

/** What the set reads: the manifest state, the memtables, the tables. */
export interface RangeTombstoneSources {
  state: ManifestState;
  memtables: MemtableSet;
  versions: VersionSet;
  logAndApply(edit: VersionEdit): Promise<void>;
}

/** The range tombstones of one store; see the module comment. */
export class RangeTombstoneSet {
  #src: RangeTombstoneSources;
  /** The read index of every range tombstone, and what it was built from. */
  #cache:
    | {
      mem: Memtable;
      len: number;
      imm: number;
      gen: number;
      index: RangeTombstoneIndex | undefined;
    }
    | undefined;

  constructor(sources: RangeTombstoneSources) {
    this.#src = sources;
  }

  /** How many are persisted in the manifest. */
  get persisted(): number {
    return this.#src.state.rangeTombstones.size;
  }

  /** The persisted ones, in the manifest's order. */
  persistedList(): RangeTombstone[] {
    return [...this.#src.state.rangeTombstones.values()];
  }

  /** Every range tombstone: persisted, then in memtables (oldest last). */
  all(): RangeTombstone[] {
    const { memtables } = this.#src;
    const all = this.persistedList();
    for (const imm of memtables.imm) all.push(...imm.mem.rangeDels);
    all.push(...memtables.mem.rangeDels);
    return all;
  }

  /**
   * The read index of every range tombstone, or undefined when there is
   * none. Rebuilt when the set changed: tombstones are only appended to the
   * live memtable, moved by a rotation (a new memtable) or a flush (fewer
   * frozen ones), and persisted or dropped by a manifest edit (a new
   * generation); a duplicate seen mid-flush hides nothing more.
   */
  index(): RangeTombstoneIndex | undefined {
    const c = this.#cache;
    const mem = this.#src.memtables.mem;
    const imm = this.#src.memtables.imm.length;
    const gen = this.#src.state.rangeGeneration;
    if (
      c !== undefined && c.mem === mem && c.len === mem.rangeDels.length &&
      c.imm === imm && c.gen === gen
    ) return c.index;
    const all = this.all();
    const index = all.length > 0 ? new RangeTombstoneIndex(all) : undefined;
    this.#cache = { mem, len: mem.rangeDels.length, imm, gen, index };
    return index;
  }

  /**
   * Drops the persisted range tombstones nothing needs any more (no table
   * can hold an entry they hide), with one manifest edit.
   */
  async dropObsolete(): Promise<void> {
    const { state, versions } = this.#src;
    if (state.rangeTombstones.size === 0) return;
    const gone = obsoleteTombstones(
      state.rangeTombstones.values(),
      versions.current.allTables(),
    );
    if (gone.length > 0) {
      await this.#src.logAndApply({ rangeTombstonesDeleted: gone });
    }
  }
}
