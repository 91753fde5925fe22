/**
 * Memory-mapped table reads (engine/mmap.ts, TableReader `map`): nothing a
 * mapped reader returns may view the map (it is unmapped on close), a
 * corrupt block is caught through the map, a closed reader throws instead
 * of touching unmapped memory, and `readMode` picks the path.
 */
import assert from "node:assert/strict";
import { BlockCache } from "../../engine/cache.ts";
import { ENCODING_RAW, type Entry, KIND_PUT } from "../../engine/entry.ts";
import { CorruptionError, ShaleError } from "../../engine/errors.ts";
import { realFs } from "../../engine/fs.ts";
import { mapFile, mmapAvailable } from "../../engine/mmap.ts";
import { resolveOptions } from "../../engine/options.ts";
import { newTableStats, TableReader } from "../../engine/sstable/reader.ts";
import { TableWriter } from "../../engine/sstable/writer.ts";
import { tablePath } from "../../engine/filename.ts";
import { open } from "../../mod.ts";
import { dec, enc, prng, withTempDir } from "../_helpers.ts";

const ignore = !mmapAvailable();

function model(n: number): Entry[] {
  const rng = prng(12);
  const out: Entry[] = [];
  for (let i = 0; i < n; i++) {
    const v = new Uint8Array(20 + Math.floor(rng() * 80));
    for (let j = 0; j < v.length; j++) v[j] = Math.floor(rng() * 256);
    out.push({
      key: enc(`k${String(i).padStart(6, "0")}`),
      seq: i + 1,
      kind: KIND_PUT,
      encoding: ENCODING_RAW,
      expiresAt: 0,
      value: v,
    });
  }
  return out;
}

async function writeTable(dir: string, n: number, es: Entry[]): Promise<void> {
  const w = TableWriter.create(realFs, dir, n, { blockSize: 512 });
  for (const e of es) w.add(e);
  await w.finish();
}

Deno.test({
  name: "mapFile maps exactly the requested bytes and refuses an empty map",
  ignore,
  fn: async () => {
    await withTempDir(async (dir) => {
      const path = `${dir}/f`;
      await Deno.writeFile(path, enc("0123456789"));
      const m = mapFile(path, 6);
      assert.equal(dec(m.bytes), "012345");
      m.unmap();
      m.unmap(); // idempotent
      assert.throws(() => mapFile(path, 0), /cannot map 0 bytes/);
      assert.throws(() => mapFile(`${dir}/missing`, 4), /cannot open/);
    });
  },
});

Deno.test({
  name:
    "a mapped reader's values and iterator entries are copies that outlive close and the file",
  ignore,
  fn: async () => {
    const es = model(3000);
    await withTempDir(async (dir) => {
      await writeTable(dir, 1, es);
      const cache = new BlockCache(1 << 20);
      const stats = newTableStats();
      const t = TableReader.open(realFs, tablePath(dir, 1), 1, cache, {
        stats,
        map: true,
      });
      assert.ok(t.mapped);
      const got = es.map((e) => t.get(e.key, e.seq)!);
      const it = t.iterator();
      const scanned: Entry[] = [];
      for (it.seekToFirst(); it.valid(); it.next()) scanned.push(it.entry());
      for (const e of es) t.get(e.key, e.seq); // second pass: no new reads
      // Each block's CRC was checked once, on first touch; the block cache
      // is not used by mapped readers.
      assert.equal(stats.blockReads, t.blockCount);
      assert.equal(cache.stats().bytes, 0);
      t.close();
      await Deno.remove(tablePath(dir, 1));
      // Touching a view into the unmapped region would crash the process.
      got.forEach((e, i) => assert.deepEqual(e.value, es[i].value));
      scanned.forEach((e, i) => assert.deepEqual(e.value, es[i].value));
      assert.throws(() => t.get(es[0].key, 1), /closed/);
      assert.throws(() => t.readDataBlock(0), /closed/);
      assert.throws(() => t.iterator(), /closed/);
    });
  },
});

