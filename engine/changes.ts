/**
 * The change history: every committed write group, in seqno order, kept in
 * memory up to a byte budget, plus listeners told of each group as it
 * becomes visible. The HTTP change feed (`GET /kv/watch`) reads it; nothing
 * else in the engine depends on it.
 *
 * Contract:
 * - {@link ChangeHistory.publish} is called by the commit loop once per
 *   write (one seqno, all of a batch's ops) right after it became visible
 *   to readers, in ascending seqno order, before the writer is resolved.
 * - Every group with a version in `(floor, head]` is retained: a reader
 *   positioned at any version `>= floor` can read every later change with
 *   no gap. Seqnos may skip (a group whose WAL append failed was never
 *   visible), so versions are compared, never counted.
 * - At open the history is seeded from the WAL segments recovery replayed
 *   (the writes not yet in a table), so it survives a restart, crash
 *   included, as far back as the oldest unflushed write. Before that the
 *   data lives only in merged tables, with older versions gone, so the
 *   floor is the version just before the first replayed write (or the last
 *   version when nothing was replayed).
 * - Keys: the engine hands in stored keys (a key-space byte, then the key:
 *   engine/FORMAT.md, "Stored keys and key spaces"); each change carries
 *   the space as a number and the key as its writer gave it, so no reader
 *   sees the internal layout. Every space's writes are recorded (one seqno
 *   orders them all); a reader picks the spaces it shows (the HTTP feed:
 *   `USER_KEY_SPACE` only).
 * - Memory: stored keys and values of the retained groups plus ~{@link
 *   GROUP_OVERHEAD_BYTES} per group and {@link CHANGE_OVERHEAD_BYTES} per
 *   change are counted; when the count passes `maxBytes`, the oldest groups
 *   go and the floor moves up to the newest version dropped.
 *
 * @module
 */
import { type Entry, KIND_PUT, KIND_RANGE_DELETE } from "./entry.ts";
import { InvalidArgumentError } from "./errors.ts";
import { decodeBatchOps } from "./batch_ops.ts";
import type { Change, ChangeGroup, ChangeListener } from "./types.ts";

/** Accounting overhead per retained group (object, array, version). */
export const GROUP_OVERHEAD_BYTES = 64;
/**
 * Accounting overhead per retained change: measured in a V8 heap snapshot
 * (bench/large.ts's load), the Change object takes ~70 bytes and each of
 * its two Uint8Array views (key, value) ~100 more.
 */
export const CHANGE_OVERHEAD_BYTES = 272;
/**
 * Accounting overhead of a group kept as its encoded ops (LazyGroup), on
 * top of the payload's bytes rounded up to the arena's 8-byte alignment:
 * the group object, its slot in the history and the payload's view.
 * Measured by bench/micro/change_history_memory.ts at about 170 bytes
 * for writes of 1 and of 10 ops (an object literal with a getter, the
 * first version, took 426).
 */
export const LAZY_GROUP_OVERHEAD_BYTES = 200;
/** Default budget of the in-memory change history. */
export const DEFAULT_CHANGE_HISTORY_BYTES = 64 << 20;

/** The retained write groups of a store and their listeners. */
export class ChangeHistory {
  /** Groups in version order; a dropped group's slot is cleared at once. */
  #groups: (ChangeGroup | undefined)[] = [];
  /** Bytes published since the history was created. */
  #published = 0;
  /** Index of the oldest live group in #groups (the cleared slots before it stay until compacted). */
  #start = 0;
  #bytes = 0;
  #floor: number;
  #head: number;
  #maxBytes: number;
  readonly #listeners = new Set<ChangeListener>();
  /** The last error a listener threw (it was unsubscribed for it). */
  listenerError: unknown;

  /** A history that has nothing after `version` yet. */
  constructor(version: number, maxBytes = DEFAULT_CHANGE_HISTORY_BYTES) {
    this.#floor = version;
    this.#head = version;
    this.#maxBytes = maxBytes;
  }

