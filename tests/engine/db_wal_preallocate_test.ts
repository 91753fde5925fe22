/**
 * The live WAL segment is zero-filled ahead of its records
 * (engine/commit.ts `reserveLogSpace`, WAL_PREALLOCATE_BYTES at a time); a
 * segment is cut back to its last record before a newer one takes records
 * and before its clean-close marker; recovery cuts the zeros a crash left.
 */
import assert from "node:assert/strict";
import { open } from "../../mod.ts";
import { FaultyFileSystem } from "../../engine/testing/faulty_fs.ts";
import { WAL_MAGIC, WAL_PREALLOCATE_BYTES } from "../../engine/wal.ts";
import {
  dataRecordCount,
  findCloseMarker,
  parseLog,
} from "../../engine/log_read.ts";
import { dec, enc, NoSyncFileSystem, withTempDir } from "../_helpers.ts";

const key = (i: number) => enc(`key-${String(i).padStart(5, "0")}`);
const val = (i: number) => enc(`value-${i}-${"x".repeat(i % 50)}`);

function logFiles(dir: string): string[] {
  return [...Deno.readDirSync(dir)]
    .map((e) => e.name)
    .filter((n) => n.endsWith(".log"))
    .sort()
    .map((n) => `${dir}/${n}`);
}

const sizeOf = (path: string) => Deno.statSync(path).size;

async function expectKeys(dir: string, n: number): Promise<void> {
  const db = await open(dir, { background: "inline" });
  try {
    const got = db.scan().toArray();
    assert.equal(got.length, n);
    for (let i = 0; i < n; i++) {
      assert.equal(dec(got[i].value), dec(val(i)), `key ${i}`);
    }
  } finally {
    await db.close();
  }
}

Deno.test("the live WAL segment is zero-filled ahead in whole steps; close cuts the zeros and ends it with its marker", async () => {
  await withTempDir(async (dir) => {
    const db = await open(dir, { background: "inline" });
    let log: string;
    try {
      await db.put(key(0), val(0));
      [log] = logFiles(dir);
      assert.equal(sizeOf(log), WAL_PREALLOCATE_BYTES);
      const big = new Uint8Array(WAL_PREALLOCATE_BYTES);
      await db.put(key(1), big);
      assert.equal(sizeOf(log), 2 * WAL_PREALLOCATE_BYTES);
      const r = parseLog(Deno.readFileSync(log), log, WAL_MAGIC);
      assert.equal(dataRecordCount(r), 2);
      assert.equal(r.zeroFill?.offset, r.validEnd);
      assert.equal(r.validEnd + r.zeroFill!.bytes, 2 * WAL_PREALLOCATE_BYTES);
    } finally {
      await db.close();
    }
    const bytes = Deno.readFileSync(log);
    assert.ok(bytes.length < 2 * WAL_PREALLOCATE_BYTES);
    assert.equal(findCloseMarker(bytes) > 0, true, "the marker ends the file");
  });
});

Deno.test("a WAL segment ends at its last record before a newer segment takes records", async () => {
  await withTempDir(async (dir) => {
    // Look at the older segments when each flush opens its table: rotation
    // has started the newer segment by then.
    const fs = new FaultyFileSystem(new NoSyncFileSystem());
    let looked = 0;
    fs.failWhen = (op, path) => {
      if (op !== "open" || !path.includes(".sst")) return undefined;
      const logs = logFiles(dir);
      for (const older of logs.slice(0, -1)) {
        const bytes = Deno.readFileSync(older);
        const r = parseLog(bytes, older, WAL_MAGIC, { mayBeTorn: false });
        assert.equal(r.validEnd, bytes.length, `${older} ends at a record`);
        looked++;
      }
      return undefined;
    };
    const db = await open(dir, {
      fs,
      background: "inline",
      memtableBytes: 4096,
    });
    try {
      for (let i = 0; i < 200; i++) await db.put(key(i), val(i));
    } finally {
      await db.close();
    }
    assert.ok(looked > 0, "some flush saw an older segment");
    await expectKeys(dir, 200);
  });
});

Deno.test("a crash leaves zeros after the newest segment's records; open cuts them, and a second crash before any flush loses nothing", async () => {
  await withTempDir(async (dir) => {
    const fs = new FaultyFileSystem(new NoSyncFileSystem());
    const db = await open(dir, { fs, background: "inline" });
    for (let i = 0; i < 20; i++) await db.put(key(i), val(i));
    await fs.powerCut();
    await db.close().catch(() => {});
    const [first] = logFiles(dir);
    assert.equal(
      sizeOf(first),
      WAL_PREALLOCATE_BYTES,
      "the synced zeros survive",
    );

    // Second life: the power goes when the replayed memtable's flush opens
    // its table, so the first segment is no longer the newest (open started
    // another) and no flush has retired it.
    const fs2 = new FaultyFileSystem(new NoSyncFileSystem());
    let cut: Promise<number> | undefined;
    let firstSize = -1;
    fs2.failWhen = (op, path) => {
      if (op !== "open" || !path.includes(".sst") || cut) return undefined;
      firstSize = sizeOf(first);
      cut = fs2.powerCut();
      return new Error("power cut");
    };
    let acked = 20;
    try {
      const db2 = await open(dir, { fs: fs2, background: "inline" });
      assert.equal(db2.recovery.tornTails.length, 0, "zero fill is not torn");
      try {
        for (let i = 20; i < 40 && !fs2.dead; i++) {
          await db2.put(key(i), val(i));
          acked = i + 1;
        }
      } finally {
        await db2.close().catch(() => {});
      }
    } catch {
      // the power cut, during open or a write
    }
    assert.ok(cut, "a flush started");
    await cut;
    assert.equal(logFiles(dir).length, 2, "both segments are left to replay");
    await expectKeys(dir, acked);
    assert.ok(firstSize < 4096, `open cut the zeros off: ${firstSize} bytes`);
  });
});

Deno.test("writes go on when the zeros cannot be written (a full disk takes the append's path)", async () => {
  await withTempDir(async (dir) => {
    const fs = new FaultyFileSystem(new NoSyncFileSystem());
    fs.failWhen = (op) =>
      op === "preallocate" ? new Error("ENOSPC: no space left") : undefined;
    const db = await open(dir, { fs, background: "inline" });
    try {
      for (let i = 0; i < 20; i++) await db.put(key(i), val(i));
      const [log] = logFiles(dir);
      const r = parseLog(Deno.readFileSync(log), log, WAL_MAGIC);
      assert.equal(dataRecordCount(r), 20);
      assert.equal(r.zeroFill, undefined, "no zeros were left behind");
    } finally {
      await db.close();
    }
    await expectKeys(dir, 20);
  });
});
