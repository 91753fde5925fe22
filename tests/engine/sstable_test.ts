import assert from "node:assert/strict";
import { compareBytes, equalBytes } from "../../engine/coding.ts";
import { BlockCache } from "../../engine/cache.ts";
import { crc32 as crc32Of } from "../../engine/crc.ts";
import {
  compareEntries,
  ENCODING_RAW,
  ENCODING_U64LE,
  ENCODING_V8,
  type Entry,
  type EntryIterator,
  KIND_DELETE,
  KIND_PUT,
  MAX_SEQ,
} from "../../engine/entry.ts";
import {
  CorruptionError,
  FormatVersionError,
  InvalidArgumentError,
} from "../../engine/errors.ts";
import { realFs } from "../../engine/fs.ts";
import { FaultyFileSystem } from "../../engine/testing/faulty_fs.ts";
import {
  BLOCK_TRAILER_SIZE,
  FOOTER_CRC_OFFSET,
  FOOTER_MAGIC_OFFSET,
  FOOTER_SIZE,
  FOOTER_VERSION_OFFSET,
  TABLE_FORMAT_VERSION,
  TABLE_MAGIC,
} from "../../engine/sstable/format.ts";
import { tablePath } from "../../engine/filename.ts";
import {
  type TableProps,
  TableWriter,
  type TableWriterOptions,
} from "../../engine/sstable/writer.ts";
import {
  newTableStats,
  TableReader,
  type TableStats,
} from "../../engine/sstable/reader.ts";
import { mmapAvailable } from "../../engine/mmap.ts";
import { DEFAULT_COMPRESSION } from "../../engine/options.ts";
import type { Compression } from "../../engine/sstable/codec.ts";
import { prng } from "../_helpers.ts";

/**
 * Data blocks come through a memory map unless SHALE_READ_MODE=pread (make
 * test runs the engine suite once per mode) or FFI is not permitted.
 */
const MAP = Deno.env.get("SHALE_READ_MODE") !== "pread" && mmapAvailable();

/** Tables are written with the store's default codec unless SHALE_COMPRESSION says otherwise (make test runs both). */
const COMPRESSION = (Deno.env.get("SHALE_COMPRESSION") ??
  DEFAULT_COMPRESSION) as Compression;

const enc = new TextEncoder();
const hex = (b: Uint8Array) =>
  b.length > 64
    ? `<${b.length} bytes>`
    : Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

function randomBytes(rng: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rng() * 256);
  return b;
}

function entry(
  key: Uint8Array | string,
  seq: number,
  value: Uint8Array | string = "",
  extra: Partial<Entry> = {},
): Entry {
  return {
    key: typeof key === "string" ? enc.encode(key) : key,
    seq,
    kind: KIND_PUT,
    encoding: ENCODING_RAW,
    expiresAt: 0,
    value: typeof value === "string" ? enc.encode(value) : value,
    ...extra,
  };
}

/**
 * A sorted model: distinct keys (with 0x00/0xFF edges and the empty key),
 * 1-3 versions each, tombstones, expiry, every encoding, empty values.
 */
function genEntries(rng: () => number, nKeys: number): Entry[] {
  const keys = new Map<string, Uint8Array>();
  const add = (k: Uint8Array) => keys.set(hex(k), k);
  add(new Uint8Array(0));
  add(new Uint8Array([0x00]));
  add(new Uint8Array([0x00, 0x00]));
  add(new Uint8Array([0xff]));
  add(new Uint8Array([0xff, 0xff, 0xff]));
  while (keys.size < nKeys) {
    // Shared prefixes so prefix compression has work to do.
    const prefix = enc.encode(`k${Math.floor(rng() * 20)}/`);
    const tail = randomBytes(rng, Math.floor(rng() * 12));
    const k = new Uint8Array(prefix.length + tail.length);
    k.set(prefix);
    k.set(tail, prefix.length);
    add(k);
  }
  const sorted = [...keys.values()].sort(compareBytes);
  const out: Entry[] = [];
  const encodings = [ENCODING_RAW, ENCODING_V8, ENCODING_U64LE];
  for (const key of sorted) {
    const versions = 1 + Math.floor(rng() * 3);
    const seqs = new Set<number>();
    while (seqs.size < versions) seqs.add(1 + Math.floor(rng() * 1000));
    for (const seq of [...seqs].sort((a, b) => b - a)) {
      const del = rng() < 0.2;
      out.push({
        key,
        seq,
        kind: del ? KIND_DELETE : KIND_PUT,
        encoding: del ? ENCODING_RAW : encodings[Math.floor(rng() * 3)],
        expiresAt: !del && rng() < 0.2
          ? 1_700_000_000_000 + Math.floor(rng() * 1e9)
          : 0,
        value: del || rng() < 0.1
          ? new Uint8Array(0)
          : rng() < 0.5
          ? randomBytes(rng, Math.floor(rng() * 100))
          // Text that zstd shrinks, so that compressed blocks are read too.
          : enc.encode(
            `{"n":${Math.floor(rng() * 100)},"s":"${"ab".repeat(20)}"}`,
          ),
      });
    }
  }
  return out;
}

