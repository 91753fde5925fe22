import assert from "node:assert/strict";
import type { IndexedNodes } from "../../engine/memtable_index.ts";
import { NewestIndex } from "../../engine/memtable_index.ts";
import { Rng, testSeed, withSeed } from "../_helpers.ts";

/**
 * A node table for the index: node n (from 1; 0 is the head) has a key, a
 * seqno and (in the index) a hash chosen by the test, so collisions are
 * easy to force. `hand` is the key in hand, as the memtable's probe is.
 */
class Nodes implements IndexedNodes {
  keys: string[] = [""];
  seqs: number[] = [0];
  hand = "";
  add(key: string, seq: number): number {
    const n = this.keys.length;
    this.keys.push(key);
    this.seqs.push(seq);
    return n;
  }
  isKey(n: number, klen: number): boolean {
    assert.equal(klen, this.hand.length, "klen is the key in hand's length");
    return this.keys[n] === this.hand;
  }
  seqOf(n: number): number {
    return this.seqs[n];
  }
}

function offer(
  index: NewestIndex,
  nodes: Nodes,
  key: string,
  seq: number,
  hash: number,
): number {
  const n = nodes.add(key, seq);
  nodes.hand = key;
  index.offer(n, hash, key.length);
  return n;
}

function newest(
  index: NewestIndex,
  nodes: Nodes,
  key: string,
  hash: number,
): number {
  nodes.hand = key;
  return index.newest(hash, key.length);
}

Deno.test("an empty index finds nothing", () => {
  const nodes = new Nodes();
  const index = new NewestIndex(nodes);
  assert.equal(newest(index, nodes, "a", 7), 0);
  assert.equal(index.size, 0);
});

Deno.test("the newest version of a key wins, whatever the order it was offered in", () => {
  const nodes = new Nodes();
  const index = new NewestIndex(nodes);
  const v5 = offer(index, nodes, "k", 5, 42);
  assert.equal(newest(index, nodes, "k", 42), v5);
  const v9 = offer(index, nodes, "k", 9, 42);
  assert.equal(newest(index, nodes, "k", 42), v9);
  // An older version offered later (addMany inserts a key's versions newest
  // first) does not replace the newer one.
  offer(index, nodes, "k", 7, 42);
  assert.equal(newest(index, nodes, "k", 42), v9);
  assert.equal(index.size, 1);
});

Deno.test("keys sharing a hash, or a slot run, stay apart", () => {
  const nodes = new Nodes();
  const index = new NewestIndex(nodes);
  const mask = index.capacity - 1;
  // "a" and "b" share a hash; "c" hashes to the next slot, which "b"
  // took by probing; "d" wraps around from the last slot.
  const a = offer(index, nodes, "a", 1, 5);
  const b = offer(index, nodes, "b", 2, 5);
  const c = offer(index, nodes, "c", 3, 6);
  const d1 = offer(index, nodes, "d", 4, mask);
  const d2 = offer(index, nodes, "d", 5, mask);
  const e = offer(index, nodes, "e", 6, mask);
  assert.equal(newest(index, nodes, "a", 5), a);
  assert.equal(newest(index, nodes, "b", 5), b);
  assert.equal(newest(index, nodes, "c", 6), c);
  assert.equal(newest(index, nodes, "d", mask), d2);
  assert.notEqual(d1, d2);
  assert.equal(newest(index, nodes, "e", mask), e);
  // Same hash as "a" but another key; and a's key under another hash.
  assert.equal(newest(index, nodes, "z", 5), 0);
  assert.equal(newest(index, nodes, "a", 9), 0);
  assert.equal(index.size, 5);
});

Deno.test("random offers match a newest-per-key model across growth", async () => {
  await withSeed(testSeed(4242), (rng: Rng) => {
    const nodes = new Nodes();
    const index = new NewestIndex(nodes);
    const start = index.capacity;
    const model = new Map<string, { node: number; seq: number }>();
    const hashOf = (key: string) => {
      // A weak hash over few values, so probe runs get long.
      let h = 0;
      for (let i = 0; i < key.length; i++) {
        h = (h * 31 + key.charCodeAt(i)) % 997;
      }
      return (h * 0x9e3779b1) >>> 0; // high bits set too
    };
    for (let i = 0; i < 6000; i++) {
      const key = `k${rng.int(3000)}`;
      const seq = rng.range(1, 1e6);
      const n = offer(index, nodes, key, seq, hashOf(key));
      const old = model.get(key);
      if (!old || old.seq < seq) model.set(key, { node: n, seq });
      // At most half full, always.
      assert.ok(index.size * 2 <= index.capacity);
    }
    assert.equal(index.size, model.size);
    assert.ok(index.capacity >= 4 * start, "grew at least twice");
    for (const [key, { node }] of model) {
      assert.equal(newest(index, nodes, key, hashOf(key)), node, key);
    }
    for (let i = 0; i < 200; i++) {
      const key = `absent${i}`;
      assert.equal(newest(index, nodes, key, hashOf(key)), 0);
    }
  });
});
