/**
 * Manifest roll-over: past `maxManifestBytes` the live manifest is replaced
 * by a new one that starts with a snapshot of the state, so the manifest
 * (and the time the next open spends replaying it) stays bounded; and a
 * power cut at every file operation of a roll loses nothing acknowledged.
 */
import assert from "node:assert/strict";
import type { Db } from "../../mod.ts";
import { InvalidArgumentError, open } from "../../mod.ts";
import { FaultyFileSystem } from "../../engine/testing/faulty_fs.ts";
import { dec, enc, NoSyncFileSystem, withTempDir } from "../_helpers.ts";

const key = (i: number) => enc(`key-${String(i).padStart(5, "0")}`);
const val = (i: number) => enc(`value-${i}`);

interface Stats {
  ops: { manifestRolls: number };
  manifest: { name: string; bytes: number; snapshotBytes: number };
}

function manifests(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name)
    .filter((n) => n.startsWith("MANIFEST-"));
}

Deno.test("the manifest rolls over past maxManifestBytes and stays bounded while the store is open", async () => {
  await withTempDir(async (dir) => {
    const db = await open(dir, {
      background: "inline",
      memtableBytes: 1024,
      maxManifestBytes: 2048,
      fs: new NoSyncFileSystem(),
    });
    let over = 0;
    const n = 3000;
    try {
      for (let i = 0; i < n; i++) {
        await db.put(key(i), val(i));
        if (i % 100 === 99) {
          await db.compactUntilIdle();
          const st = db.stats() as unknown as Stats;
          // The limit, or 4x the snapshot when the state itself is large
          // (so it does not roll on every edit); plus one edit at most.
          const limit = Math.max(2048, 4 * st.manifest.snapshotBytes);
          over = Math.max(over, st.manifest.bytes - limit);
          assert.deepEqual(manifests(dir), [st.manifest.name]);
        }
      }
      const st = db.stats() as unknown as Stats;
      assert.ok(st.ops.manifestRolls >= 3, `${st.ops.manifestRolls} rolls`);
      // Edits here are well under 1 KiB.
      assert.ok(over < 1024, `manifest ${over} bytes past its limit`);
    } finally {
      await db.close();
    }
    const again = await open(dir, { background: "inline" });
    try {
      const items = again.scan().toArray();
      assert.equal(items.length, n);
      for (const it of items) {
        assert.equal(dec(it.value), `value-${Number(dec(it.key).slice(4))}`);
      }
    } finally {
      await again.close();
    }
  });
});

Deno.test("maxManifestBytes is validated, naming the option", async () => {
  for (const bad of [0, -1, 100, 1023, 1.5, NaN, Infinity]) {
    await assert.rejects(
      open("/nonexistent/never-created", { maxManifestBytes: bad }),
      (err: unknown) =>
        err instanceof InvalidArgumentError &&
        /maxManifestBytes/.test(err.message),
      `maxManifestBytes: ${bad}`,
    );
  }
});

/**
 * Opens a store whose manifest rolls after a few flushes and cuts the power
 * at the `step`-th file operation of its first roll. Returns how many steps
 * the roll had when it finished before reaching `step` (no cut), else 0.
 */
async function cutDuringRoll(dir: string, step: number): Promise<number> {
  const fs = new FaultyFileSystem(new NoSyncFileSystem());
  let opened = false;
  let rolling = false;
  let done = false;
  let ops = 0;
  let cut: Promise<number> | undefined;
  fs.failWhen = (op, path) => {
    if (!opened || done) return undefined;
    const name = path.slice(path.lastIndexOf("/") + 1);
    if (!rolling && op === "open" && name.startsWith("MANIFEST-")) {
      rolling = true;
    }
    if (!rolling) return undefined;
    ops++;
    if (op === "remove" && name.startsWith("MANIFEST-")) done = true;
    if (ops === step && !cut) {
      cut = fs.powerCut();
      return new Error("power cut");
    }
    return undefined;
  };
  const db: Db = await open(dir, {
    fs,
    background: "inline",
    memtableBytes: 1024,
    maxManifestBytes: 1024,
  });
  opened = true;
  const acked: number[] = [];
  for (let i = 0; i < 5000 && !cut && !done; i++) {
    try {
      await db.put(key(i), val(i));
      acked.push(i);
    } catch {
      break;
    }
  }
  // Let a flush and its manifest edit (and the roll) run to the end.
  await db.compactUntilIdle().catch(() => {});
  assert.ok(rolling, "the manifest rolled over");
  if (!cut) {
    await db.close();
    return ops;
  }
  await cut;
  await db.close().catch(() => {});
  const after = await open(dir, { background: "inline" });
  try {
    for (const i of acked) {
      assert.deepEqual(
        after.get(key(i))?.value,
        val(i),
        `power cut at step ${step} of the roll lost acknowledged key ${i}`,
      );
    }
    assert.equal(manifests(dir).length, 1, `${manifests(dir)}`);
    await after.put(enc("probe"), enc("x"));
  } finally {
    await after.close();
  }
  return 0;
}

Deno.test("a power cut at every file operation of a manifest roll-over loses no acknowledged write and open succeeds", async () => {
  await withTempDir(async (root) => {
    let steps = 0;
    for (let step = 1; step < 100 && steps === 0; step++) {
      steps = await cutDuringRoll(`${root}/s${step}`, step);
    }
    // create, header, fsync, snapshot, fsync, dir fsync, CURRENT.tmp
    // (unlink, create, write, fsync), rename, dir fsync, remove the old one.
    assert.ok(steps >= 10, `the roll had only ${steps} file operations`);
  });
});