function describe(e: Entry | undefined): string {
  if (e === undefined) return "undefined";
  return `{key ${
    hex(e.key)
  } seq ${e.seq} kind ${e.kind} enc ${e.encoding} exp ${e.expiresAt} value ${
    hex(e.value)
  }}`;
}

function assertSameEntry(
  got: Entry | undefined,
  want: Entry | undefined,
  msg: string,
): void {
  const same = got === want || (got !== undefined && want !== undefined &&
    equalBytes(got.key, want.key) && got.seq === want.seq &&
    got.kind === want.kind && got.encoding === want.encoding &&
    got.expiresAt === want.expiresAt && equalBytes(got.value, want.value));
  if (!same) {
    assert.fail(`${msg}: got ${describe(got)}, want ${describe(want)}`);
  }
}

/** First index with model[i] >= (key, seq) in internal order. */
function lowerBound(model: Entry[], key: Uint8Array, seq: number): number {
  let lo = 0;
  let hi = model.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareEntries(model[mid].key, model[mid].seq, key, seq) < 0) {
      lo = mid + 1;
    } else hi = mid;
  }
  return lo;
}

function modelGet(model: Entry[], key: Uint8Array, snap: number) {
  const e = model[lowerBound(model, key, snap)];
  return e && equalBytes(e.key, key) ? e : undefined;
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "shale-sst-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function writeTable(
  dir: string,
  fileNumber: number,
  entries: Entry[],
  opts: TableWriterOptions = {},
): Promise<TableProps> {
  const w = TableWriter.create(realFs, dir, fileNumber, {
    compression: COMPRESSION,
    ...opts,
  });
  for (const e of entries) w.add(e);
  return await w.finish();
}

function openTable(
  dir: string,
  fileNumber: number,
  cache = new BlockCache(1 << 20),
  stats?: TableStats,
  map = MAP,
): TableReader {
  return TableReader.open(
    realFs,
    tablePath(dir, fileNumber),
    fileNumber,
    cache,
    { stats, map },
  );
}

function collect(it: EntryIterator, backward = false): Entry[] {
  const out: Entry[] = [];
  if (backward) {
    for (it.seekToLast(); it.valid(); it.prev()) out.push({ ...it.entry() });
  } else {
    for (it.seekToFirst(); it.valid(); it.next()) out.push({ ...it.entry() });
  }
  return out;
}

