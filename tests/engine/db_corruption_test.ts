import assert from "node:assert/strict";
import { CorruptionError, open, ShaleError } from "../../mod.ts";
import { verify } from "../../engine/verify.ts";
import { logPath, parseFileName } from "../../engine/filename.ts";
import {
  LOG_HEADER_SIZE,
  RECORD_CLOSED,
  RECORD_HEADER_SIZE,
  RECORD_SYNC_POINT,
} from "../../engine/wal.ts";
import { enc, withTempDir } from "../_helpers.ts";

const key = (i: number) => enc(`key-${String(i).padStart(5, "0")}`);
const val = (i: number) => enc(`value-${i}-${"x".repeat(i % 50)}`);

/** Writes n keys (one WAL record each) and closes without flushing. */
async function writeWal(dir: string, n: number): Promise<string> {
  const db = await open(dir, { background: "inline" });
  try {
    for (let i = 0; i < n; i++) await db.put(key(i), val(i));
  } finally {
    await db.close();
  }
  const logs: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (
      e.name.endsWith(".log") &&
      (await Deno.stat(`${dir}/${e.name}`)).size > LOG_HEADER_SIZE
    ) {
      logs.push(`${dir}/${e.name}`);
    }
  }
  assert.equal(logs.length, 1, `one WAL with records: ${logs}`);
  return logs[0];
}

/**
 * Writes n keys like {@link writeWal}, then strips the clean-close marker:
 * the WAL as a process killed after its last acknowledged write leaves it.
 */
async function writeWalCrashed(dir: string, n: number): Promise<string> {
  const log = await writeWal(dir, n);
  const b = await Deno.readFile(log);
  const end = recordOffset(b, n);
  assert.equal(
    b[end + 8],
    RECORD_CLOSED,
    "close() ended the WAL with a marker",
  );
  await Deno.writeFile(log, b.subarray(0, end));
  return log;
}

/**
 * Offset of the i-th record in a WAL file that is not a sync point (the
 * i-th write, or the close marker after the last), or the file's end.
 */
function recordOffset(b: Uint8Array, i: number): number {
  let pos = LOG_HEADER_SIZE;
  const view = new DataView(b.buffer, b.byteOffset);
  const skip = () => {
    while (pos < b.length && b[pos + 8] === RECORD_SYNC_POINT) {
      pos += RECORD_HEADER_SIZE + view.getUint32(pos + 4, true);
    }
  };
  skip();
  for (let r = 0; r < i; r++) {
    pos += RECORD_HEADER_SIZE + view.getUint32(pos + 4, true);
    skip();
  }
  return pos;
}

Deno.test("a torn WAL tail is truncated on open and reported in recovery.tornTails", async () => {
  await withTempDir(async (dir) => {
    const log = await writeWalCrashed(dir, 20);
    const b = await Deno.readFile(log);
    const last = recordOffset(b, 19);
    await Deno.writeFile(log, b.subarray(0, b.length - 5));
    const db = await open(dir, { background: "inline" });
    try {
      assert.equal(db.recovery.tornTails.length, 1);
      const t = db.recovery.tornTails[0];
      assert.equal(t.file, log);
      assert.equal(t.offset, last);
      assert.equal(t.bytes, b.length - 5 - last);
      assert.equal(
        (db.stats() as { recovery: { tornTails: number } }).recovery.tornTails,
        1,
      );
      for (let i = 0; i < 19; i++) {
        assert.deepEqual(db.get(key(i))?.value, val(i));
      }
      assert.equal(db.get(key(19)), undefined, "the torn write is gone");
      await db.put(key(19), val(19));
    } finally {
      await db.close();
    }
    const again = await open(dir, { background: "inline" });
    try {
      assert.equal(
        again.recovery.tornTails.length,
        0,
        "the tail was cut off once",
      );
      assert.deepEqual(again.get(key(19))?.value, val(19));
    } finally {
      await again.close();
    }
  });
});

Deno.test("a zero-filled WAL tail (preallocated, never written) is cut off on open, not reported as torn", async () => {
  await withTempDir(async (dir) => {
    const log = await writeWalCrashed(dir, 5);
    const f = await Deno.open(log, { append: true });
    await f.write(new Uint8Array(1000));
    f.close();
    const db = await open(dir, { background: "inline" });
    try {
      assert.equal(db.recovery.tornTails.length, 0);
      assert.equal(db.scan().toArray().length, 5);
    } finally {
      await db.close();
    }
  });
});

