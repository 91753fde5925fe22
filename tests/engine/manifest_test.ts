import assert from "node:assert/strict";
import { ByteReader, ByteWriter } from "../../engine/coding.ts";
import { CorruptionError } from "../../engine/errors.ts";
import { realFs } from "../../engine/fs.ts";
import type { TableMeta, VersionEdit } from "../../engine/manifest.ts";
import {
  applyEdit,
  decodeEdit,
  emptyState,
  encodeEdit,
  ManifestWriter,
  NUM_LEVELS,
  readManifest,
  setCurrent,
  snapshotEdit,
} from "../../engine/manifest.ts";
import {
  frameRecord,
  LOG_HEADER_SIZE,
  logHeader,
  MANIFEST_MAGIC,
  RECORD_BATCH,
  WAL_MAGIC,
} from "../../engine/wal.ts";
import { bytes, enc, withTempDir } from "../_helpers.ts";

function table(fileNumber: number, level = 0, extra: Partial<TableMeta> = {}) {
  return {
    fileNumber,
    level,
    size: 1000 + fileNumber,
    entries: 10 * fileNumber,
    minSeq: fileNumber,
    maxSeq: fileNumber + 100,
    smallest: bytes(0x00, fileNumber),
    largest: bytes(0xff, fileNumber),
    ...extra,
  } satisfies TableMeta;
}

Deno.test("an empty edit encodes to no bytes and decodes to an empty edit", () => {
  assert.equal(encodeEdit({}).length, 0);
  assert.deepEqual(decodeEdit(new Uint8Array(0), "m", 8), {});
});

Deno.test("a full edit round trips every field", () => {
  const edit: VersionEdit = {
    logNumber: 12,
    nextFileNumber: 2 ** 40,
    lastSeq: Number.MAX_SAFE_INTEGER,
    added: [table(3), table(9, 6, { smallest: bytes(), largest: bytes() })],
    deleted: [{ level: 0, fileNumber: 1 }, { level: 6, fileNumber: 2 }],
    compactPointers: [{ level: 1, key: bytes(0x00, 0xff) }],
  };
  assert.deepEqual(decodeEdit(encodeEdit(edit), "m", 8), edit);
});

Deno.test("an edit with an unknown tag is corruption naming file and offset", () => {
  const b = encodeEdit({ logNumber: 1 });
  const bad = new Uint8Array([...b, 99]);
  assert.throws(() => decodeEdit(bad, "/d/MANIFEST-000002", 40), (err) => {
    assert.ok(err instanceof CorruptionError);
    assert.equal(err.file, "/d/MANIFEST-000002");
    assert.equal(err.offset, 40);
    assert.match(err.message, /unknown edit tag 99/);
    return true;
  });
});

Deno.test("an edit naming a level beyond L6 is corruption", () => {
  const b = encodeEdit({ deleted: [{ level: 1, fileNumber: 5 }] });
  b[1] = NUM_LEVELS;
  assert.throws(() => decodeEdit(b, "m", 8), /level 7 out of range/);
});

Deno.test("a truncated edit is corruption, never a partial edit", () => {
  const b = encodeEdit({ added: [table(4)] });
  for (let cut = 1; cut < b.length; cut++) {
    assert.throws(
      () => decodeEdit(b.subarray(0, cut), "m", 8),
      CorruptionError,
      `cut ${cut}`,
    );
  }
});

Deno.test("applying edits adds, deletes and moves tables and keeps the highest lastSeq", () => {
  const s = emptyState();
  applyEdit(s, { added: [table(1), table(2), table(3, 1)], lastSeq: 50 });
  applyEdit(s, { deleted: [{ level: 0, fileNumber: 1 }], lastSeq: 40 });
  applyEdit(s, {
    deleted: [{ level: 0, fileNumber: 2 }],
    added: [table(2, 1)],
    logNumber: 7,
    nextFileNumber: 9,
  });
  assert.deepEqual([...s.levels[0].keys()], []);
  assert.deepEqual([...s.levels[1].keys()].sort(), [2, 3]);
  assert.equal(s.lastSeq, 50, "lastSeq never goes backwards");
  assert.equal(s.logNumber, 7);
  assert.equal(s.nextFileNumber, 9);
});

Deno.test("a snapshot edit recreates the state from nothing", () => {
  const s = emptyState();
  applyEdit(s, {
    added: [table(1), table(5, 3)],
    logNumber: 4,
    nextFileNumber: 6,
    lastSeq: 77,
    compactPointers: [{ level: 3, key: enc("m") }],
  });
  const t = emptyState();
  applyEdit(t, decodeEdit(encodeEdit(snapshotEdit(s)), "m", 8));
  assert.deepEqual(t, s);
});

Deno.test("a new directory has no manifest", async () => {
  await withTempDir((dir) => {
    assert.equal(readManifest(realFs, dir), undefined);
  });
});

Deno.test("a manifest written through ManifestWriter replays to the same state", async () => {
  await withTempDir(async (dir) => {
    const s = emptyState();
    applyEdit(s, { lastSeq: 5, nextFileNumber: 3 });
    const w = await ManifestWriter.create(realFs, dir, 2, s);
    const edits: VersionEdit[] = [
      { added: [table(3)], nextFileNumber: 4, lastSeq: 10 },
      { added: [table(4)], logNumber: 4, lastSeq: 20 },
      { deleted: [{ level: 0, fileNumber: 3 }], added: [table(3, 1)] },
    ];
    for (const e of edits) {
      await w.append(e);
      applyEdit(s, e);
    }
    w.close();
    const got = readManifest(realFs, dir);
    assert.equal(got?.manifestFile, "MANIFEST-000002");
    assert.deepEqual(got?.state, s);
    assert.equal(
      new TextDecoder().decode(await Deno.readFile(`${dir}/CURRENT`)),
      "MANIFEST-000002\n",
    );
  });
});

