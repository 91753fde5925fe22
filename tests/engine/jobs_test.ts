/**
 * Flush jobs: a frozen memtable's image becomes the same table that
 * rebuilding the memtable from its WAL segment produced before, and a crash
 * between the flush and the manifest edit installing it loses nothing.
 */
import assert from "node:assert/strict";
import { Arena, binaryString, ByteWriter } from "../../engine/coding.ts";
import type { Entry } from "../../engine/entry.ts";
import {
  ENCODING_RAW,
  ENCODING_V8,
  KIND_DELETE,
  KIND_PUT,
  KIND_RANGE_DELETE,
} from "../../engine/entry.ts";
import type { CompactionResult } from "../../engine/compaction.ts";
import { logPath, tablePath } from "../../engine/filename.ts";
import { realFs } from "../../engine/fs.ts";
import { runFlush, runJob } from "../../engine/jobs.ts";
import { Memtable } from "../../engine/memtable.ts";
import { mmapAvailable } from "../../engine/mmap.ts";
import { TableWriter } from "../../engine/sstable/writer.ts";
import { FaultyFileSystem } from "../../engine/testing/faulty_fs.ts";
import { createLog, frameBatch, WAL_MAGIC } from "../../engine/wal.ts";
import { readWalEntries } from "../../engine/log_read.ts";
import { encodeBatchOps } from "../../engine/batch_ops.ts";
import { open } from "../../mod.ts";
import {
  dec,
  enc,
  NoSyncFileSystem,
  type Rng,
  testSeed,
  withSeed,
  withTempDir,
} from "../_helpers.ts";

const SETTINGS = {
  blockSize: 512,
  bloomBitsPerKey: 10,
  compression: "none" as const,
};

/**
 * Random batches over few keys: overwrites, deletes, expiries, range
 * deletes. As on the write path, a batch's ops share its seqno and name
 * distinct keys.
 */
function randomBatches(rng: Rng, count: number): Entry[][] {
  const batches: Entry[][] = [];
  for (let seq = 1; seq <= count; seq++) {
    const ops: Entry[] = [];
    const seen = new Set<number>();
    // Both of the memtable's insert paths: one by one, and sorted groups.
    const size = rng.chance(0.3) ? 1 + rng.int(7) : 8 + rng.int(40);
    for (let i = 0; i < size; i++) {
      const n = rng.int(300);
      if (seen.has(n)) continue;
      seen.add(n);
      const key = enc(`key-${String(n).padStart(4, "0")}`);
      const roll = rng.int(20);
      if (roll === 0 && size < 8) {
        ops.push({
          key,
          seq,
          kind: KIND_RANGE_DELETE,
          encoding: ENCODING_RAW,
          expiresAt: 0,
          value: enc(`key-${String(rng.int(300) + 300).padStart(4, "0")}`),
        });
      } else if (roll < 5) {
        ops.push({
          key,
          seq,
          kind: KIND_DELETE,
          encoding: ENCODING_RAW,
          expiresAt: 0,
          value: new Uint8Array(0),
        });
      } else {
        ops.push({
          key,
          seq,
          kind: KIND_PUT,
          encoding: rng.chance(0.2) ? ENCODING_V8 : ENCODING_RAW,
          expiresAt: rng.chance(0.2) ? 1_700_000_000_000 + rng.int(1e6) : 0,
          value: rng.bytes(rng.int(300)),
        });
      }
    }
    batches.push(ops);
  }
  return batches;
}

/**
 * The flush as it was before memtable images: rebuild the entries from the
 * WAL segment, drop range deletes (they go to the manifest), sort them in
 * internal order and write them.
 */
async function flushFromWal(
  dir: string,
  walPath: string,
  fileNumber: number,
): Promise<void> {
  const entries = readWalEntries(realFs, walPath).entries.filter((e) =>
    e.kind !== KIND_RANGE_DELETE
  );
  entries.sort((a, b) => {
    const x = binaryString(a.key);
    const y = binaryString(b.key);
    return x < y ? -1 : x > y ? 1 : b.seq - a.seq;
  });
  const w = TableWriter.create(realFs, dir, fileNumber, SETTINGS);
  for (const e of entries) w.add(e);
  await w.finish();
}

