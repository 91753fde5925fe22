/**
 * The offline check (engine/verify.ts) on real stores: what a healthy one
 * reports, and that each kind of damage is reported, naming the file,
 * without stopping the check of the rest. (Damaged WAL records are covered
 * in db_corruption_test.ts.)
 */
import assert from "node:assert/strict";
import { open } from "../../engine/db.ts";
import { InvalidArgumentError, LockedError } from "../../engine/errors.ts";
import { currentPath, FileType, parseFileName } from "../../engine/filename.ts";
import { verify } from "../../engine/verify.ts";
import { enc, withTempDir } from "../_helpers.ts";

const KEYS_PER_TABLE = 50;
const TABLES = 3;

/** A closed store with TABLES tables of KEYS_PER_TABLE keys each. */
async function store(dir: string): Promise<void> {
  const db = await open(dir, { background: "inline" });
  try {
    for (let t = 0; t < TABLES; t++) {
      for (let i = 0; i < KEYS_PER_TABLE; i++) {
        const k = `t${t}-k${String(i).padStart(3, "0")}`;
        await db.put(enc(k), enc(`value of ${k}`));
      }
      await db.flush();
    }
  } finally {
    await db.close();
  }
}

function filesOf(dir: string, type: FileType): string[] {
  return [...Deno.readDirSync(dir)]
    .map((e) => e.name)
    .filter((n) => parseFileName(n)?.type === type)
    .sort()
    .map((n) => `${dir}/${n}`);
}

Deno.test("a healthy store verifies clean, counting every table entry and file", async () => {
  await withTempDir(async (dir) => {
    await store(dir);
    const tables = filesOf(dir, FileType.Table);
    assert.equal(tables.length, TABLES);
    const progress: [number, number, string][] = [];
    const report = verify(dir, {
      onProgress: (done, total, file) => progress.push([done, total, file]),
    });
    assert.deepEqual(report.errors, []);
    assert.deepEqual(report.tornTails, []);
    assert.equal(report.tables, TABLES);
    assert.equal(report.entries, TABLES * KEYS_PER_TABLE);
    assert.equal(report.walRecords, 0, "every write was flushed");
    const total = progress[0][1];
    assert.equal(report.files, total);
    assert.ok(total > TABLES, "the live WAL segment is read too");
    assert.deepEqual(progress.map((p) => p[0]), [...Array(total + 1).keys()]);
    assert.deepEqual(progress.at(-1), [total, total, ""]);
    for (const t of tables) assert.ok(progress.some((p) => p[2] === t), t);
  });
});

Deno.test("a missing table and a damaged one are both reported, and the rest still checked", async () => {
  await withTempDir(async (dir) => {
    await store(dir);
    const [gone, damaged, fine] = filesOf(dir, FileType.Table);
    Deno.removeSync(gone);
    const b = Deno.readFileSync(damaged);
    b[10] ^= 0xff; // inside the first data block
    Deno.writeFileSync(damaged, b);
    const report = verify(dir);
    assert.deepEqual(
      report.errors.map((e) => e.file).sort(),
      [gone, damaged].sort(),
      JSON.stringify(report.errors),
    );
    assert.equal(report.tables, TABLES);
    assert.ok(
      report.entries >= KEYS_PER_TABLE,
      `the intact table ${fine} was read`,
    );
  });
});

Deno.test("a missing WAL the manifest needs, or a CURRENT naming no manifest, is reported", async () => {
  await withTempDir(async (dir) => {
    await store(dir);
    for (const log of filesOf(dir, FileType.Log)) Deno.removeSync(log);
    const report = verify(dir);
    assert.equal(report.errors.length, 1, JSON.stringify(report.errors));
    assert.match(report.errors[0].message, /needs WAL .* but it is missing/);
    assert.equal(report.tables, TABLES, "the tables are still checked");

    Deno.writeTextFileSync(currentPath(dir), "MANIFEST-999999\n");
    const none = verify(dir);
    assert.equal(none.errors.length, 1, JSON.stringify(none.errors));
    assert.equal(none.errors[0].file, currentPath(dir));
    assert.match(
      none.errors[0].message,
      /names MANIFEST-999999, which does not exist/,
    );
    assert.equal(none.tables, 0, "no manifest: no table list to check");
  });
});

Deno.test("verify refuses a directory a live store holds", async () => {
  await withTempDir(async (dir) => {
    const db = await open(dir, { background: "inline" });
    try {
      assert.throws(() => verify(dir), LockedError);
    } finally {
      await db.close();
    }
    assert.deepEqual(verify(dir).errors, []);
  });
});

Deno.test("verify refuses a directory that holds no store, and leaves nothing in it", async () => {
  await withTempDir((dir) => {
    Deno.writeTextFileSync(`${dir}/notes.txt`, "not a store");
    assert.throws(() => verify(dir), InvalidArgumentError);
    assert.throws(() => verify(`${dir}/missing`), /not a shale data directory/);
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name),
      ["notes.txt"],
      "no LOCK file left behind",
    );
  });
});

Deno.test("tables without a CURRENT to name them are reported", async () => {
  await withTempDir(async (dir) => {
    await store(dir);
    Deno.removeSync(currentPath(dir));
    const report = verify(dir);
    assert.equal(report.errors.length, 1, JSON.stringify(report.errors));
    assert.match(report.errors[0].message, /no CURRENT/);
    assert.match(report.errors[0].message, /3 table files/);
  });
});