Deno.test("a corrupt record in the middle of the WAL fails open with code corruption naming the file", async () => {
  await withTempDir(async (dir) => {
    const log = await writeWal(dir, 20);
    const b = await Deno.readFile(log);
    const off = recordOffset(b, 7);
    b[off + RECORD_HEADER_SIZE + 3] ^= 0x20;
    await Deno.writeFile(log, b);
    await assert.rejects(
      open(dir, { background: "inline" }),
      (err: unknown) => {
        assert.ok(err instanceof CorruptionError, `got ${err}`);
        assert.equal(err.code, "corruption");
        assert.equal(err.file, log);
        assert.equal(err.offset, off);
        assert.ok(err.message.includes(log));
        return true;
      },
    );
    // The failed open released the lock and changed nothing: it fails again.
    await assert.rejects(open(dir, { background: "inline" }), CorruptionError);
  });
});

Deno.test("open with salvage skips the corrupt WAL record, says what it dropped, and keeps the rest", async () => {
  await withTempDir(async (dir) => {
    const log = await writeWal(dir, 20);
    const b = await Deno.readFile(log);
    const off = recordOffset(b, 7);
    b[off + RECORD_HEADER_SIZE + 3] ^= 0x20;
    await Deno.writeFile(log, b);
    const db = await open(dir, { background: "inline", salvage: true });
    try {
      assert.equal(db.recovery.skipped.length, 1);
      assert.equal(db.recovery.skipped[0].file, log);
      assert.equal(db.recovery.skipped[0].offset, off);
      assert.equal(db.get(key(7)), undefined);
      for (let i = 0; i < 20; i++) {
        if (i !== 7) {
          assert.deepEqual(db.get(key(i))?.value, val(i), `key ${i}`);
        }
      }
      await db.flush();
      assert.equal(db.scan().toArray().length, 19);
    } finally {
      await db.close();
    }
    const again = await open(dir, { background: "inline" });
    try {
      assert.equal(
        again.scan().toArray().length,
        19,
        "salvaged state is durable",
      );
    } finally {
      await again.close();
    }
  });
});

Deno.test("a flipped byte in the last WAL record of a cleanly closed store fails open naming file and offset", async () => {
  await withTempDir(async (dir) => {
    const log = await writeWal(dir, 20);
    const b = await Deno.readFile(log);
    const off = recordOffset(b, 19);
    b[off + RECORD_HEADER_SIZE + 3] ^= 0x20;
    await Deno.writeFile(log, b);
    await assert.rejects(
      open(dir, { background: "inline" }),
      (err: unknown) => {
        assert.ok(err instanceof CorruptionError, `got ${err}`);
        assert.equal(err.file, log);
        assert.equal(err.offset, off);
        assert.match(err.message, /closed cleanly/);
        assert.match(err.message, /cannot be a torn write/);
        return true;
      },
    );
    const report = verify(dir);
    assert.deepEqual(report.tornTails, []);
    assert.equal(report.errors.length, 1, JSON.stringify(report.errors));
    assert.equal(report.errors[0].file, log);
    assert.equal(report.errors[0].offset, off);
    assert.match(report.errors[0].message, /cannot be a torn write/);
    // salvage opens, drops only the damaged record and says so.
    const db = await open(dir, { background: "inline", salvage: true });
    try {
      assert.equal(db.recovery.skipped.length, 1);
      assert.equal(db.recovery.skipped[0].offset, off);
      assert.deepEqual(db.recovery.tornTails, []);
      assert.equal(db.get(key(19)), undefined);
      assert.deepEqual(db.get(key(18))?.value, val(18));
    } finally {
      await db.close();
    }
  });
});

Deno.test("a damaged length in the last WAL record of a cleanly closed store is corruption, not a torn tail", async () => {
  await withTempDir(async (dir) => {
    const log = await writeWal(dir, 6);
    const b = await Deno.readFile(log);
    const off = recordOffset(b, 5);
    b[off + 5] ^= 0x01; // the record now claims to run past the end of file
    await Deno.writeFile(log, b);
    await assert.rejects(
      open(dir, { background: "inline" }),
      (err: unknown) =>
        err instanceof CorruptionError && err.offset === off &&
        err.file === log,
    );
    assert.equal(verify(dir).errors.length, 1);
  });
});

Deno.test("a bad tail in a WAL segment older than the newest is corruption, not a torn tail", async () => {
  await withTempDir(async (dir) => {
    const log = await writeWalCrashed(dir, 8);
    const b = await Deno.readFile(log);
    const off = recordOffset(b, 7);
    await Deno.writeFile(log, b.subarray(0, b.length - 3));
    // A newer (empty) segment: the one a later rotation would have started.
    const n = parseFileName(log.slice(log.lastIndexOf("/") + 1))!.number! + 1;
    const newer = logPath(dir, n);
    await Deno.writeFile(newer, b.subarray(0, LOG_HEADER_SIZE));
    await assert.rejects(
      open(dir, { background: "inline" }),
      (err: unknown) =>
        err instanceof CorruptionError && err.offset === off &&
        /newer WAL segment/.test(err.message),
    );
    const report = verify(dir);
    assert.equal(report.errors.length, 1);
    assert.equal(report.errors[0].offset, off);
  });
});

