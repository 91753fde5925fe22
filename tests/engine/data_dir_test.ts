import assert from "node:assert/strict";
import { DataDir } from "../../engine/data_dir.ts";
import { logPath, tablePath } from "../../engine/filename.ts";
import { realFs } from "../../engine/fs.ts";
import { withTempDir } from "../_helpers.ts";

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("file numbers come from one counter shared by every part's view", () => {
  const d = new DataDir(realFs, "/nowhere");
  d.next = 7;
  const a = d.files();
  const b = d.files();
  assert.equal(a.nextFileNumber(), 7);
  assert.equal(a.newFileNumber(), 7);
  assert.equal(
    b.newFileNumber(),
    8,
    "another part's view sees the same counter",
  );
  assert.equal(a.nextFileNumber(), 9);
  assert.equal(d.next, 9);
  assert.equal(a.dir, "/nowhere");
  assert.equal(a.fs, realFs);
});

Deno.test("removeQuietly deletes a file in the background and shrugs at one already gone", async () => {
  await withTempDir(async (dir) => {
    const d = new DataDir(realFs, dir);
    const path = logPath(dir, 3);
    Deno.writeFileSync(path, new Uint8Array(4));
    d.files().removeQuietly(path);
    await d.idle();
    assert.equal(exists(path), false);
    d.removeQuietly(path); // gone: the next open would have removed it anyway
    await d.idle();
  });
});

Deno.test("an obsolete table is removed until the directory is let go, not after", async () => {
  await withTempDir(async (dir) => {
    const d = new DataDir(realFs, dir);
    for (const n of [4, 5]) {
      Deno.writeFileSync(tablePath(dir, n), new Uint8Array(1));
    }
    d.removeTable(4);
    await d.idle();
    assert.equal(exists(tablePath(dir, 4)), false);
    d.released = true; // the lock may be another process's now
    d.removeTable(5);
    await d.idle();
    assert.equal(exists(tablePath(dir, 5)), true);
  });
});