Deno.test("a flush from the memtable image writes the table the WAL rebuild wrote, byte for byte", async () => {
  for (const seed of [testSeed(11), testSeed(12), testSeed(13)]) {
    await withSeed(seed, (rng) =>
      withTempDir(async (dir) => {
        // The write path: each batch encoded once into the arena, logged,
        // and its entries (views into that encoding) applied.
        const log = await createLog(realFs, logPath(dir, 1), WAL_MAGIC);
        const mem = new Memtable();
        const arena = new Arena(4096);
        let rangeDels = 0;
        for (const ops of randomBatches(rng, 60)) {
          const encoded = encodeBatchOps(ops, arena);
          const w = new ByteWriter();
          frameBatch(w, ops[0].seq, encoded.payload);
          log.append(w.finish());
          mem.addMany(encoded.entries);
          rangeDels += ops.filter((e) => e.kind === KIND_RANGE_DELETE).length;
        }
        await log.sync();
        log.close();
        assert.ok(rangeDels > 0, "the batches include range deletes");
        assert.equal(mem.rangeDels.length, rangeDels);

        const result = await runFlush(realFs, {
          type: "flush",
          dir,
          ...SETTINGS,
          image: mem.image(),
          fileNumber: 2,
        });
        await flushFromWal(dir, logPath(dir, 1), 3);
        assert.ok(result.table);
        assert.deepEqual(
          realFs.readFile(tablePath(dir, 2)),
          realFs.readFile(tablePath(dir, 3)),
        );
      }));
  }
});

Deno.test("a memtable image owns copies: the flush sees the memtable as it was when imaged", async () => {
  await withTempDir(async (dir) => {
    const mem = new Memtable();
    const put = (k: string, v: string, seq: number) =>
      mem.add({
        key: enc(k),
        seq,
        kind: KIND_PUT,
        encoding: ENCODING_RAW,
        expiresAt: 0,
        value: enc(v),
      });
    put("a", "1", 1);
    put("c", "3", 2);
    const image = mem.image();
    put("b", "2", 3); // after the image: not in it
    const result = await runFlush(realFs, {
      type: "flush",
      dir,
      ...SETTINGS,
      image,
      fileNumber: 1,
    });
    assert.equal(result.table?.entries, 2);
    assert.equal(dec(result.table!.largestKey), "c");
  });
});

Deno.test("a flush frees its image's buffers, whether it wrote a table or failed", async () => {
  await withTempDir(async (dir) => {
    const mem = new Memtable();
    mem.add({
      key: enc("a"),
      seq: 1,
      kind: KIND_PUT,
      encoding: ENCODING_RAW,
      expiresAt: 0,
      value: enc("1"),
    });
    const image = mem.image();
    const ok = await runFlush(realFs, {
      type: "flush",
      dir,
      ...SETTINGS,
      image,
      fileNumber: 1,
    });
    assert.equal(ok.table?.entries, 1);
    for (const b of [image.pool, ...image.bufs]) assert.equal(b.detached, true);
    // The memtable it was copied from is untouched.
    assert.equal(dec(mem.get(enc("a"), 1)!.value), "1");
    const failing = mem.image();
    await assert.rejects(runFlush(realFs, {
      type: "flush",
      dir: `${dir}/missing`,
      ...SETTINGS,
      image: failing,
      fileNumber: 2,
    }));
    for (const b of [failing.pool, ...failing.bufs]) {
      assert.equal(b.detached, true);
    }
  });
});

Deno.test("a memtable holding nothing but range deletes flushes to no table", async () => {
  await withTempDir(async (dir) => {
    const mem = new Memtable();
    const empty = await runFlush(realFs, {
      type: "flush",
      dir,
      ...SETTINGS,
      image: mem.image(),
      fileNumber: 1,
    });
    assert.equal(empty.table, undefined);
    mem.add({
      key: enc("a"),
      seq: 1,
      kind: KIND_RANGE_DELETE,
      encoding: ENCODING_RAW,
      expiresAt: 0,
      value: enc("z"),
    });
    const onlyRange = await runFlush(realFs, {
      type: "flush",
      dir,
      ...SETTINGS,
      image: mem.image(),
      fileNumber: 2,
    });
    assert.equal(onlyRange.table, undefined);
    assert.deepEqual(realFs.readDir(dir), []);
  });
});