Deno.test("verify reports a bad tail of the newest WAL of a store that was not closed cleanly as one that can be torn", async () => {
  await withTempDir(async (dir) => {
    const log = await writeWalCrashed(dir, 10);
    const b = await Deno.readFile(log);
    const off = recordOffset(b, 9);
    b[off + RECORD_HEADER_SIZE + 2] ^= 0x40;
    await Deno.writeFile(log, b);
    const report = verify(dir);
    assert.deepEqual(report.errors, []);
    assert.equal(report.tornTails.length, 1);
    assert.equal(report.tornTails[0].file, log);
    assert.equal(report.tornTails[0].offset, off);
    assert.match(report.tornTails[0].message, /can be a torn write/);
  });
});

Deno.test("verify reports every checksum-failing WAL record, not only the first", async () => {
  await withTempDir(async (dir) => {
    const log = await writeWal(dir, 12);
    const b = await Deno.readFile(log);
    const offs = [3, 8].map((i) => recordOffset(b, i));
    for (const off of offs) b[off + RECORD_HEADER_SIZE + 2] ^= 0x40;
    await Deno.writeFile(log, b);
    const report = verify(dir);
    assert.deepEqual(report.errors.map((e) => e.offset), offs);
    for (const e of report.errors) {
      assert.match(e.message, /checksum mismatch.*cannot be a torn write/);
    }
  });
});

Deno.test("a flipped byte inside an SSTable data block makes reads fail with corruption naming the file, never a wrong value", async () => {
  await withTempDir(async (dir) => {
    const n = 400;
    const db = await open(dir, { background: "inline", blockSize: 1024 });
    try {
      for (let i = 0; i < n; i++) await db.put(key(i), val(i));
      await db.flush();
    } finally {
      await db.close();
    }
    const tables: string[] = [];
    for await (const e of Deno.readDir(dir)) {
      if (e.name.endsWith(".sst")) tables.push(`${dir}/${e.name}`);
    }
    assert.equal(tables.length, 1);
    const sst = tables[0];
    const b = await Deno.readFile(sst);
    for (const at of [20, 600, 2500]) b[at] ^= 0x01; // inside early data blocks
    await Deno.writeFile(sst, b);

    const again = await open(dir, { background: "inline", blockSize: 1024 });
    try {
      let failed = 0;
      for (let i = 0; i < n; i++) {
        try {
          const got = again.get(key(i));
          assert.deepEqual(got?.value, val(i), `key ${i} read a wrong value`);
        } catch (err) {
          if (err instanceof assert.AssertionError) throw err;
          assert.ok(err instanceof ShaleError, `untyped error: ${err}`);
          assert.equal(err.code, "corruption");
          assert.ok(
            err.message.includes(sst),
            `names the file: ${err.message}`,
          );
          assert.equal((err as CorruptionError).file, sst);
          failed++;
        }
      }
      assert.ok(failed > 0, "some reads hit the damaged blocks");
      assert.ok(failed < n, "undamaged blocks still read");
      for (const reverse of [false, true]) {
        assert.throws(
          () => again.scan({ reverse }).toArray(),
          (err: unknown) => err instanceof CorruptionError && err.file === sst,
        );
      }
    } finally {
      await again.close();
    }
  });
});

Deno.test("a truncated SSTable fails with corruption naming the file", async () => {
  await withTempDir(async (dir) => {
    const db = await open(dir, { background: "inline" });
    try {
      for (let i = 0; i < 50; i++) await db.put(key(i), val(i));
      await db.flush();
    } finally {
      await db.close();
    }
    let sst = "";
    for await (const e of Deno.readDir(dir)) {
      if (e.name.endsWith(".sst")) sst = `${dir}/${e.name}`;
    }
    const b = await Deno.readFile(sst);
    await Deno.writeFile(sst, b.subarray(0, b.length - 10));
    let again;
    try {
      again = await open(dir, { background: "inline" });
      assert.throws(
        () => again!.get(key(3)),
        (err: unknown) => err instanceof CorruptionError && err.file === sst,
      );
    } catch (err) {
      assert.ok(err instanceof CorruptionError, `got ${err}`);
      assert.equal(err.file, sst);
    } finally {
      await again?.close();
    }
  });
});