  /**
   * A history seeded from recovered WAL entries (ascending seq, a batch's
   * entries adjacent). Entries are copied, so they do not pin the buffer
   * the log was read into. `lastSeq` is the store's last version.
   */
  static fromRecovered(
    entries: readonly Entry[],
    lastSeq: number,
    maxBytes = DEFAULT_CHANGE_HISTORY_BYTES,
  ): ChangeHistory {
    const h = new ChangeHistory(
      entries.length > 0 ? entries[0].seq - 1 : lastSeq,
      maxBytes,
    );
    let i = 0;
    while (i < entries.length) {
      let j = i + 1;
      while (j < entries.length && entries[j].seq === entries[i].seq) j++;
      h.publish(entries[i].seq, entries.slice(i, j), true);
      i = j;
    }
    if (lastSeq > h.#head) h.#head = lastSeq;
    return h;
  }

  /** Versions above this one are all retained (up to {@link head}). */
  get floor(): number {
    return this.#floor;
  }

  /** The newest version published (or the store's version at open). */
  get head(): number {
    return this.#head;
  }

  /** Bytes counted for every group published since the history was created. */
  get published(): number {
    return this.#published;
  }

  /** Bytes counted for the retained groups. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Groups retained. */
  get groups(): number {
    return this.#groups.length - this.#start;
  }

  /**
   * Groups the history still references: the retained ones and nothing
   * else, since a dropped group's slot is cleared when it is dropped. For
   * tests.
   *
   * @internal @ignore
   */
  get heldGroups(): number {
    let n = 0;
    for (const g of this.#groups) if (g !== undefined) n++;
    return n;
  }

  /** The budget; lowering it drops the oldest groups at once. */
  get maxBytes(): number {
    return this.#maxBytes;
  }

  set maxBytes(n: number) {
    if (!(Number.isSafeInteger(n) && n >= 0)) {
      throw new InvalidArgumentError(
        `change history maxBytes must be an integer of at least 0, got ${n}`,
      );
    }
    this.#maxBytes = n;
    this.#trim();
  }

  /**
   * Records the group `version` (its entries share that seqno, their keys
   * are stored keys) and tells every listener. Called by the engine only,
   * in ascending version order. Without `copy` the changes are views of
   * the entries' bytes, which the engine never reuses; with `payload` too
   * (the write's encoded ops, which hold those bytes) the group keeps only
   * the payload and builds its changes when first read.
   *
   * @internal @ignore
   */
  publish(
    version: number,
    entries: readonly Entry[],
    copy = false,
    payload?: Uint8Array,
  ): void {
    const group = !copy && payload !== undefined
      ? new LazyGroup(version, lazyGroupBytes(payload), payload)
      : {
        version,
        changes: toChanges(entries, copy),
        bytes: eagerGroupBytes(entries),
      };
    const bytes = group.bytes;
    this.#groups.push(group);
    this.#published += bytes;
    this.#bytes += bytes;
    this.#head = version;
    this.#trim();
    for (const fn of this.#listeners) {
      try {
        fn(group);
      } catch (err) {
        // A throw here would reach the commit loop and turn the store
        // read-only for a bug outside the engine: drop the listener, keep
        // the error for whoever investigates.
        this.#listeners.delete(fn);
        this.listenerError = err;
      }
    }
  }

  /**
   * Up to `max` retained groups with a version above `version`, oldest
   * first; undefined when `version` is below the floor (changes after it
   * are no longer all retained).
   */
  after(version: number, max = Infinity): ChangeGroup[] | undefined {
    if (version < this.#floor) return undefined;
    const i = this.#firstAbove(version);
    return this.#groups.slice(
      i,
      Math.min(this.#groups.length, i + max),
    ) as ChangeGroup[];
  }

  /** Index of the first retained group with a version above `version`. */
  #firstAbove(version: number): number {
    const g = this.#groups;
    let lo = this.#start;
    let hi = g.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (g[mid]!.version <= version) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Calls `fn` for every group published from now on; returns the unsubscribe. */
  subscribe(fn: ChangeListener): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  #trim(): void {
    const g = this.#groups;
    while (this.#bytes > this.#maxBytes && this.#start < g.length) {
      const old = g[this.#start]!;
      // Cleared now, not at the next compaction: a group still referenced
      // here keeps its payload's write buffers alive, and V8 sizes its next
      // full collection from what the last one found alive. Held until the
      // compaction, dropped groups made the history look up to twice its
      // budget, and under a steady write load the collector ran every ~10%
      // of growth while freeing almost nothing (bench/README.md).
      g[this.#start++] = undefined;
      this.#bytes -= old.bytes;
      this.#floor = old.version;
    }
    // Compact the array once the cleared prefix is half of it: the copy is
    // shorter than the prefix cleared since the last one (constant cost per
    // group).
    if (this.#start > 0 && this.#start * 2 > g.length) {
      this.#groups = g.slice(this.#start);
      this.#start = 0;
    }
  }
}

/** What a group holding Change objects for `entries` counts against the budget. */
function eagerGroupBytes(entries: readonly Entry[]): number {
  let bytes = GROUP_OVERHEAD_BYTES;
  for (const e of entries) {
    bytes += CHANGE_OVERHEAD_BYTES + e.key.length + e.value.length;
  }
  return bytes;
}

/**
 * What a group holding only its encoded ops counts: its Change objects
 * are built on read and held weakly, so they are not part of what it keeps.
 */
function lazyGroupBytes(payload: Uint8Array): number {
  return LAZY_GROUP_OVERHEAD_BYTES + ((payload.length + 7) & ~7);
}

/** The changes of a group's entries (views of their bytes unless `copy`). */
function toChanges(entries: readonly Entry[], copy: boolean): Change[] {
  const changes: Change[] = [];
  for (const e of entries) {
    const put = e.kind === KIND_PUT;
    const change: Change = {
      space: e.key[0],
      key: copy ? e.key.slice(1) : e.key.subarray(1),
      type: put ? "put" : "delete",
      value: copy && put ? e.value.slice() : e.value,
      encoding: e.encoding,
      expiresAt: e.expiresAt,
    };
    if (e.kind === KIND_RANGE_DELETE) {
      // One change for the whole range: key is its start, the entry's
      // value its end (empty: to the end of the key space).
      change.type = "delete_range";
      change.value = new Uint8Array(0);
      if (e.value.length > 0) {
        change.end = copy ? e.value.slice() : e.value;
      }
    }
    changes.push(change);
  }
  return changes;
}

/**
 * A group that keeps its write's encoded ops (`payload`, the bytes
 * engine/batch_ops.ts's encodeBatchOps wrote and the memtable views anyway) and
 * builds its Change objects when read. Retaining three small objects per
 * change for the whole budget (16 MiB by default under a 256 MiB memory
 * budget: ~40k changes) moved every change into V8's old generation,
 * where they died as garbage: with eager objects the main thread's
 * committed heap ran at 115-131 MiB in `make bench-large`, 46-51 MiB
 * without (bench/README.md). The built array is held weakly: reads while
 * someone holds it get the same array, and once the reader (a change
 * feed's event) is done with it, it goes with the young generation
 * instead of staying for the group's lifetime.
 */
class LazyGroup implements ChangeGroup {
  readonly version: number;
  readonly bytes: number;
  readonly #payload: Uint8Array;
  #built: WeakRef<Change[]> | undefined;

  constructor(version: number, bytes: number, payload: Uint8Array) {
    this.version = version;
    this.bytes = bytes;
    this.#payload = payload;
  }

  get changes(): Change[] {
    let changes = this.#built?.deref();
    if (changes === undefined) {
      changes = toChanges(decodeBatchOps(this.#payload, this.version), false);
      this.#built = new WeakRef(changes);
    }
    return changes;
  }
}
