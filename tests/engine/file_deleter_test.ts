/** Deleting obsolete files off the main thread, and the fallback for file systems that cannot. */
import { deepEqual, equal } from "node:assert/strict";
import { FileDeleter } from "../../engine/file_deleter.ts";
import type { FileSystem } from "../../engine/fs.ts";
import { realFs } from "../../engine/fs.ts";
import { open } from "../../mod.ts";
import { withTempDir } from "../_helpers.ts";

Deno.test("FileDeleter removes files asynchronously and idle() waits for them", async () => {
  await withTempDir(async (dir) => {
    const paths = [0, 1, 2].map((i) => `${dir}/f${i}`);
    for (const p of paths) Deno.writeFileSync(p, new Uint8Array(1 << 20));
    const d = new FileDeleter(realFs);
    for (const p of paths) d.remove(p);
    // Started on the runtime's I/O threads, not done inline.
    equal(d.pending, 3);
    await d.idle();
    equal(d.pending, 0);
    deepEqual([...Deno.readDirSync(dir)], []);
    // A missing file and a failure are not errors (open cleans up later).
    d.remove(`${dir}/absent`);
    d.remove(`${dir}/no/such/dir/file`);
    await d.idle();
  });
});

Deno.test("FileDeleter falls back to the synchronous remove of a file system without removeAsync", () => {
  const removed: string[] = [];
  const fs = {
    remove(path: string) {
      removed.push(path);
      if (path === "bad") throw new Error("EIO");
    },
  } as unknown as FileSystem;
  const d = new FileDeleter(fs);
  d.remove("a");
  d.remove("bad"); // swallowed: left for the next open
  deepEqual(removed, ["a", "bad"]);
  equal(d.pending, 0);
});

Deno.test("tables a compaction replaced are gone once compactRange returns and after close", async () => {
  await withTempDir(async (dir) => {
    const db = await open(dir, { sync: "none" });
    const tables = () =>
      [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".sst"))
        .length;
    try {
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 100; i++) {
          await db.put(new Uint8Array([round, i]), new Uint8Array(100));
        }
        await db.flush();
      }
      equal(tables(), 3);
      await db.compactRange();
      equal(tables(), 1);
    } finally {
      await db.close();
    }
    equal(tables(), 1);
  });
});