Deno.test("a crash after a flush wrote its table but before the manifest edit loses nothing: the WAL is replayed", async () => {
  await withTempDir(async (dir) => {
    const fs = new FaultyFileSystem(new NoSyncFileSystem());
    const ops: string[] = [];
    let armed = false;
    let cut: Promise<number> | undefined;
    fs.failWhen = (op, path) => {
      const name = path.slice(path.lastIndexOf("/") + 1);
      ops.push(`${op} ${name}`);
      if (armed && !cut && op === "append" && name.startsWith("MANIFEST")) {
        cut = fs.powerCut();
        return new Error("power cut");
      }
      return undefined;
    };
    const db = await open(dir, { fs, background: "inline" });
    const want = new Map<string, string>();
    for (let i = 0; i < 200; i++) {
      const k = `k${i % 70}`;
      if (i % 9 === 4) {
        await db.delete(enc(k));
        want.delete(k);
      } else {
        await db.put(enc(k), enc(`v${i}`));
        want.set(k, `v${i}`);
      }
    }
    await db.deleteRange(enc("k60"), enc("k65"));
    for (const k of [...want.keys()]) {
      if (k >= "k60" && k < "k65") want.delete(k);
    }
    // One normal flush first: its WAL is removed only after the edit
    // installing its table is durable.
    await db.flush();
    const manifestSync = ops.findLastIndex((o) =>
      o.startsWith("sync MANIFEST")
    );
    const walRemove = ops.findIndex((o) => /^remove .*\.log$/.test(o));
    assert.ok(manifestSync >= 0 && walRemove > manifestSync, ops.join(", "));

    for (let i = 0; i < 50; i++) {
      await db.put(enc(`late${i}`), enc(`w${i}`));
      want.set(`late${i}`, `w${i}`);
    }
    armed = true;
    const tablesBefore = ops.filter((o) => /^rename .*\.sst/.test(o)).length;
    await assert.rejects(db.flush());
    assert.ok(cut, "the power was cut at the manifest edit");
    assert.equal(
      ops.filter((o) => /^rename .*\.sst/.test(o)).length,
      tablesBefore + 1,
      "the flush's table was written before the cut",
    );
    await db.close().catch(() => {});
    await cut;

    const again = await open(dir, {
      background: "inline",
      fs: new NoSyncFileSystem(),
    });
    try {
      const got = new Map<string, string>();
      for (const e of again.scan()) got.set(dec(e.key), dec(e.value));
      assert.deepEqual(got, want);
    } finally {
      await again.close();
    }
  });
});

// Memory maps need FFI (--allow-ffi); without it the test shows as ignored.
Deno.test({
  name:
    "a compaction reading its inputs through memory maps writes the tables positional reads write",
  ignore: !mmapAvailable(),
  fn: () =>
    withSeed(testSeed(21), (rng) =>
      withTempDir(async (dir) => {
        // Three overlapping inputs, newest first, with overwrites and deletes.
        let seq = 1;
        const inputs = [3, 2, 1];
        for (const n of [1, 2, 3]) {
          const entries: Entry[] = [];
          for (let i = 0; i < 2000; i++) {
            if (!rng.chance(0.5)) continue;
            const del = rng.chance(0.2);
            entries.push({
              key: enc(`key-${String(i).padStart(5, "0")}`),
              seq: seq++,
              kind: del ? KIND_DELETE : KIND_PUT,
              encoding: ENCODING_RAW,
              expiresAt: 0,
              value: del ? new Uint8Array(0) : rng.bytes(rng.int(200)),
            });
          }
          const w = TableWriter.create(realFs, dir, n, SETTINGS);
          for (const e of entries) w.add(e);
          await w.finish();
        }
        const job = (map: boolean, first: number) => ({
          type: "compact" as const,
          dir,
          ...SETTINGS,
          tableTargetBytes: 64 * 1024,
          bytesPerSecond: 0,
          inputs,
          outputLevel: 1,
          outputNumbers: Array.from({ length: 20 }, (_, i) => first + i),
          smallestSnapshot: seq,
          now: 0,
          deeper: [],
          map,
        });
        const mapped = await runJob(realFs, job(true, 100)) as CompactionResult;
        const read = await runJob(realFs, job(false, 200)) as CompactionResult;
        assert.ok(mapped.outputs.length > 1);
        assert.equal(mapped.outputs.length, read.outputs.length);
        assert.equal(mapped.entriesOut, read.entriesOut);
        for (let i = 0; i < read.outputs.length; i++) {
          assert.deepEqual(
            realFs.readFile(tablePath(dir, mapped.outputs[i].fileNumber)),
            realFs.readFile(tablePath(dir, read.outputs[i].fileNumber)),
          );
        }
      })),
});
