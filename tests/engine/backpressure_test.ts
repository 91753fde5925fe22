/**
 * Backpressure's pure decisions (engine/backpressure.ts): when a write must
 * wait (stall), when it is slowed down, and what the store reports as its
 * write state. The
 * scheduling itself runs through a Db in background_test.ts,
 * db_diskfull_test.ts and db_stats_test.ts.
 */
import assert from "node:assert/strict";
import type { WriteLimits } from "../../engine/backpressure.ts";
import { mustStall, writePressure } from "../../engine/backpressure.ts";

const LIMITS: WriteLimits = {
  maxImmutableMemtables: 2,
  l0SlowdownTrigger: 8,
  l0StopTrigger: 12,
};

Deno.test("writes stall at the frozen-memtable limit or at L0's stop trigger, not before", () => {
  assert.equal(mustStall(0, 0, LIMITS), false);
  assert.equal(mustStall(1, 11, LIMITS), false);
  assert.equal(mustStall(2, 0, LIMITS), true);
  assert.equal(mustStall(0, 12, LIMITS), true);
  assert.equal(mustStall(5, 30, LIMITS), true);
});

Deno.test("the write state names the first reason that applies, with its numbers", () => {
  assert.deepEqual(writePressure(0, 7, LIMITS), { state: "ok", reason: null });
  assert.deepEqual(writePressure(1, 8, LIMITS), {
    state: "slowdown",
    reason: "L0 has 8 tables (writes slow down at 8)",
  });
  assert.deepEqual(writePressure(0, 12, LIMITS), {
    state: "stall",
    reason: "L0 has 12 tables (writes wait at 12)",
  });
  // Frozen memtables come first: their flush is what frees memory.
  assert.deepEqual(writePressure(2, 12, LIMITS), {
    state: "stall",
    reason: "2 frozen memtables wait for a flush (limit 2)",
  });
});

Deno.test("the write state says stall exactly when writes must stall", () => {
  for (let imm = 0; imm <= 3; imm++) {
    for (let l0 = 0; l0 <= 14; l0++) {
      assert.equal(
        writePressure(imm, l0, LIMITS).state === "stall",
        mustStall(imm, l0, LIMITS),
        `imm ${imm}, l0 ${l0}`,
      );
    }
  }
});
