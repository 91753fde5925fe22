/** The compaction rate limiter (engine/rate_limiter.ts) and its use by compaction. */
import assert from "node:assert/strict";
import { open } from "../../mod.ts";
import { InvalidArgumentError } from "../../engine/errors.ts";
import { DEFAULT_REFILL_MS, RateLimiter } from "../../engine/rate_limiter.ts";
import { resolveOptions } from "../../engine/options.ts";
import { NoSyncFileSystem, prng, withTempDir } from "../_helpers.ts";

/** A limiter on a fake clock whose sleeps advance time and are recorded. */
function fakeLimiter(rate: number, refillMs = DEFAULT_REFILL_MS) {
  let now = 1000;
  const sleeps: number[] = [];
  const limiter = new RateLimiter(rate, {
    refillMs,
    now: () => now,
    sleep: (ms) => {
      sleeps.push(ms);
      now += ms;
      return Promise.resolve();
    },
  });
  return {
    limiter,
    sleeps,
    advance: (ms: number) => now += ms,
    now: () => now,
  };
}

Deno.test("the bucket grants one refill period's worth at once, then waits for each refill", async () => {
  const f = fakeLimiter(1_000_000); // 100,000 bytes per 100 ms
  await f.limiter.request(100_000);
  assert.deepEqual(f.sleeps, []);
  await f.limiter.request(1);
  assert.deepEqual(f.sleeps, [100]);
  // 350,000 bytes more: the 99,999 left of this period, then three more
  // refills.
  const t = f.now();
  await f.limiter.request(350_000);
  assert.equal(f.now() - t, 300);
  assert.equal(f.limiter.waitedMs, 400);
});

Deno.test("idle time is not banked as a burst", async () => {
  const f = fakeLimiter(1_000_000);
  f.advance(60_000);
  await f.limiter.request(100_000);
  assert.deepEqual(f.sleeps, []);
  await f.limiter.request(100_000);
  assert.deepEqual(f.sleeps, [100]);
});

Deno.test("over any stretch the granted bytes stay within rate x time plus one period", async () => {
  const rng = prng(11);
  const rate = 3_000_000;
  const f = fakeLimiter(rate, 50);
  const start = f.now();
  let granted = 0;
  for (let i = 0; i < 2000; i++) {
    if (rng() < 0.3) f.advance(Math.floor(rng() * 30));
    const bytes = 1 + Math.floor(rng() * 200_000);
    await f.limiter.request(bytes);
    granted += bytes;
    const elapsed = (f.now() - start) / 1000;
    assert.ok(
      granted <= rate * elapsed + rate * 0.05 + 1,
      `${granted} bytes by ${elapsed} s`,
    );
  }
});

Deno.test("a rate that is not positive is refused", () => {
  for (const bad of [0, -1, NaN, Infinity]) {
    assert.throws(() => new RateLimiter(bad), InvalidArgumentError);
  }
  assert.throws(
    () => resolveOptions({ compactionBytesPerSecond: -5 }),
    /compactionBytesPerSecond/,
  );
  assert.equal(resolveOptions().compactionBytesPerSecond, 0);
});

Deno.test("a rate-limited compaction writes no faster than its limit and loses nothing", async () => {
  await withTempDir(async (dir) => {
    const rate = 192 * 1024;
    const db = await open(dir, {
      fs: new NoSyncFileSystem(),
      background: "inline",
      sync: "none",
      compression: "none",
      memtableBytes: 256 * 1024,
      l0CompactionTrigger: 100,
      l0SlowdownTrigger: 200,
      l0StopTrigger: 300,
      compactionBytesPerSecond: rate,
    });
    try {
      const rng = prng(5);
      const value = () =>
        Uint8Array.from({ length: 200 }, () => Math.floor(rng() * 256));
      const keys: Uint8Array[] = [];
      for (let i = 0; i < 2000; i++) {
        keys.push(new TextEncoder().encode(`k${String(i).padStart(6, "0")}`));
      }
      for (let i = 0; i < keys.length; i += 500) {
        await db.batch(
          keys.slice(i, i + 500).map((key) => ({
            type: "put" as const,
            key,
            value: value(),
          })),
        );
      }
      await db.flush();
      const before = (db.stats().ops as Record<string, number>)
        .compactBytesWritten;
      const t = performance.now();
      await db.compactRange();
      const seconds = (performance.now() - t) / 1000;
      const written = (db.stats().ops as Record<string, number>)
        .compactBytesWritten - before;
      // Unpaid: the first period's grant, plus up to one slice (64 KiB) and
      // the table tail written after the last request, per compaction.
      const free = rate * DEFAULT_REFILL_MS / 1000 + 2 * 64 * 1024;
      assert.ok(written > 2 * free, `${written} bytes written`);
      assert.ok(
        seconds >= (written - free) / rate,
        `${written} bytes in ${seconds.toFixed(2)} s at ${rate} B/s`,
      );
      for (const key of keys) assert.ok(db.get(key) !== undefined);
    } finally {
      await db.close();
    }
  });
});