function checkAgainstModel(
  t: TableReader,
  model: Entry[],
  rng: () => number,
  seed: number,
): void {
  const fwd = collect(t.iterator());
  assert.equal(fwd.length, model.length, `seed ${seed}: forward count`);
  fwd.forEach((e, i) => assertSameEntry(e, model[i], `seed ${seed} fwd ${i}`));
  const back = collect(t.iterator(), true);
  assert.equal(back.length, model.length, `seed ${seed}: backward count`);
  back.forEach((e, i) =>
    assertSameEntry(e, model[model.length - 1 - i], `seed ${seed} back ${i}`)
  );

  const it = t.iterator();
  for (let q = 0; q < 300; q++) {
    // Half the probes hit existing keys (often at a snapshot equal to or
    // just below one of their seqnos), half are random byte strings.
    const pick = model[Math.floor(rng() * model.length)];
    const key = rng() < 0.5
      ? pick.key
      : randomBytes(rng, Math.floor(rng() * 6));
    const r = rng();
    const snap = r < 0.2
      ? MAX_SEQ
      : r < 0.4
      ? pick.seq
      : r < 0.5
      ? pick.seq - 1
      : Math.floor(rng() * 1100);
    const what = `seed ${seed} probe ${q} key ${hex(key)} snap ${snap}`;
    assertSameEntry(
      t.get(key, snap),
      modelGet(model, key, snap),
      "get " + what,
    );

    const i = lowerBound(model, key, snap);
    it.seek(key, snap);
    assertSameEntry(
      it.valid() ? it.entry() : undefined,
      model[i],
      "seek " + what,
    );
    if (it.valid()) {
      it.next();
      assertSameEntry(
        it.valid() ? it.entry() : undefined,
        model[i + 1],
        "seek+next " + what,
      );
      // Moving is only defined while valid, so step back only if next()
      // did not run off the end.
      if (it.valid()) {
        it.prev();
        it.prev();
        assertSameEntry(
          it.valid() ? it.entry() : undefined,
          model[i - 1],
          "seek+next+prev+prev " + what,
        );
      }
    }
    const b = lowerBound(model, key, MAX_SEQ) - 1;
    it.seekBefore(key);
    assertSameEntry(
      it.valid() ? it.entry() : undefined,
      model[b],
      "seekBefore " + what,
    );
  }
}

Deno.test("sstable round trip matches a sorted model (many small blocks)", async () => {
  const seed = 20240601;
  const rng = prng(seed);
  const model = genEntries(rng, 2000);
  await withDir(async (dir) => {
    const props = await writeTable(dir, 7, model, { blockSize: 512 });
    assert.equal(props.entries, model.length);
    assert.equal(
      props.deletions,
      model.filter((e) => e.kind === KIND_DELETE).length,
    );
    assert.deepEqual(props.smallestKey, new Uint8Array(0));
    assert.deepEqual(props.largestKey, new Uint8Array([0xff, 0xff, 0xff]));
    assert.equal(props.minSeq, Math.min(...model.map((e) => e.seq)));
    assert.equal(props.maxSeq, Math.max(...model.map((e) => e.seq)));
    assert.ok(props.dataBlocks > 50, `${props.dataBlocks} blocks`);
    assert.equal(props.fileSize, (await Deno.stat(`${dir}/000007.sst`)).size);
    assert.deepEqual(await readNames(dir), ["000007.sst"]);

    const t = openTable(dir, 7);
    try {
      assert.deepEqual(t.props, props);
      checkAgainstModel(t, model, rng, seed);
    } finally {
      t.close();
    }
  });
});

