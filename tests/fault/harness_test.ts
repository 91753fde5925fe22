/**
 * The fault suites' own tools (tests/fault/_harness.ts) measure what they
 * claim, under the permissions the suites really run with.
 */
import { equal, ok, throws } from "node:assert/strict";
import { maxOf, rssKiB } from "./_harness.ts";

Deno.test("rssKiB reads a child process's RSS under the suites' permissions", async () => {
  // `make test` and `make fuzz` grant --allow-run etc. but not --allow-all,
  // which Deno 2 needs to read /proc/<other pid>/status directly.
  const child = new Deno.Command("sleep", {
    args: ["30"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    const { rss, peak } = rssKiB(child.pid);
    ok(rss > 0 && peak >= rss, `rss ${rss} KiB, peak ${peak} KiB`);
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
  // A process that is gone is an error, never 0.
  throws(() => rssKiB(child.pid));
});

Deno.test("maxOf handles the millions of latencies of a 10-minute soak", () => {
  const values = Array.from({ length: 2_000_000 }, (_, i) => i % 1000);
  values[1_234_567] = 5000;
  equal(maxOf(values), 5000);
  equal(maxOf([]), -Infinity);
});
