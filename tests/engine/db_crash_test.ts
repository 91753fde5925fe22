/**
 * Crash test: a child process (tests/engine/_crash_child.ts) writes with
 * sync "always" from 16 concurrent writers and reports every acknowledged
 * write; the parent kills it with SIGKILL at a seeded random moment,
 * reopens, and checks that every acknowledged write is there (or a later
 * write of the same key that was in flight), and that nothing was invented.
 *
 * SHALE_CRASH_CYCLES=<n> runs more cycles (default 3); SHALE_SEED replays.
 */
import assert from "node:assert/strict";
import { open } from "../../mod.ts";
import {
  Rng,
  runUntilKilled,
  testSeed,
  withSeed,
  withTempDir,
} from "../_helpers.ts";
import { checkAcknowledged, type KeyHistory, readAll } from "../_acked.ts";

const CHILD = new URL("./_crash_child.ts", import.meta.url).pathname;

async function runChild(
  dir: string,
  cycle: number,
  seed: number,
  killAfterMs: number,
): Promise<string[]> {
  return await runUntilKilled(
    CHILD,
    [dir, String(cycle), String(seed)],
    killAfterMs,
  );
}

async function crashCycles(seed: number, cycles: number): Promise<void> {
  await withSeed(seed, (rng: Rng) =>
    withTempDir(async (dir) => {
      // The durable state the parent has verified so far: key hex -> value.
      const durable = new Map<string, string>();
      let lastSeq = 0;
      let totalAcked = 0;
      for (let cycle = 0; cycle < cycles; cycle++) {
        const killAfter = rng.range(150, 700);
        const lines = await runChild(dir, cycle, rng.int(2 ** 31), killAfter);
        const keys = new Map<string, KeyHistory>();
        for (const line of lines.slice(1)) {
          const [tag, key, arg] = line.split(" ");
          let st = keys.get(key);
          if (!st) {
            st = { base: durable.get(key) ?? "-", writes: [] };
            keys.set(key, st);
          }
          if (tag === "I") st.writes.push({ value: arg });
          else if (tag === "A") {
            // A writer has one write in flight: the ack is for its last intent.
            const w = st.writes[st.writes.length - 1];
            assert.equal(w.version, undefined, `double ack for ${key}`);
            w.version = Number(arg);
            totalAcked++;
          } else assert.fail(`unexpected line from child: ${line}`);
        }

        const db = await open(dir, { background: "inline" });
        try {
          assert.ok(
            db.lastSeq >= lastSeq,
            `cycle ${cycle}: seqnos went back from ${lastSeq} to ${db.lastSeq}`,
          );
          checkAcknowledged(readAll(db), keys, durable, `cycle ${cycle}`);
          lastSeq = db.lastSeq;
        } finally {
          await db.close();
        }
      }
      if (Deno.env.get("SHALE_DEBUG")) console.log({ totalAcked, lastSeq });
      assert.ok(
        totalAcked > cycles * 20,
        `only ${totalAcked} acknowledged writes`,
      );
    }));
}

Deno.test("every write acknowledged before a SIGKILL survives the reopen, and nothing is invented", async () => {
  const cycles = Number(Deno.env.get("SHALE_CRASH_CYCLES") ?? 3);
  await crashCycles(testSeed(0xc2a5), cycles);
});