Deno.test("sstable forward iterator walks and seeks like the model, refuses to go back, and names a damaged block", async () => {
  const seed = 20261201;
  const rng = prng(seed);
  const model = genEntries(rng, 1500);
  await withDir(async (dir) => {
    await writeTable(dir, 8, model, { blockSize: 512 });
    const t = openTable(dir, 8, new BlockCache(0));
    try {
      // The cursor rewrites its entry on every step: copy what is kept.
      const got: Entry[] = [];
      const it = t.forwardIterator();
      for (it.seekToFirst(); it.valid(); it.next()) {
        const e = it.entry();
        got.push({ ...e, key: e.key.slice(), value: e.value.slice() });
      }
      assert.equal(got.length, model.length);
      got.forEach((e, i) => assertSameEntry(e, model[i], `fwd ${i}`));
      for (let q = 0; q < 200; q++) {
        const pick = model[Math.floor(rng() * model.length)];
        const key = rng() < 0.5
          ? pick.key
          : randomBytes(rng, Math.floor(rng() * 6));
        const snap = rng() < 0.3 ? MAX_SEQ : Math.floor(rng() * 1100);
        const i = lowerBound(model, key, snap);
        it.seek(key, snap);
        const what = `seek ${hex(key)}@${snap}`;
        assertSameEntry(it.valid() ? it.entry() : undefined, model[i], what);
        it.next();
        assertSameEntry(
          it.valid() ? it.entry() : undefined,
          model[i + 1],
          `${what} + next`,
        );
      }
      assert.throws(() => it.prev(), /forward only/);
      assert.throws(() => it.seekToLast(), /forward only/);
      assert.throws(() => it.seekBefore(model[0].key), /forward only/);
    } finally {
      t.close();
    }
    // A block that passes its CRC but does not decode is corruption, named
    // with the block's offset: rewrite the second block's restart count and
    // its CRC, in a table of raw blocks.
    await writeTable(dir, 9, model, { blockSize: 512, compression: "none" });
    const src = tablePath(dir, 9);
    const dst = `${dir}/bad.sst`;
    const raw = await Deno.readFile(src);
    const dv = new DataView(raw.buffer);
    // The first block starts at 0; its trailer is where the CRC matches.
    let secondStart = -1;
    for (let end = 8; end < raw.length - BLOCK_TRAILER_SIZE; end++) {
      if (crc32Of(raw.subarray(0, end + 1)) === dv.getUint32(end + 1, true)) {
        secondStart = end + BLOCK_TRAILER_SIZE;
        break;
      }
    }
    assert.ok(secondStart > 0, "found the first block's trailer");
    let size = -1;
    for (let end = secondStart + 8; end < raw.length; end++) {
      if (
        crc32Of(raw.subarray(secondStart, end + 1)) ===
          dv.getUint32(end + 1, true)
      ) {
        size = end - secondStart;
        break;
      }
    }
    assert.ok(size > 0, "found the second block's trailer");
    dv.setUint32(secondStart + size - 4, 100000, true);
    dv.setUint32(
      secondStart + size + 1,
      crc32Of(raw.subarray(secondStart, secondStart + size + 1)),
      true,
    );
    await Deno.writeFile(dst, raw);
    const bad = TableReader.open(realFs, dst, 9, new BlockCache(0), {
      map: MAP,
    });
    try {
      const b = bad.forwardIterator();
      assert.throws(
        () => {
          for (b.seekToFirst(); b.valid(); b.next()) { /* walk */ }
        },
        (err: unknown) =>
          err instanceof CorruptionError && err.offset === secondStart &&
          /data block malformed: bad restart count/.test(err.message),
      );
    } finally {
      bad.close();
    }
  });
});

Deno.test("sstable round trip with default options and no cache", async () => {
  const seed = 77;
  const rng = prng(seed);
  const model = genEntries(rng, 3000);
  await withDir(async (dir) => {
    await writeTable(dir, 1, model);
    const t = openTable(dir, 1, new BlockCache(0));
    try {
      checkAgainstModel(t, model, rng, seed);
    } finally {
      t.close();
    }
  });
});

Deno.test("sstable without a bloom filter still answers every get", async () => {
  const seed = 5;
  const rng = prng(seed);
  const model = genEntries(rng, 300);
  await withDir(async (dir) => {
    await writeTable(dir, 2, model, { bloomBitsPerKey: 0, blockSize: 256 });
    const stats = newTableStats();
    const t = openTable(dir, 2, undefined, stats);
    try {
      assert.equal(t.mayContain(enc.encode("absent")), true);
      checkAgainstModel(t, model, rng, seed);
      assert.equal(stats.bloomChecks, 0);
    } finally {
      t.close();
    }
  });
});

Deno.test("sstable get and seek handle keys that are prefixes of one another", async () => {
  // Every key of length 0..4 over {00, 61, ff}, two versions each; probes
  // cover every key of length 0..5, so each scan step of the block search
  // meets shorter, longer and equal-prefix neighbours.
  const alphabet = [0x00, 0x61, 0xff];
  const all = (maxLen: number): Uint8Array[] => {
    const out: Uint8Array[] = [new Uint8Array(0)];
    let layer = [new Uint8Array(0)];
    for (let len = 1; len <= maxLen; len++) {
      layer = layer.flatMap((k) =>
        alphabet.map((a) => {
          const n = new Uint8Array(len);
          n.set(k);
          n[len - 1] = a;
          return n;
        })
      );
      out.push(...layer);
    }
    return out.sort(compareBytes);
  };
  const model: Entry[] = [];
  all(4).forEach((k, i) => {
    model.push(entry(k, 2 * i + 2, `new${i}`));
    model.push(entry(k, 2 * i + 1, "", { kind: KIND_DELETE }));
  });
  const probes = all(5);
  for (const blockSize of [64, 1 << 16]) {
    await withDir(async (dir) => {
      await writeTable(dir, 15, model, { blockSize });
      const t = openTable(dir, 15);
      try {
        const it = t.iterator();
        for (const key of probes) {
          for (const snap of [0, 1, 50, 51, 52, MAX_SEQ]) {
            const what = `blockSize ${blockSize} key ${hex(key)} snap ${snap}`;
            assertSameEntry(t.get(key, snap), modelGet(model, key, snap), what);
            it.seek(key, snap);
            assertSameEntry(
              it.valid() ? it.entry() : undefined,
              model[lowerBound(model, key, snap)],
              "seek " + what,
            );
          }
        }
      } finally {
        t.close();
      }
    });
  }
});