Deno.test("switching CURRENT to a new manifest makes it the one replayed", async () => {
  await withTempDir(async (dir) => {
    const s = emptyState();
    const a = await ManifestWriter.create(realFs, dir, 2, s);
    await a.append({ added: [table(7)] });
    a.close();
    applyEdit(s, { added: [table(7)], lastSeq: 99 });
    const b = await ManifestWriter.create(realFs, dir, 8, s);
    b.close();
    const got = readManifest(realFs, dir)!;
    assert.equal(got.manifestFile, "MANIFEST-000008");
    assert.equal(got.state.lastSeq, 99);
    assert.deepEqual([...got.state.levels[0].keys()], [7]);
    assert.ok(!(await exists(`${dir}/CURRENT.tmp`)), "no temp file is left");
  });
});

Deno.test("a torn manifest tail is ignored: the last complete edit wins", async () => {
  await withTempDir(async (dir) => {
    const w = await ManifestWriter.create(realFs, dir, 2, emptyState());
    await w.append({ added: [table(3)], lastSeq: 10 });
    const before = w.size;
    await w.append({ added: [table(4)], lastSeq: 20 });
    w.close();
    const path = `${dir}/MANIFEST-000002`;
    const full = await Deno.readFile(path);
    for (const cut of [before + 1, before + 9, full.length - 1]) {
      await Deno.writeFile(path, full.subarray(0, cut));
      const got = readManifest(realFs, dir)!;
      assert.equal(got.state.lastSeq, 10, `cut at ${cut}`);
      assert.deepEqual([...got.state.levels[0].keys()], [3]);
    }
  });
});

Deno.test("a corrupt edit in the middle of the manifest fails naming the file", async () => {
  await withTempDir(async (dir) => {
    const w = await ManifestWriter.create(realFs, dir, 2, emptyState());
    const off = w.size;
    await w.append({ added: [table(3)] });
    await w.append({ added: [table(4)] });
    w.close();
    const path = `${dir}/MANIFEST-000002`;
    const b = await Deno.readFile(path);
    b[off + 12] ^= 0x40;
    await Deno.writeFile(path, b);
    assert.throws(() => readManifest(realFs, dir), (err) => {
      assert.ok(err instanceof CorruptionError);
      assert.equal(err.file, path);
      assert.equal(err.offset, off);
      return true;
    });
  });
});

Deno.test("a manifest with no complete edit is corruption", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/MANIFEST-000002`, logHeader(MANIFEST_MAGIC));
    await setCurrent(realFs, dir, "MANIFEST-000002");
    assert.throws(() => readManifest(realFs, dir), /no complete edit/);
  });
});

Deno.test("a CURRENT that does not name a manifest is corruption naming CURRENT", async () => {
  await withTempDir(async (dir) => {
    for (const text of ["", "MANIFEST-000002", "garbage\n", "MANIFEST-12\n"]) {
      await Deno.writeTextFile(`${dir}/CURRENT`, text);
      assert.throws(() => readManifest(realFs, dir), (err) => {
        assert.ok(err instanceof CorruptionError, `CURRENT ${text}`);
        assert.equal(err.file, `${dir}/CURRENT`);
        return true;
      });
    }
  });
});

Deno.test("a CURRENT naming a missing manifest is corruption that says so", async () => {
  await withTempDir(async (dir) => {
    await setCurrent(realFs, dir, "MANIFEST-000009");
    assert.throws(() => readManifest(realFs, dir), /does not exist/);
  });
});

Deno.test("a WAL named as the manifest is rejected by its magic number", async () => {
  await withTempDir(async (dir) => {
    const w = new ByteWriter();
    w.bytes(logHeader(WAL_MAGIC));
    frameRecord(w, RECORD_BATCH, bytes(1, 2, 3));
    await Deno.writeFile(`${dir}/MANIFEST-000003`, w.finish());
    await setCurrent(realFs, dir, "MANIFEST-000003");
    assert.throws(() => readManifest(realFs, dir), /wrong magic/);
  });
});

Deno.test("a manifest record of the wrong type is corruption at its offset", async () => {
  await withTempDir(async (dir) => {
    const w = new ByteWriter();
    w.bytes(logHeader(MANIFEST_MAGIC));
    frameRecord(w, RECORD_BATCH, encodeEdit({ lastSeq: 1 }));
    await Deno.writeFile(`${dir}/MANIFEST-000003`, w.finish());
    await setCurrent(realFs, dir, "MANIFEST-000003");
    assert.throws(() => readManifest(realFs, dir), (err) => {
      assert.ok(err instanceof CorruptionError);
      assert.equal(err.offset, LOG_HEADER_SIZE);
      assert.match(err.message, /unknown manifest record type/);
      return true;
    });
  });
});

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("a bug while decoding an edit surfaces as itself, never as corruption", () => {
  const b = encodeEdit({ compactPointers: [{ level: 1, key: enc("k") }] });
  // Stand-in for a genuine bug: a RangeError that is no decode failure.
  const original = ByteReader.prototype.lengthPrefixed;
  ByteReader.prototype.lengthPrefixed = () => {
    throw new RangeError("Invalid typed array length: -1");
  };
  try {
    assert.throws(
      () => decodeEdit(b, "/d/MANIFEST-000002", 40),
      (err) =>
        err instanceof RangeError && !(err instanceof CorruptionError) &&
        /Invalid typed array length/.test(err.message),
    );
  } finally {
    ByteReader.prototype.lengthPrefixed = original;
  }
});