Deno.test({
  name:
    "an iterator over a mapped reader closed under it throws closed when it moves to the next block",
  ignore,
  fn: async () => {
    const es = model(2000);
    await withTempDir(async (dir) => {
      await writeTable(dir, 2, es);
      const t = TableReader.open(
        realFs,
        tablePath(dir, 2),
        2,
        new BlockCache(0),
        { map: true },
      );
      const it = t.iterator();
      it.seekToFirst();
      const first = it.entry();
      t.close();
      assert.deepEqual(first.value, es[0].value);
      assert.throws(() => {
        for (; it.valid(); it.next()) it.entry();
      }, (err: unknown) => err instanceof ShaleError && err.code === "closed");
    });
  },
});

Deno.test({
  name:
    "a flipped data byte is caught through the map on every read, never marked verified",
  ignore,
  fn: async () => {
    const es = model(500);
    await withTempDir(async (dir) => {
      await writeTable(dir, 3, es);
      const path = tablePath(dir, 3);
      const b = await Deno.readFile(path);
      b[100] ^= 0x10;
      await Deno.writeFile(path, b);
      const t = TableReader.open(realFs, path, 3, new BlockCache(0), {
        map: true,
      });
      try {
        for (let i = 0; i < 2; i++) {
          assert.throws(
            () => t.get(es[0].key, es[0].seq),
            (err: unknown) =>
              err instanceof CorruptionError && err.offset === 0 &&
              /data block checksum mismatch/.test(err.message),
          );
        }
        // Blocks after the damaged one still read.
        const last = es[es.length - 1];
        assert.deepEqual(t.get(last.key, last.seq)!.value, last.value);
      } finally {
        t.close();
      }
    });
  },
});

Deno.test({
  name:
    "readMode: auto maps under --allow-ffi, pread stays pread, and a store reads the same either way",
  ignore,
  fn: async () => {
    assert.equal(resolveOptions({ readMode: "auto" }).readMode, "mmap");
    assert.equal(resolveOptions({ readMode: "pread" }).readMode, "pread");
    assert.equal(resolveOptions({ readMode: "mmap" }).readMode, "mmap");
    await withTempDir(async (dir) => {
      let db = await open(dir, { readMode: "pread", background: "inline" });
      for (let i = 0; i < 500; i++) {
        await db.put(enc(`key${i}`), enc(`value${i}`));
      }
      await db.flush();
      await db.close();
      for (const readMode of ["mmap", "pread"] as const) {
        db = await open(dir, { readMode, background: "inline" });
        try {
          assert.equal(dec(db.get(enc("key42"))!.value), "value42");
          assert.equal([...db.scan({ prefix: enc("key") })].length, 500);
        } finally {
          await db.close();
        }
      }
    });
  },
});

Deno.test("readMode mmap without --allow-ffi is refused clearly; auto falls back to pread", async () => {
  const script = `
    import { open } from ${
    JSON.stringify(new URL("../../mod.ts", import.meta.url).href)
  };
    const dir = Deno.args[0];
    try {
      await open(dir, { readMode: "mmap" });
      console.log("opened");
    } catch (err) {
      console.log(err.code + ": " + err.message);
    }
    const db = await open(dir, { readMode: "auto", background: "inline" });
    await db.put(new Uint8Array([1]), new Uint8Array([2]));
    await db.flush();
    console.log("auto get", db.get(new Uint8Array([1]))?.value[0]);
    await db.close();
  `;
  await withTempDir(async (dir) => {
    // `deno eval` would grant every permission: run a file instead.
    await Deno.writeTextFile(`${dir}/child.ts`, script);
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        `${dir}/child.ts`,
        `${dir}/db`,
      ],
      env: { DENO_NO_UPDATE_CHECK: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.match(text, /^invalid_argument: .*readMode "mmap".*--allow-ffi/m);
    assert.match(text, /^auto get 2$/m);
  });
});