Deno.test("sstable get sees the newest version at or below each snapshot, tombstones included", async () => {
  const model = [
    entry("a", 9, "a9"),
    entry("b", 30, "", { kind: KIND_DELETE }),
    entry("b", 20, "b20", { expiresAt: 123456789 }),
    entry("b", 10, "b10", { encoding: ENCODING_V8 }),
    entry("c", MAX_SEQ - 1, "big seq"),
  ];
  await withDir(async (dir) => {
    await writeTable(dir, 3, model);
    const t = openTable(dir, 3);
    try {
      const b = enc.encode("b");
      assert.equal(t.get(b, 9), undefined);
      assertSameEntry(t.get(b, 10), model[3], "snap 10");
      assertSameEntry(t.get(b, 19), model[3], "snap 19");
      assertSameEntry(t.get(b, 20), model[2], "snap 20");
      assertSameEntry(t.get(b, 29), model[2], "snap 29");
      assertSameEntry(t.get(b, 30), model[1], "snap 30");
      assertSameEntry(t.get(b, MAX_SEQ), model[1], "snap max");
      assertSameEntry(t.get(enc.encode("c"), MAX_SEQ), model[4], "c");
      assert.equal(t.get(enc.encode("c"), 1000), undefined);
      assert.equal(t.get(enc.encode("bb"), MAX_SEQ), undefined);
      assert.equal(t.get(enc.encode("0"), MAX_SEQ), undefined);
      assert.equal(t.get(enc.encode("d"), MAX_SEQ), undefined);
      assert.equal(t.props.dataBlocks, 1, "exactly one block");
    } finally {
      t.close();
    }
  });
});

Deno.test("sstable with exactly one entry and one block", async () => {
  await withDir(async (dir) => {
    const e = entry("only", 1, "v");
    const props = await writeTable(dir, 4, [e]);
    assert.equal(props.dataBlocks, 1);
    const t = openTable(dir, 4);
    try {
      assertSameEntry(t.get(e.key, 1), e, "get");
      const it = t.iterator();
      it.seekBefore(e.key);
      assert.equal(it.valid(), false);
      it.seekBefore(enc.encode("z"));
      assertSameEntry(it.entry(), e, "seekBefore z");
      it.next();
      assert.equal(it.valid(), false);
      it.seek(enc.encode("z"));
      assert.equal(it.valid(), false);
      it.seek(enc.encode("a"));
      assertSameEntry(it.entry(), e, "seek a");
      it.prev();
      assert.equal(it.valid(), false);
    } finally {
      t.close();
    }
  });
});

Deno.test("sstable stores a 4096-byte key and a 16 MiB value", async () => {
  const seed = 99;
  const rng = prng(seed);
  const bigKey = randomBytes(rng, 4096);
  bigKey[0] = 0x10;
  const bigValue = randomBytes(rng, 1024);
  const huge = new Uint8Array(16 << 20);
  for (let i = 0; i < huge.length; i += 1024) huge.set(bigValue, i);
  huge[huge.length - 1] = 0x5a;
  const model = [
    entry(new Uint8Array([0x01]), 1, "small"),
    entry(bigKey, 5, "v5"),
    entry(bigKey, 4, huge),
    entry(new Uint8Array([0x20]), 2, "after"),
  ];
  await withDir(async (dir) => {
    await writeTable(dir, 5, model);
    const t = openTable(dir, 5, new BlockCache(64 << 20));
    try {
      assertSameEntry(t.get(bigKey, 4), model[2], "huge value");
      assertSameEntry(t.get(bigKey, 10), model[1], "big key newest");
      const all = collect(t.iterator());
      assert.equal(all.length, 4);
      all.forEach((e, i) => assertSameEntry(e, model[i], `iter ${i}`));
    } finally {
      t.close();
    }
  });
});

