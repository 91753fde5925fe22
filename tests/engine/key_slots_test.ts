/**
 * KeySlots (one batch's keys) against a Map of the keys as hex strings,
 * with keys drawn from a small alphabet so that repeats, prefixes and
 * lengths 1..4 all occur, and tables small enough to wrap around.
 */
import assert from "node:assert/strict";
import { KeySlots } from "../../engine/key_slots.ts";
import { hex, testSeed, withSeed } from "../_helpers.ts";

Deno.test("KeySlots returns the entry that last held a key, as a Map would", async () => {
  await withSeed(testSeed(41), (rng) => {
    for (let round = 0; round < 200; round++) {
      const count = rng.range(1, 300);
      const slots = new KeySlots(count);
      const model = new Map<string, number>();
      for (let entry = 0; entry < count; entry++) {
        const key = new Uint8Array(rng.range(1, 4));
        for (let i = 0; i < key.length; i++) key[i] = rng.int(3);
        const placeholder = rng.chance(0.2);
        const id = (placeholder ? "p" : "k") + hex(key);
        assert.equal(
          slots.claim(key, placeholder, entry),
          model.get(id) ?? -1,
          `round ${round}, entry ${entry}, key ${id}`,
        );
        model.set(id, entry);
      }
    }
  });
});

Deno.test("a versioned key's placeholder never meets the same bytes as a plain key", () => {
  const slots = new KeySlots(4);
  const key = new Uint8Array([1, 2, 3]);
  assert.equal(slots.claim(key, false, 0), -1);
  assert.equal(slots.claim(key.slice(), true, 1), -1);
  assert.equal(slots.claim(key.slice(), false, 2), 0);
  assert.equal(slots.claim(key.slice(), true, 3), 1);
});
