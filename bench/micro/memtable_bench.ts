/**
 * Memtable hot paths: inserting commit groups (as the commit loop does with
 * addMany), point reads and iterator seeks.
 *
 * @module
 */
import { Memtable } from "../../engine/memtable.ts";
import { MAX_SEQ } from "../../engine/entry.ts";
import { keyFor, prng } from "../_common.ts";
import { makeEntries } from "./_data.ts";

/** Entries per filled memtable: about what an 8 MiB memtable holds. */
const N = 50_000;
/** Entries per commit group, as `make bench`'s batched fills. */
const GROUP = 1000;
const { entries } = makeEntries(N, 1);

function fill(): Memtable {
  const m = new Memtable();
  for (let i = 0; i < N; i += GROUP) {
    m.addMany(entries.slice(i, i + GROUP));
  }
  return m;
}

Deno.bench({
  name: `memtable insert ${N} random keys, addMany groups of ${GROUP}`,
  group: "memtable insert",
  baseline: true,
  fn() {
    fill();
  },
});

Deno.bench({
  name: `memtable insert ${N} random keys, one add() each`,
  group: "memtable insert",
  fn() {
    const m = new Memtable();
    for (let i = 0; i < N; i++) m.add(entries[i]);
  },
});

const filled = fill();
const PROBES = 1000;
const probeKeys = (() => {
  const rnd = prng(7);
  const out: Uint8Array[] = [];
  for (let i = 0; i < PROBES; i++) out.push(keyFor(Math.floor(rnd() * N)));
  return out;
})();
const missKeys = probeKeys.map((k) => {
  const m = k.slice();
  m[0] = 0x39; // "9…": beyond every key inserted
  return m;
});

Deno.bench({
  name: `memtable get ${PROBES} present keys (${N} entries)`,
  group: "memtable read",
  baseline: true,
  fn() {
    for (const k of probeKeys) {
      if (filled.get(k, MAX_SEQ) === undefined) throw new Error("missing");
    }
  },
});

Deno.bench({
  name: `memtable get ${PROBES} absent keys (${N} entries)`,
  group: "memtable read",
  fn() {
    for (const k of missKeys) {
      if (filled.get(k, MAX_SEQ) !== undefined) throw new Error("found");
    }
  },
});

Deno.bench({
  name: `memtable iterator seek + 10 next, ${PROBES} times (${N} entries)`,
  group: "memtable read",
  fn() {
    const it = filled.iterator();
    for (const k of probeKeys) {
      it.seek(k);
      for (let j = 0; j < 10 && it.valid(); j++) {
        it.entry();
        it.next();
      }
    }
  },
});

Deno.bench({
  name:
    `memtable iterator seekBefore + 10 prev, ${PROBES} times (${N} entries)`,
  group: "memtable read",
  fn() {
    const it = filled.iterator();
    for (const k of probeKeys) {
      it.seekBefore(k);
      for (let j = 0; j < 10 && it.valid(); j++) {
        it.entry();
        it.prev();
      }
    }
  },
});
