import assert from "node:assert/strict";
import { type Entry, KIND_DELETE, KIND_PUT } from "../../engine/entry.ts";
import { Memtable } from "../../engine/memtable.ts";
import { walkImage } from "../../engine/memtable_image.ts";
import { testSeed, withSeed } from "../_helpers.ts";

/** Collects what walkImage hands over, copied out as Entries. */
function walked(mem: Memtable): { entries: Entry[]; count: number } {
  const entries: Entry[] = [];
  const count = walkImage(mem.image(), {
    addAt(kb, ko, kl, seq, kind, encoding, expiresAt, vb, vo, vl) {
      entries.push({
        key: kb.slice(ko, ko + kl),
        seq,
        kind,
        encoding,
        expiresAt,
        value: vb.slice(vo, vo + vl),
      });
    },
  });
  return { entries, count };
}

function iterated(mem: Memtable): Entry[] {
  const out: Entry[] = [];
  const it = Memtable.imageIterator(mem.image());
  for (it.seekToFirst(); it.valid(); it.next()) {
    const e = it.entry();
    out.push({ ...e, key: e.key.slice(), value: e.value.slice() });
  }
  return out;
}

Deno.test("walkImage hands over every entry of an image in the iterator's order", async () => {
  await withSeed(testSeed(31), (rng) => {
    const mem = new Memtable();
    for (let seq = 1; seq <= 3000; seq++) {
      const del = rng.chance(0.1);
      mem.add({
        // Few distinct keys, so that keys have several versions.
        key: rng.bytes(1 + rng.int(3)),
        seq,
        kind: del ? KIND_DELETE : KIND_PUT,
        encoding: rng.int(3),
        expiresAt: rng.chance(0.2) ? 1_700_000_000_000 + seq : 0,
        value: del ? new Uint8Array(0) : rng.bytes(rng.int(300)),
      });
    }
    const { entries, count } = walked(mem);
    assert.equal(count, mem.count);
    assert.deepEqual(entries, iterated(mem));
  });
});

Deno.test("walkImage of an empty memtable hands over nothing", () => {
  const { entries, count } = walked(new Memtable());
  assert.equal(count, 0);
  assert.deepEqual(entries, []);
});
