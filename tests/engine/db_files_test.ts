/**
 * File safety of the data directory: owner-only modes, a warning for a
 * directory others can read, no writing through planted symlinks, and a
 * directory lock that deleting LOCK cannot defeat.
 */
import assert from "node:assert/strict";
import { LockedError, open } from "../../mod.ts";
import { enc, withTempDir } from "../_helpers.ts";

const posix = Deno.build.os !== "windows";

Deno.test({
  name: "a new data directory is 0700 and every file in it 0600",
  ignore: !posix,
  async fn() {
    await withTempDir(async (root) => {
      const dir = `${root}/data`;
      const db = await open(dir, { background: "inline" });
      try {
        for (let i = 0; i < 50; i++) await db.put(enc(`k${i}`), enc("v"));
        await db.flush();
        await db.put(enc("wal"), enc("v"));
        assert.deepEqual(db.recovery.warnings, []);
      } finally {
        await db.close();
      }
      assert.equal(Deno.statSync(dir).mode! & 0o777, 0o700);
      const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
      assert.ok(names.some((n) => n.endsWith(".sst")), `${names}`);
      assert.ok(names.some((n) => n.endsWith(".log")), `${names}`);
      for (const n of names) {
        const mode = Deno.statSync(`${dir}/${n}`).mode! & 0o777;
        assert.equal(mode, 0o600, `${n} has mode ${mode.toString(8)}`);
      }
    });
  },
});

Deno.test({
  name:
    "opening a data directory other users can read warns, naming the directory and its mode",
  ignore: !posix,
  async fn() {
    await withTempDir(async (root) => {
      const dir = `${root}/data`;
      Deno.mkdirSync(dir);
      Deno.chmodSync(dir, 0o755);
      const db = await open(dir, { background: "inline" });
      try {
        assert.equal(db.recovery.warnings.length, 1);
        assert.match(db.recovery.warnings[0], /accessible to other users/);
        assert.ok(db.recovery.warnings[0].includes(dir));
        assert.match(db.recovery.warnings[0], /0755/);
      } finally {
        await db.close();
      }
    });
  },
});

Deno.test({
  name: "a planted CURRENT.tmp symlink is replaced, never written through",
  ignore: !posix,
  async fn() {
    await withTempDir(async (root) => {
      const dir = `${root}/data`;
      const victim = `${root}/victim`;
      Deno.writeTextFileSync(victim, "precious");
      Deno.mkdirSync(dir, { mode: 0o700 });
      Deno.symlinkSync(victim, `${dir}/CURRENT.tmp`);
      const db = await open(dir, { background: "inline" });
      try {
        await db.put(enc("k"), enc("v"));
      } finally {
        await db.close();
      }
      assert.equal(Deno.readTextFileSync(victim), "precious");
      // Again on a store that exists (CURRENT is switched on every open),
      // and with a link for the next table's temporary file.
      Deno.symlinkSync(victim, `${dir}/CURRENT.tmp`);
      const again = await open(dir, { background: "inline" });
      try {
        assert.deepEqual(again.get(enc("k"))?.value, enc("v"));
        const next = Math.max(
          ...[...Deno.readDirSync(dir)].map((e) => parseInt(e.name))
            .filter((n) => n > 0),
        ) + 1;
        for (let n = next; n < next + 4; n++) {
          Deno.symlinkSync(
            victim,
            `${dir}/${String(n).padStart(6, "0")}.sst.tmp`,
          );
        }
        await again.flush();
        assert.deepEqual(again.get(enc("k"))?.value, enc("v"));
      } finally {
        await again.close();
      }
      assert.equal(Deno.readTextFileSync(victim), "precious");
    });
  },
});

Deno.test("deleting LOCK does not let a second open into a live data directory", async () => {
  await withTempDir(async (dir) => {
    const db = await open(dir, { background: "inline" });
    try {
      await db.put(enc("acknowledged"), enc("1"));
      Deno.removeSync(`${dir}/LOCK`);
      await assert.rejects(open(dir, { background: "inline" }), LockedError);
      await db.put(enc("after"), enc("2"));
    } finally {
      await db.close();
    }
    const again = await open(dir, { background: "inline" });
    try {
      assert.deepEqual(again.get(enc("acknowledged"))?.value, enc("1"));
      assert.deepEqual(again.get(enc("after"))?.value, enc("2"));
    } finally {
      await again.close();
    }
  });
});
