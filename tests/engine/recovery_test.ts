import assert from "node:assert/strict";
import { CorruptionError, open } from "../../mod.ts";
import { logPath, numberInName, tableFileName } from "../../engine/filename.ts";
import { realFs } from "../../engine/fs.ts";
import { emptyState } from "../../engine/manifest.ts";
import {
  accessWarning,
  makeDataDir,
  recover,
  removeUnreferenced,
} from "../../engine/recovery.ts";
import { findCloseMarker } from "../../engine/log_read.ts";
import { enc, withTempDir } from "../_helpers.ts";

const NO_SALVAGE = { salvage: false };

Deno.test("recovery of an empty directory starts from an empty state with nothing to replay", async () => {
  await withTempDir(async (dir) => {
    const r = await recover(realFs, dir, NO_SALVAGE);
    assert.equal(r.manifestFile, undefined);
    assert.equal(r.nextFile, 1);
    assert.equal(r.lastSeq, 0);
    assert.equal(r.replayed.count, 0);
    assert.deepEqual(r.replayedLogs, []);
    assert.equal(r.info.walFiles, 0);
    assert.equal(r.info.walRecords, 0);
    assert.deepEqual(r.state.levels.map((l) => l.size), [0, 0, 0, 0, 0, 0, 0]);
  });
});

Deno.test("recovery replays the WAL a closed store left and numbers new files above every existing one", async () => {
  await withTempDir(async (dir) => {
    const db = await open(dir, { background: "inline" });
    await db.put(enc("a"), enc("1"));
    await db.put(enc("b"), enc("2"));
    await db.delete(enc("a"));
    await db.close();
    const r = await recover(realFs, dir, NO_SALVAGE);
    assert.equal(r.manifestFile !== undefined, true);
    assert.equal(r.lastSeq, 3);
    assert.equal(r.replayed.count, 3);
    assert.equal(r.replayedLogs.length, 1);
    assert.equal(r.info.walFiles, 1);
    assert.equal(r.info.walRecords, 3);
    assert.deepEqual(r.info.tornTails, []);
    for (const name of Deno.readDirSync(dir)) {
      const n = numberInName(name.name);
      if (n !== undefined) assert.ok(r.nextFile > n, name.name);
    }
  });
});

Deno.test("recovery cuts a torn tail off the newest WAL segment and reports it", async () => {
  await withTempDir(async (dir) => {
    const db = await open(dir, { background: "inline" });
    await db.put(enc("a"), enc("1"));
    await db.put(enc("b"), enc("2"));
    await db.close();
    const r0 = await recover(realFs, dir, NO_SALVAGE);
    const wal = logPath(dir, r0.replayedLogs[0]);
    // A crash in the middle of the last append: no close marker, and the
    // second record cut short.
    const marker = findCloseMarker(Deno.readFileSync(wal));
    assert.ok(marker > 0);
    const cut = marker - 3;
    Deno.truncateSync(wal, cut);
    const r = await recover(realFs, dir, NO_SALVAGE);
    assert.equal(r.info.tornTails.length, 1);
    assert.equal(r.info.tornTails[0].file, wal);
    assert.ok(Deno.statSync(wal).size < cut);
    assert.equal(r.replayed.count, 1);
    assert.equal(r.lastSeq, 1);
  });
});

Deno.test("recovery refuses a manifest that lists a missing table", async () => {
  await withTempDir(async (dir) => {
    const db = await open(dir, { background: "inline" });
    await db.put(enc("a"), enc("1"));
    await db.flush();
    await db.close();
    const tables = [...Deno.readDirSync(dir)].filter((e) =>
      e.name.endsWith(".sst")
    );
    assert.equal(tables.length, 1);
    Deno.removeSync(`${dir}/${tables[0].name}`);
    await assert.rejects(
      recover(realFs, dir, NO_SALVAGE),
      (err: unknown) =>
        err instanceof CorruptionError &&
        err.message.includes(`table ${tables[0].name}, which is missing`),
    );
  });
});

Deno.test("unreferenced files are removed and everything live or foreign is kept", async () => {
  await withTempDir((dir) => {
    const state = emptyState();
    state.levels[1].set(3, {
      fileNumber: 3,
      level: 1,
      size: 0,
      entries: 0,
      minSeq: 0,
      maxSeq: 0,
      smallest: enc("a"),
      largest: enc("b"),
    });
    const names = [
      tableFileName(3),
      tableFileName(4),
      "000002.log",
      "000005.log",
      "000006.log",
      "MANIFEST-000001",
      "MANIFEST-000007",
      "000008.sst.tmp",
      "CURRENT.tmp",
      "CURRENT",
      "notes.txt",
    ];
    for (const n of names) Deno.writeFileSync(`${dir}/${n}`, new Uint8Array());
    const removed = removeUnreferenced(realFs, dir, state, {
      logs: new Set([5]),
      walNumber: 6,
      manifest: "MANIFEST-000007",
    });
    const expected = [
      "000002.log",
      "000004.sst",
      "000008.sst.tmp",
      "CURRENT.tmp",
      "MANIFEST-000001",
    ];
    assert.deepEqual(removed.toSorted(), expected);
    const left = [...Deno.readDirSync(dir)].map((e) => e.name).toSorted();
    assert.deepEqual(
      left,
      names.filter((n) => !expected.includes(n)).toSorted(),
    );
  });
});

Deno.test("a created data directory is owner-only and draws no access warning", async () => {
  await withTempDir(async (dir) => {
    const data = `${dir}/a/b`;
    assert.equal(accessWarning(realFs, data), undefined);
    await makeDataDir(realFs, data);
    assert.ok(Deno.statSync(data).isDirectory);
    assert.equal(accessWarning(realFs, data), undefined);
    Deno.chmodSync(data, 0o755);
    assert.match(accessWarning(realFs, data) ?? "", /chmod 700/);
  });
});