Deno.test("sstable writer refuses an empty table and leaves no file behind", async () => {
  await withDir(async (dir) => {
    const w = TableWriter.create(realFs, dir, 6);
    assert.equal(w.entries, 0);
    await assert.rejects(() => w.finish(), InvalidArgumentError);
    assert.deepEqual(await readNames(dir), []);
  });
});

Deno.test("sstable writer addAt takes offsets, writes what add writes and checks order across blocks", async () => {
  await withDir(async (dir) => {
    // Keys and values at offsets in one buffer, as a flush passes them.
    const src = enc.encode("xxk01v-one_k02v-two_k03v-three");
    const a = TableWriter.create(realFs, dir, 10, { blockSize: 16 });
    const b = TableWriter.create(realFs, dir, 11, { blockSize: 16 });
    try {
      a.addAt(src, 2, 3, 9, KIND_PUT, 0, 0, src, 5, 5);
      a.addAt(src, 11, 3, 8, KIND_PUT, 0, 0, src, 14, 5);
      // Blocks of 16 bytes hold one entry: the check spans the boundary.
      assert.throws(
        () => a.addAt(src, 2, 3, 7, KIND_PUT, 0, 0, src, 5, 5),
        InvalidArgumentError,
      );
      assert.throws(
        () => a.addAt(src, 11, 3, 8, KIND_PUT, 0, 0, src, 14, 5),
        InvalidArgumentError,
      );
      a.addAt(src, 20, 3, 1, KIND_PUT, 0, 0, src, 23, 7);
      b.add(entry("k01", 9, "v-one"));
      b.add(entry("k02", 8, "v-two"));
      b.add(entry("k03", 1, "v-three"));
      const pa = await a.finish();
      const pb = await b.finish();
      assert.equal(pa.entries, 3);
      assert.deepEqual(pa.smallestKey, pb.smallestKey);
      assert.deepEqual(
        realFs.readFile(tablePath(dir, 10)),
        realFs.readFile(tablePath(dir, 11)),
      );
    } finally {
      a.abandon();
      b.abandon();
    }
  });
});

Deno.test("sstable writer rejects entries out of internal order", async () => {
  await withDir(async (dir) => {
    const w = TableWriter.create(realFs, dir, 8);
    try {
      w.add(entry("b", 5));
      assert.throws(() => w.add(entry("a", 9)), InvalidArgumentError);
      assert.throws(() => w.add(entry("b", 5)), InvalidArgumentError);
      assert.throws(() => w.add(entry("b", 6)), InvalidArgumentError);
      w.add(entry("b", 4));
      w.add(entry("c", 9));
    } finally {
      w.abandon();
    }
    assert.deepEqual(await readNames(dir), []);
  });
});

Deno.test("sstable writer removes its temp file when fsync fails", async () => {
  await withDir(async (dir) => {
    const fs = new FaultyFileSystem();
    fs.failWhen = (op) => op === "sync" ? new Error("injected EIO") : undefined;
    const w = TableWriter.create(fs, dir, 9);
    w.add(entry("a", 1, "x"));
    assert.ok(fs.exists(`${dir}/000009.sst.tmp`));
    await assert.rejects(() => w.finish(), /injected EIO/);
    assert.deepEqual(await readNames(dir), []);
  });
});

