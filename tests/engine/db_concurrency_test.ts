/**
 * Public methods called concurrently with each other: scans snapshot at the
 * call, and flush / close / compaction calls that overlap all finish.
 */
import assert from "node:assert/strict";
import type { Db } from "../../mod.ts";
import { ClosedError, open } from "../../mod.ts";
import { dec, enc, withTempDir } from "../_helpers.ts";

async function withDb(fn: (db: Db) => Promise<void>): Promise<void> {
  await withTempDir(async (dir) => {
    const db = await open(dir, { background: "inline", sync: "none" });
    try {
      await fn(db);
    } finally {
      await db.close();
    }
  });
}

const keys = (it: Iterable<{ key: Uint8Array }>) =>
  [...it].map((i) => dec(i.key));

Deno.test("scan() takes its snapshot when called, not at the first next()", async () => {
  await withDb(async (db) => {
    await db.put(enc("a"), enc("1"));
    await db.put(enc("c"), enc("1"));
    const forward = db.scan();
    const reverse = db.scan({ reverse: true });
    const limited = db.scan({ limit: 10, prefix: enc("") });
    await db.put(enc("b"), enc("2"));
    await db.delete(enc("c"));
    assert.deepEqual(keys(forward), ["a", "c"]);
    assert.deepEqual(keys(reverse), ["c", "a"]);
    assert.deepEqual(keys(limited), ["a", "c"]);
    assert.deepEqual(keys(db.scan()), ["a", "b"]);
  });
});

Deno.test("a scan created before a flush and compaction still reads its snapshot", async () => {
  await withDb(async (db) => {
    for (let i = 0; i < 100; i++) {
      await db.put(enc(`k${String(i).padStart(3, "0")}`), enc(`v${i}`));
    }
    const it = db.scan();
    for (let i = 0; i < 100; i += 2) {
      await db.delete(enc(`k${String(i).padStart(3, "0")}`));
    }
    await db.flush();
    await db.compactRange();
    const seen = [...it].map((x) => dec(x.value));
    assert.equal(seen.length, 100);
    assert.equal(seen[99], "v99");
    assert.equal(keys(db.scan()).length, 50);
  });
});

Deno.test("scan() on a closed store throws ClosedError at the call", async () => {
  await withTempDir(async (dir) => {
    const db = await open(dir, { background: "inline" });
    await db.close();
    assert.throws(() => db.scan(), ClosedError);
    assert.throws(() => db.scan({ limit: 0 }), ClosedError);
  });
});

Deno.test("a scan abandoned before its first next() releases its tables", async () => {
  await withTempDir(async (dir) => {
    const db = await open(dir, { background: "inline", sync: "none" });
    const tables = () =>
      [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
        n.endsWith(".sst")
      ).sort();
    try {
      await db.put(enc("a"), enc("1"));
      await db.flush();
      await db.put(enc("b"), enc("2"));
      await db.flush();
      const old = tables();
      assert.equal(old.length, 2);
      const held = db.scan(); // never iterated, never returned
      const dropped = db.scan();
      dropped.return(undefined);
      await db.compactRange();
      // The held scan still pins the old tables; the returned one does not.
      assert.deepEqual(keys(held), ["a", "b"]);
      await db.compactRange();
      assert.equal(tables().filter((n) => old.includes(n)).length, 0);
      assert.deepEqual(keys(db.scan()), ["a", "b"]);
    } finally {
      await db.close();
    }
  });
});

Deno.test("a scan in progress when the store closes throws ClosedError on its next step", async () => {
  await withTempDir(async (dir) => {
    const db = await open(dir, { background: "inline", sync: "none" });
    for (let i = 0; i < 1000; i++) await db.put(enc(`k${i}`), enc(`v${i}`));
    await db.flush();
    const it = db.scan();
    assert.equal(it.next().done, false);
    await db.close();
    assert.throws(() => it.next(), ClosedError);
  });
});

Deno.test("a second close() resolves only once the first has released the directory", async () => {
  await withTempDir(async (dir) => {
    const db = await open(dir, { background: "inline" });
    await db.put(enc("a"), enc("1"));
    const first = db.close();
    await db.close();
    const again = await open(dir, { background: "inline" });
    assert.equal(dec(again.get(enc("a"))!.value), "1");
    await again.close();
    await first;
  });
});

/**
 * Overlapping flush / close / compaction calls, each run in a child
 * process: a hang may be a microtask spin that starves every timer, so
 * only a kill from outside can end it.
 */
const SCENARIOS: [string, string[]][] = [
  ["flush+flush", ["ok", "ok"]],
  ["flush+close", ["ok", "ok"]],
  ["flush+put+flush", ["ok", "ok", "ok"]],
  ["compactRange+close", ["closed", "ok"]],
  ["compactRange+compactRange", ["ok", "ok"]],
  ["compactUntilIdle+flush+close", ["ok", "ok", "ok"]],
  // close() refuses writes from its call on, so that steady writers cannot
  // keep it waiting; the put reaches the commit pipeline after that.
  ["close+close+put", ["closed", "ok", "ok"]],
];

for (const [scenario, expected] of SCENARIOS) {
  Deno.test(`concurrent ${scenario} all finish`, async () => {
    await withTempDir(async (dir) => {
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-read",
          "--allow-write",
          "--allow-env",
          new URL("./_concurrent_child.ts", import.meta.url).pathname,
          scenario,
          dir,
        ],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      const out = await child.output();
      clearTimeout(timer);
      const text = new TextDecoder().decode(out.stdout).trim();
      assert.equal(
        out.signal,
        null,
        `${scenario} hung and was killed\n${
          new TextDecoder().decode(out.stderr)
        }`,
      );
      assert.equal(text, `done ${JSON.stringify(expected)}`);
    });
  });
}