Deno.test("sstable reads hit the block cache and count bloom results", async () => {
  const model: Entry[] = [];
  for (let i = 0; i < 1000; i++) {
    model.push(entry(`key${String(i).padStart(5, "0")}`, i + 1, `v${i}`));
  }
  await withDir(async (dir) => {
    await writeTable(dir, 10, model);
    const cache = new BlockCache(1 << 20);
    const stats = newTableStats();
    // The block cache serves positional reads only.
    const t = openTable(dir, 10, cache, stats, false);
    try {
      for (const e of model) assertSameEntry(t.get(e.key, MAX_SEQ), e, "get");
      assert.equal(stats.blockReads, t.blockCount);
      for (const e of model) t.get(e.key, MAX_SEQ);
      assert.equal(stats.blockReads, t.blockCount, "second pass all cached");
      assert.equal(cache.hits, 2 * model.length - t.blockCount);
      assert.equal(stats.bloomChecks, 2000);
      for (let i = 0; i < 1000; i++) t.get(enc.encode(`nokey${i}`), MAX_SEQ);
      assert.ok(stats.bloomNegatives > 950, `${stats.bloomNegatives}`);
      assert.equal(stats.bloomNegatives + stats.bloomFalsePositives, 1000);
    } finally {
      t.close();
    }
    assert.throws(() => t.get(model[0].key, MAX_SEQ), /closed/);
  });
});

// ---------------------------------------------------------------------------
// Corruption: a damaged table must fail loudly, never return wrong data.

async function readNames(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

async function corruptCopy(
  src: string,
  dst: string,
  mutate: (b: Uint8Array) => Uint8Array,
): Promise<void> {
  await Deno.writeFile(dst, mutate(await Deno.readFile(src)));
}

/**
 * Opens the table and reads everything (iteration and a get per key); returns
 * the CorruptionError thrown, or fails if none was.
 */
function expectCorruption(
  path: string,
  fileNumber: number,
  model: Entry[],
  what: string,
): CorruptionError {
  let t: TableReader | undefined;
  try {
    t = TableReader.open(realFs, path, fileNumber, new BlockCache(0), {
      map: MAP,
    });
    const all = collect(t.iterator());
    all.forEach((e, i) => assertSameEntry(e, model[i], `${what} entry ${i}`));
    for (const e of model) assertSameEntry(t.get(e.key, e.seq), e, what);
  } catch (err) {
    if (err instanceof CorruptionError) {
      assert.ok(err.message.includes(path), err.message);
      assert.equal(err.file, path);
      return err;
    }
    throw err;
  } finally {
    t?.close();
  }
  return assert.fail(`${what}: no CorruptionError`);
}

Deno.test("sstable detects every single flipped byte in a small table", async () => {
  const seed = 31337;
  const rng = prng(seed);
  // Short values keep the file (and so the number of flips) small.
  const model = genEntries(rng, 12).map((e) => ({
    ...e,
    value: e.value.subarray(0, 6),
  }));
  await withDir(async (dir) => {
    const props = await writeTable(dir, 11, model, { blockSize: 64 });
    assert.ok(props.dataBlocks > 3, `${props.dataBlocks} blocks`);
    const src = tablePath(dir, 11);
    const bytes = await Deno.readFile(src);
    const dst = `${dir}/flip.sst`;
    for (let pos = 0; pos < bytes.length; pos++) {
      const b = bytes.slice();
      b[pos] ^= 1 << (pos % 8);
      Deno.writeFileSync(dst, b);
      expectCorruption(dst, 11, model, `seed ${seed} flip at ${pos}`);
    }
  });
});

Deno.test("sstable names the failing part for flips in data, index, filter and footer", async () => {
  const seed = 4;
  const rng = prng(seed);
  const model = genEntries(rng, 500);
  await withDir(async (dir) => {
    await writeTable(dir, 12, model, { blockSize: 1024 });
    const src = tablePath(dir, 12);
    const size = (await Deno.stat(src)).size;
    const t = openTable(dir, 12);
    // Handles of the meta blocks, read back from the footer via the format.
    const footer = (await Deno.readFile(src)).subarray(size - FOOTER_SIZE);
    t.close();
    const dv = new DataView(footer.buffer, footer.byteOffset);
    const handle = (o: number) => ({
      offset: dv.getUint32(o, true),
      size: dv.getUint32(o + 8, true),
    });
    const index = handle(0);
    const filter = handle(16);
    const props = handle(32);
    const dst = `${dir}/bad.sst`;
    const flipAt = (pos: number) => (b: Uint8Array) => {
      b[pos] ^= 0x40;
      return b;
    };
    const cases: [string, number, RegExp][] = [
      ["data", 100, /data block checksum mismatch/],
      ["data trailer crc", filter.offset - 1, /data block checksum mismatch/],
      ["index", index.offset + 3, /index block checksum mismatch/],
      ["filter", filter.offset + 10, /filter block checksum mismatch/],
      ["properties", props.offset + 1, /properties block checksum mismatch/],
      ["footer handle", size - FOOTER_SIZE + 1, /footer checksum mismatch/],
      [
        "footer crc",
        size - FOOTER_SIZE + FOOTER_CRC_OFFSET,
        /footer checksum mismatch/,
      ],
      ["magic", size - 1, /bad table magic/],
    ];
    for (const [what, pos, re] of cases) {
      await corruptCopy(src, dst, flipAt(pos));
      const err = expectCorruption(dst, 12, model, what);
      assert.match(err.message, re, what);
    }
    // Flipped data bytes are found at read time, with the block's offset.
    await corruptCopy(src, dst, flipAt(100));
    const bad = TableReader.open(realFs, dst, 12, new BlockCache(1 << 20), {
      map: MAP,
    });
    try {
      assert.throws(
        () => collect(bad.iterator()),
        (err: unknown) =>
          err instanceof CorruptionError && err.offset === 0 &&
          /data block checksum mismatch.*bad\.sst, offset 0/.test(err.message),
      );
    } finally {
      bad.close();
    }
  });
});

Deno.test("sstable refuses an unknown format version", async () => {
  await withDir(async (dir) => {
    await writeTable(dir, 13, [entry("a", 1, "x")]);
    const src = tablePath(dir, 13);
    const dst = `${dir}/v2.sst`;
    await corruptCopy(src, dst, (b) => {
      const f = b.subarray(b.length - FOOTER_SIZE);
      f[FOOTER_VERSION_OFFSET] = TABLE_FORMAT_VERSION + 1;
      // Recompute the footer CRC so only the version is wrong.
      const crc = crc32Of(f.subarray(0, FOOTER_CRC_OFFSET));
      new DataView(f.buffer, f.byteOffset).setUint32(
        FOOTER_CRC_OFFSET,
        crc,
        true,
      );
      return b;
    });
    assert.throws(
      () => TableReader.open(realFs, dst, 13, new BlockCache(0)),
      new RegExp(
        `unsupported table format version ${TABLE_FORMAT_VERSION + 1}`,
      ),
    );
    assert.deepEqual(
      (await Deno.readFile(src)).subarray(-8),
      TABLE_MAGIC,
      "magic ends the file",
    );
    assert.equal(FOOTER_MAGIC_OFFSET + TABLE_MAGIC.length, FOOTER_SIZE);
  });
});

Deno.test("sstable refuses a version 1 table (before key spaces) as an older format", async () => {
  await withDir(async (dir) => {
    await writeTable(dir, 15, [entry("a", 1, "x")]);
    const src = tablePath(dir, 15);
    const dst = `${dir}/v1.sst`;
    await corruptCopy(src, dst, (b) => {
      const f = b.subarray(b.length - FOOTER_SIZE);
      f[FOOTER_VERSION_OFFSET] = 1;
      const crc = crc32Of(f.subarray(0, FOOTER_CRC_OFFSET));
      new DataView(f.buffer, f.byteOffset).setUint32(
        FOOTER_CRC_OFFSET,
        crc,
        true,
      );
      return b;
    });
    assert.throws(
      () => TableReader.open(realFs, dst, 15, new BlockCache(0)),
      (e: unknown) => e instanceof FormatVersionError && e.found === 1,
    );
  });
});

Deno.test("sstable reports a truncated file as corruption at any length", async () => {
  const seed = 8;
  const model = genEntries(prng(seed), 200);
  await withDir(async (dir) => {
    await writeTable(dir, 14, model, { blockSize: 512 });
    const src = tablePath(dir, 14);
    const full = await Deno.readFile(src);
    const dst = `${dir}/short.sst`;
    const lengths = [0, 1, 7, FOOTER_SIZE - 1, FOOTER_SIZE, 600];
    for (let cut = 1; cut < 40; cut++) lengths.push(full.length - cut);
    lengths.push(full.length - FOOTER_SIZE - BLOCK_TRAILER_SIZE);
    for (const len of lengths) {
      await Deno.writeFile(dst, full.subarray(0, len));
      expectCorruption(dst, 14, model, `truncated to ${len}`);
    }
  });
});
